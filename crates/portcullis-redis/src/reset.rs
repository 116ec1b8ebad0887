//! [`RedisResetStore`]: single-use reset and verification tokens in Redis.

use std::{fmt, sync::Arc, time::Duration};

use portcullis_core::internal::{from_unix_micros, hex, unix_micros};
use portcullis_password::{ResetError, ResetRecord, ResetStore};
use redis::{RedisError, Script};

use crate::{Error, ErrorKind, FailurePolicy, Redis};

// Layout:
//   {prefix}ot:t:{hash}     string  {"s": subject, "p": purpose, "e": expires (µs)}
//   {prefix}ot:s:{subject}  zset    hashes of the subject's tokens, scored by expiry (ms)
// A token expires at its expiry (PXAT); the subject's index when its last token does.
// Each script or command touches one key, so nothing here needs keys to share a slot.

/// KEYS: subject index. ARGV: hash (hex), expiry (ms). Adds the hash, forgets the
/// subject's expired hashes, and keeps the index until its last token expires.
const INDEX: &str = r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now_ms))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2])))
else
  redis.call('DEL', KEYS[1])
end
return 1
";

/// KEYS: subject index. Empties it; returns the hashes it held.
const DRAIN: &str = r"
local hashes = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return hashes
";

struct Inner {
    redis: Redis,
    timeout: Duration,
    index: Script,
    drain: Script,
}

/// A [`ResetStore`] in Redis: password-reset and e-mail-verification tokens that
/// work once, on whichever instance the link lands.
///
/// Only the SHA-256 of a token is stored (the key holds its hex; the value the
/// subject, purpose and expiry). [`take`](ResetStore::take) is a single `GETDEL`:
/// of any number of concurrent redemptions of one token, one gets the record. Each
/// record expires from Redis at its own expiry (`PXAT`), so expired tokens cost no
/// memory and need no purge.
///
/// A subject's tokens are also listed in an index (kept until its last token
/// expires) for [`remove_subject`](ResetStore::remove_subject), which deletes
/// them one by one: a token issued while it runs may survive it.
///
/// Every call has a timeout (default 250 ms) and fails closed: a Redis failure is
/// [`ResetErrorKind::Store`](portcullis_password::ResetErrorKind::Store), never a
/// redeemed token. Requires Redis 6.2 or newer (`GETDEL`, `PXAT`).
///
/// ```no_run
/// use portcullis_password::ResetTokens;
/// use portcullis_redis::{Redis, RedisResetStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let resets = ResetTokens::new(RedisResetStore::new(&redis));
/// let token = resets.issue("alice", "password_reset").await?;
/// assert_eq!(resets.redeem(token.as_str(), "password_reset").await?, "alice");
/// # Ok(()) }
/// ```
///
/// Cloning shares the connection.
#[derive(Clone)]
pub struct RedisResetStore {
    inner: Arc<Inner>,
}

impl RedisResetStore {
    /// A store on `redis`, under `{prefix}ot:`.
    pub fn new(redis: &Redis) -> Self {
        Self::build(redis, redis.timeout())
    }

    fn build(redis: &Redis, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout,
                index: Script::new(INDEX),
                drain: Script::new(DRAIN),
            }),
        }
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self::build(&self.inner.redis, timeout)
    }

    fn token_key(&self, hash_hex: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"ot:t:", hash_hex.as_bytes()])
    }

    fn subject_key(&self, subject: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"ot:s:", subject.as_bytes()])
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, ResetError> {
        self.inner
            .redis
            .call(self.inner.timeout, call)
            .await
            .map_err(|e| self.failed(&e))
    }

    fn failed(&self, e: &Error) -> ResetError {
        self.inner
            .redis
            .report("reset_tokens", FailurePolicy::Closed, e);
        ResetError::store("reset token store unavailable")
    }
}

/// The stored value: everything but the hash, which is the key.
fn encode(record: &ResetRecord) -> String {
    serde_json::json!({
        "s": record.subject,
        "p": record.purpose,
        "e": unix_micros(record.expires_at),
    })
    .to_string()
}

fn decode(hash: [u8; 32], value: &str) -> Option<ResetRecord> {
    let value: serde_json::Value = serde_json::from_str(value).ok()?;
    Some(ResetRecord {
        hash,
        subject: value.get("s")?.as_str()?.to_owned(),
        purpose: value.get("p")?.as_str()?.to_owned(),
        expires_at: from_unix_micros(value.get("e")?.as_i64()?),
    })
}

impl ResetStore for RedisResetStore {
    async fn insert(&self, record: ResetRecord) -> Result<(), ResetError> {
        let hash = hex(&record.hash);
        // Whole ms, rounded up: the entry never dies before the token does.
        let expires_ms = unix_micros(record.expires_at).div_euclid(1000) + 1;
        let mut index = self.inner.index.prepare_invoke();
        index
            .key(self.subject_key(&record.subject))
            .arg(&hash)
            .arg(expires_ms);
        let mut set = redis::cmd("SET");
        set.arg(self.token_key(&hash))
            .arg(encode(&record))
            .arg("PXAT")
            .arg(expires_ms);
        let mut conn = self.inner.redis.conn();
        self.call(async move {
            // Index first: a token is never stored without remove_subject finding it.
            index.invoke_async::<()>(&mut conn).await?;
            set.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn take(&self, hash: &[u8; 32]) -> Result<Option<ResetRecord>, ResetError> {
        let key = self.token_key(&hex(hash));
        let mut conn = self.inner.redis.conn();
        let value: Option<String> = self
            .call(async move { redis::cmd("GETDEL").arg(key).query_async(&mut conn).await })
            .await?;
        match value {
            None => Ok(None),
            Some(value) => decode(*hash, &value)
                .map(Some)
                .ok_or_else(|| self.failed(&Error::new(ErrorKind::Reply))),
        }
    }

    async fn remove_subject(&self, subject: &str) -> Result<usize, ResetError> {
        let mut drain = self.inner.drain.prepare_invoke();
        drain.key(self.subject_key(subject));
        let mut conn = self.inner.redis.conn();
        let keys: Vec<Vec<u8>> = {
            let mut conn = conn.clone();
            let hashes: Vec<String> = self
                .call(async move { drain.invoke_async(&mut conn).await })
                .await?;
            hashes.iter().map(|h| self.token_key(h)).collect()
        };
        if keys.is_empty() {
            return Ok(0);
        }
        // Tokens of one subject need not share a slot: on a cluster, the client splits
        // this `DEL` by slot and adds up the counts.
        let mut del = redis::cmd("DEL");
        del.arg(&keys);
        let removed: usize = self
            .call(async move { del.query_async(&mut conn).await })
            .await?;
        Ok(removed)
    }
}

impl fmt::Debug for RedisResetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisResetStore")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}
