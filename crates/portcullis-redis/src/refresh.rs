//! [`RedisRefreshStore`]: refresh-token families in Redis, rotated by Lua scripts.

use std::{fmt, sync::Arc, time::Duration};

use portcullis_core::internal::{from_unix_micros, hex, unix_micros};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RefreshStore, RotateOutcome,
    Rotation, TokenHash,
};
use redis::{RedisError, Script};

use crate::{Error, ErrorKind, FailurePolicy, Redis, client::duration_micros};

// Layout (all times in µs since the Unix epoch, as decimal strings):
//   {prefix}rt:t:{hash}    hash  f=family i=issued_at e=expires_at u=used(0|1)
//   {prefix}rt:f:{family}  hash  s=subject c=client_id e=family_expires_at r=revoked(0|1)
//   {prefix}rt:s:{subject} set   of families
// Token and family entries expire with the family (PEXPIREAT); the subject set lives
// as long as its longest family.

/// KEYS: token, family, subject set. ARGV: family, subject, client, issued,
/// expires, family expires (µs), family expires (ms).
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 'i', ARGV[4], 'e', ARGV[5], 'u', '0')
redis.call('HSET', KEYS[2], 's', ARGV[2], 'c', ARGV[3], 'e', ARGV[6], 'r', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[7])
redis.call('SADD', KEYS[3], ARGV[1])
local pttl = redis.call('PTTL', KEYS[3])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if pttl < 0 or now_ms + pttl < tonumber(ARGV[7]) then
  redis.call('PEXPIREAT', KEYS[3], ARGV[7])
end
return 1
";

/// The rotation contract of `RefreshStore`, in its order, as one atomic step.
/// KEYS: presented token, successor token. ARGV: family key prefix, client, now (µs),
/// idle timeout (µs).
const ROTATE: &str = r"
local tok = redis.call('HMGET', KEYS[1], 'f', 'e', 'u')
if not tok[1] then return {'unknown'} end
local fkey = ARGV[1] .. tok[1]
local fam = redis.call('HMGET', fkey, 's', 'c', 'e', 'r')
if not fam[1] then return {'unknown'} end
if fam[4] == '1' then return {'revoked'} end
if tok[3] == '1' then
  redis.call('HSET', fkey, 'r', '1')
  return {'reused', fam[1], tok[1]}
end
if fam[2] ~= ARGV[2] then return {'mismatch'} end
local now = tonumber(ARGV[3])
local fexp = tonumber(fam[3])
if now >= tonumber(tok[2]) or now >= fexp then return {'expired'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'duplicate'} end
local exp = now + tonumber(ARGV[4])
if exp > fexp then exp = fexp end
exp = string.format('%.0f', exp)
redis.call('HSET', KEYS[1], 'u', '1')
redis.call('HSET', KEYS[2], 'f', tok[1], 'i', ARGV[3], 'e', exp, 'u', '0')
redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', math.ceil(fexp / 1000)))
return {'rotated', fam[1], tok[1], fam[2], exp, fam[3]}
";

/// KEYS: token. ARGV: family key prefix.
const FIND: &str = r"
local tok = redis.call('HMGET', KEYS[1], 'f', 'i', 'e')
if not tok[1] then return {} end
local fam = redis.call('HMGET', ARGV[1] .. tok[1], 's', 'c', 'e')
if not fam[1] then return {} end
return {tok[1], tok[2], tok[3], fam[1], fam[2], fam[3]}
";

/// KEYS: family.
const REVOKE_FAMILY: &str = r"
if redis.call('HGET', KEYS[1], 'r') == '0' then
  redis.call('HSET', KEYS[1], 'r', '1')
  return 1
end
return 0
";

/// KEYS: subject set. ARGV: family key prefix. Forgets families that expired.
const REVOKE_SUBJECT: &str = r"
local out = {}
for _, f in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. f
  local r = redis.call('HGET', key, 'r')
  if not r then
    redis.call('SREM', KEYS[1], f)
  elseif r == '0' then
    redis.call('HSET', key, 'r', '1')
    table.insert(out, f)
  end
end
return out
";

struct Scripts {
    create: Script,
    rotate: Script,
    find: Script,
    revoke_family: Script,
    revoke_subject: Script,
}

struct Inner {
    redis: Redis,
    timeout: Duration,
    family_prefix: Vec<u8>,
    scripts: Scripts,
}

/// A [`RefreshStore`] in Redis: families shared by every instance.
///
/// Every operation is one Lua script, so it runs as one atomic step on the server:
/// of many concurrent rotations presenting one token, exactly one sees it live; the
/// others see it used and revoke the family (reuse detection), as the
/// [`RefreshStore`] contract requires. Entries expire with their family
/// (`PEXPIREAT`); only token hashes are stored.
///
/// Every call has a timeout (default 250 ms) and fails closed: a Redis failure is an
/// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) error, which a token
/// endpoint answers with a server error, never with a token.
///
/// The scripts touch keys they derive from what they read (a token's family), so
/// this store needs a standalone Redis (or a primary with replicas), not Redis
/// Cluster.
///
/// ```no_run
/// use portcullis_redis::{Redis, RedisRefreshStore};
/// use portcullis_tokens::RefreshTokens;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let refresh = RefreshTokens::new(RedisRefreshStore::new(&redis));
/// let first = refresh.issue("alice", "web").await?;
/// let second = refresh.rotate(first.token.as_str(), "web").await?;
/// assert_eq!(first.record.family, second.record.family);
/// # Ok(()) }
/// ```
///
/// Cloning shares the connection.
#[derive(Clone)]
pub struct RedisRefreshStore {
    inner: Arc<Inner>,
}

impl RedisRefreshStore {
    /// A store on `redis`, under `{prefix}rt:`.
    pub fn new(redis: &Redis) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout: redis.timeout(),
                family_prefix: redis.key(&[b"rt:f:"]),
                scripts: Scripts {
                    create: Script::new(CREATE),
                    rotate: Script::new(ROTATE),
                    find: Script::new(FIND),
                    revoke_family: Script::new(REVOKE_FAMILY),
                    revoke_subject: Script::new(REVOKE_SUBJECT),
                },
            }),
        }
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        let mut store = Self::new(&self.inner.redis);
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.timeout = timeout;
        }
        store
    }

    fn token_key(&self, hash: &TokenHash) -> Vec<u8> {
        self.inner.redis.key(&[b"rt:t:", hex(&hash.0).as_bytes()])
    }

    fn family_key(&self, family: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"rt:f:", family.as_bytes()])
    }

    fn subject_key(&self, subject: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"rt:s:", subject.as_bytes()])
    }

    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, TokenError> {
        match self.inner.redis.call(self.inner.timeout, call).await {
            Ok(value) => Ok(value),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: Error) -> TokenError {
        self.inner
            .redis
            .report("refresh_tokens", FailurePolicy::Closed, &e);
        TokenError::store(e)
    }
}

fn parse_us(value: &str) -> Result<i64, Error> {
    value.parse().map_err(|_| Error::new(ErrorKind::Reply))
}

impl RefreshStore for RedisRefreshStore {
    async fn create(&self, record: RefreshRecord) -> Result<(), TokenError> {
        let family_exp = unix_micros(record.family_expires_at);
        let mut invocation = self.inner.scripts.create.prepare_invoke();
        invocation
            .key(self.token_key(&record.hash))
            .key(self.family_key(&record.family))
            .key(self.subject_key(&record.subject))
            .arg(&record.family)
            .arg(&record.subject)
            .arg(&record.client_id)
            .arg(unix_micros(record.issued_at))
            .arg(unix_micros(record.expires_at))
            .arg(family_exp)
            .arg(family_exp.div_euclid(1000) + 1);
        let mut conn = self.inner.redis.conn();
        let created: i64 = self
            .call(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token or family",
            ))
        }
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, TokenError> {
        let mut invocation = self.inner.scripts.rotate.prepare_invoke();
        invocation
            .key(self.token_key(rotation.presented))
            .key(self.token_key(rotation.successor))
            .arg(&self.inner.family_prefix)
            .arg(rotation.client_id)
            .arg(unix_micros(rotation.now))
            .arg(duration_micros(rotation.idle_timeout));
        let mut conn = self.inner.redis.conn();
        let reply: Vec<String> = self
            .call(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let reply_error = || self.failed(Error::new(ErrorKind::Reply));
        match reply.first().map(String::as_str) {
            Some("unknown") => Ok(RotateOutcome::Unknown),
            Some("revoked") => Ok(RotateOutcome::FamilyRevoked),
            Some("mismatch") => Ok(RotateOutcome::ClientMismatch),
            Some("expired") => Ok(RotateOutcome::Expired),
            Some("duplicate") => Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token",
            )),
            Some("reused") => match &reply[..] {
                [_, subject, family] => Ok(RotateOutcome::Reused {
                    subject: subject.clone(),
                    family: family.clone(),
                }),
                _ => Err(reply_error()),
            },
            Some("rotated") => match &reply[..] {
                [_, subject, family, client_id, expires, family_expires] => {
                    let (Ok(expires), Ok(family_expires)) =
                        (parse_us(expires), parse_us(family_expires))
                    else {
                        return Err(reply_error());
                    };
                    Ok(RotateOutcome::Rotated(RefreshRecord {
                        hash: *rotation.successor,
                        family: family.clone(),
                        subject: subject.clone(),
                        client_id: client_id.clone(),
                        issued_at: rotation.now,
                        expires_at: from_unix_micros(expires),
                        family_expires_at: from_unix_micros(family_expires),
                    }))
                }
                _ => Err(reply_error()),
            },
            _ => Err(reply_error()),
        }
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, TokenError> {
        let mut invocation = self.inner.scripts.find.prepare_invoke();
        invocation
            .key(self.token_key(hash))
            .arg(&self.inner.family_prefix);
        let mut conn = self.inner.redis.conn();
        let reply: Vec<String> = self
            .call(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        match &reply[..] {
            [] => Ok(None),
            [family, issued, expires, subject, client_id, family_expires] => {
                let parsed = (
                    parse_us(issued),
                    parse_us(expires),
                    parse_us(family_expires),
                );
                let (Ok(issued), Ok(expires), Ok(family_expires)) = parsed else {
                    return Err(self.failed(Error::new(ErrorKind::Reply)));
                };
                Ok(Some(RefreshRecord {
                    hash: *hash,
                    family: family.clone(),
                    subject: subject.clone(),
                    client_id: client_id.clone(),
                    issued_at: from_unix_micros(issued),
                    expires_at: from_unix_micros(expires),
                    family_expires_at: from_unix_micros(family_expires),
                }))
            }
            _ => Err(self.failed(Error::new(ErrorKind::Reply))),
        }
    }

    async fn revoke_family(&self, family: &str) -> Result<bool, TokenError> {
        let mut invocation = self.inner.scripts.revoke_family.prepare_invoke();
        invocation.key(self.family_key(family));
        let mut conn = self.inner.redis.conn();
        let revoked: i64 = self
            .call(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(revoked == 1)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<Vec<String>, TokenError> {
        let mut invocation = self.inner.scripts.revoke_subject.prepare_invoke();
        invocation
            .key(self.subject_key(subject))
            .arg(&self.inner.family_prefix);
        let mut conn = self.inner.redis.conn();
        self.call(async move { invocation.invoke_async(&mut conn).await })
            .await
    }
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}
