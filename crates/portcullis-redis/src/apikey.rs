//! [`RedisApiKeyStore`]: API-key records in Redis hashes.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration, time::SystemTime};

use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, KeyDigest, KeyRotation, StoreError, StoreErrorKind, StoreFuture,
};
use portcullis_core::{
    MaybeReady,
    internal::{from_unix_micros as from_micros, unix_micros as micros},
};
use redis::{RedisError, Script};

use crate::{Error, ErrorKind, FailurePolicy, Redis, client::duration_micros};

// Layout: {prefix}{ak}:k:<id> is a hash (times in µs since the Unix epoch):
//   o owner, n name, sc scopes (JSON), ro roles (JSON), c created, d digest (hex),
//   sb session bound (1|0; absent in records written before it: read as 1),
//   and when set: x expires, rv revoked, lu last used, rt rotated to.
// {prefix}{ak}:o:<owner> is the set of the owner's ids.
// Every key shares the hash tag `{ak}`, so on Redis Cluster they live in one slot:
// the scripts read and write records and owner sets together, and derive record keys
// from the ids a set holds, which only one slot allows.
// A record expires `retention` after its key stopped working (expiry or revocation,
// whichever is first); a key that can still work has no TTL.

/// `retire(key, at_us, keep_ms)`: let `key` expire `keep_ms` after `at_us`, unless it
/// is due to expire sooner.
macro_rules! retire {
    () => {
        r"
local function retire(key, at_us, keep_ms)
  if not at_us then return end
  local at = math.floor(tonumber(at_us) / 1000) + tonumber(keep_ms)
  local pttl = redis.call('PTTL', key)
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  if pttl == -1 or (pttl >= 0 and now_ms + pttl > at) then
    redis.call('PEXPIREAT', key, string.format('%.0f', at))
  end
end
"
    };
}

/// KEYS: record, owner set. ARGV: id, retention (ms), record key prefix, then
/// field/value pairs. Forgets the owner's ids whose records expired.
const CREATE: &str = concat!(
    retire!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local ends = redis.call('HMGET', KEYS[1], 'x', 'rv')
retire(KEYS[1], ends[1], ARGV[2])
retire(KEYS[1], ends[2], ARGV[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. id) == 0 then redis.call('SREM', KEYS[2], id) end
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"
);

/// KEYS: owner set. ARGV: record key prefix. Returns {id, fields...} per record.
const LIST: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    table.insert(fields, 1, id)
    table.insert(out, fields)
  end
end
return out
";

/// KEYS: record. ARGV: revocation time, retention (ms). -1 unknown, 0 already
/// revoked, 1 revoked now.
const REVOKE: &str = concat!(
    retire!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'rv') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rv', ARGV[1])
retire(KEYS[1], ARGV[1], ARGV[2])
return 1
"
);

/// KEYS: old record, new record, new owner set. ARGV: now, old's grace expiry, new id,
/// retention (ms), then the new record's field/value pairs. Checks in the order of
/// `MemoryStore`.
const ROTATE: &str = concat!(
    retire!(),
    r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 'conflict' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
local old = redis.call('HMGET', KEYS[1], 'rv', 'x', 'rt')
local now = tonumber(ARGV[1])
if old[1] or (old[2] and now >= tonumber(old[2])) then return 'inactive' end
if old[3] then return 'conflict' end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
local ends = redis.call('HMGET', KEYS[2], 'x', 'rv')
retire(KEYS[2], ends[1], ARGV[4])
retire(KEYS[2], ends[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
local expires = ARGV[2]
if old[2] and tonumber(old[2]) < tonumber(expires) then expires = old[2] end
redis.call('HSET', KEYS[1], 'rt', ARGV[3], 'x', expires)
retire(KEYS[1], expires, ARGV[4])
return 'ok'
"
);

/// KEYS: record. ARGV: time of use. Only moves forward; unknown ids are ignored.
const TOUCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'lu')
if not last or tonumber(last) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'lu', ARGV[1])
end
return 1
";

/// How long a record is kept once its key stopped working (expired or revoked) by
/// default: 90 days, so listings still show recently retired keys.
pub const DEFAULT_RETIRED_KEY_RETENTION: Duration = Duration::from_secs(90 * 86_400);

struct Inner {
    redis: Redis,
    timeout: Duration,
    retention: Duration,
    record_prefix: Vec<u8>,
    create: Script,
    list: Script,
    revoke: Script,
    rotate: Script,
    touch: Script,
}

/// An [`ApiKeyStore`] in Redis, shared by every instance.
///
/// Each record is a Redis hash (digest, owner, grants, times to the microsecond);
/// writes that check and change a record (create, revoke, rotate, last use) are Lua
/// scripts, so they are atomic as the [`ApiKeyStore`] contract asks. An expired or
/// revoked key stays listed, as with the memory store, until [`retention`](Self::retention) after they stopped working
/// (default [`DEFAULT_RETIRED_KEY_RETENTION`]); then the record expires from Redis
/// and the key reads as unknown, refused the same way. Records of keys that can
/// still work never expire. For records to survive a Redis restart, run Redis with
/// persistence (AOF or RDB snapshots).
///
/// Every call has a timeout (default 250 ms) and fails closed: the authenticator
/// answers `503`, never `401`, while Redis is unreachable.
///
/// ```no_run
/// use portcullis_apikey::{ApiKeys, KeyFormat, NewApiKey};
/// use portcullis_redis::{Redis, RedisApiKeyStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let keys = ApiKeys::new(RedisApiKeyStore::new(&redis), KeyFormat::new("pk_live_")?);
/// let issued = keys
///     .issue(NewApiKey::owned_by("svc-billing").name("exporter"))
///     .await?;
/// # let _ = issued;
/// # Ok(()) }
/// ```
///
/// Cloning shares the connection.
#[derive(Clone)]
pub struct RedisApiKeyStore {
    inner: Arc<Inner>,
}

impl RedisApiKeyStore {
    /// A store on `redis`, under `{prefix}ak:`.
    pub fn new(redis: &Redis) -> Self {
        Self::build(redis, redis.timeout(), DEFAULT_RETIRED_KEY_RETENTION)
    }

    fn build(redis: &Redis, timeout: Duration, retention: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout,
                retention,
                record_prefix: redis.key(&[b"{ak}:k:"]),
                create: Script::new(CREATE),
                list: Script::new(LIST),
                revoke: Script::new(REVOKE),
                rotate: Script::new(ROTATE),
                touch: Script::new(TOUCH),
            }),
        }
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self::build(&self.inner.redis, timeout, self.inner.retention)
    }

    /// Sets how long a record is kept after its key stopped working, by expiry or
    /// revocation (default [`DEFAULT_RETIRED_KEY_RETENTION`]).
    #[must_use]
    pub fn retention(self, retention: Duration) -> Self {
        Self::build(&self.inner.redis, self.inner.timeout, retention)
    }

    fn retention_ms(&self) -> i64 {
        duration_micros(self.inner.retention) / 1000
    }

    fn record_key(&self, id: &str) -> Vec<u8> {
        let mut key = self.inner.record_prefix.clone();
        key.extend_from_slice(id.as_bytes());
        key
    }

    fn owner_key(&self, owner: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"{ak}:o:", owner.as_bytes()])
    }

    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        self.inner
            .redis
            .call(self.inner.timeout, call)
            .await
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, e: Error) -> StoreError {
        self.inner
            .redis
            .report("api_keys", FailurePolicy::Closed, &e);
        StoreError::backend(e)
    }
}

/// The record's fields as hash field/value pairs.
fn fields(record: &ApiKeyRecord) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("o", record.owner.clone()),
        ("n", record.name.clone()),
        ("sc", json_list(&record.scopes)),
        ("ro", json_list(&record.roles)),
        ("c", micros(record.created_at).to_string()),
        ("d", record.digest.to_hex()),
        (
            "sb",
            if record.session_bound { "1" } else { "0" }.to_owned(),
        ),
    ];
    let times = [
        ("x", record.expires_at),
        ("rv", record.revoked_at),
        ("lu", record.last_used_at),
    ];
    for (name, time) in times {
        if let Some(t) = time {
            out.push((name, micros(t).to_string()));
        }
    }
    if let Some(to) = &record.rotated_to {
        out.push(("rt", to.clone()));
    }
    out
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads a record from its hash fields.
fn parse(id: &str, map: &HashMap<String, String>) -> Result<ApiKeyRecord, Error> {
    let bad = || Error::new(ErrorKind::Reply);
    let text = |name: &str| map.get(name).cloned().ok_or_else(bad);
    let time = |name: &str| -> Result<Option<SystemTime>, Error> {
        map.get(name)
            .map(|v| v.parse::<i64>().map(from_micros).map_err(|_| bad()))
            .transpose()
    };
    let list = |name: &str| -> Result<Vec<String>, Error> {
        serde_json::from_str(map.get(name).ok_or_else(bad)?).map_err(|_| bad())
    };
    Ok(ApiKeyRecord {
        id: id.to_owned(),
        owner: text("o")?,
        name: text("n")?,
        scopes: list("sc")?,
        roles: list("ro")?,
        created_at: time("c")?.ok_or_else(bad)?,
        expires_at: time("x")?,
        revoked_at: time("rv")?,
        last_used_at: time("lu")?,
        rotated_to: map.get("rt").cloned(),
        session_bound: match map.get("sb").map(String::as_str) {
            None | Some("1") => true,
            Some("0") => false,
            Some(_) => return Err(bad()),
        },
        digest: KeyDigest::from_hex(map.get("d").ok_or_else(bad)?).map_err(|_| bad())?,
    })
}

impl ApiKeyStore for RedisApiKeyStore {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut invocation = self.inner.create.prepare_invoke();
            invocation
                .key(self.record_key(&record.id))
                .key(self.owner_key(&record.owner))
                .arg(&record.id)
                .arg(self.retention_ms())
                .arg(&self.inner.record_prefix);
            for (name, value) in fields(&record) {
                invocation.arg(name).arg(value);
            }
            let mut conn = self.inner.redis.conn();
            let created: i64 = self
                .call(async move { invocation.invoke_async(&mut conn).await })
                .await?;
            if created == 1 {
                Ok(())
            } else {
                Err(StoreError::new(StoreErrorKind::Conflict))
            }
        })
    }

    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        let store = self.clone();
        let id = id.to_owned();
        MaybeReady::pending(async move {
            let key = store.record_key(&id);
            let mut conn = store.inner.redis.conn();
            let map: HashMap<String, String> = store
                .call(async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await })
                .await?;
            if map.is_empty() {
                return Ok(None);
            }
            match parse(&id, &map) {
                Ok(record) => Ok(Some(Arc::new(record))),
                Err(e) => Err(store.failed(e)),
            }
        })
    }

    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let mut invocation = self.inner.list.prepare_invoke();
            invocation
                .key(self.owner_key(owner))
                .arg(&self.inner.record_prefix);
            let mut conn = self.inner.redis.conn();
            let rows: Vec<Vec<String>> = self
                .call(async move { invocation.invoke_async(&mut conn).await })
                .await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows {
                let Some((id, rest)) = row.split_first() else {
                    return Err(self.failed(Error::new(ErrorKind::Reply)));
                };
                let map: HashMap<String, String> = rest
                    .chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                let record = parse(id, &map).map_err(|e| self.failed(e))?;
                // The set is keyed by owner at creation; records never change owner.
                if record.owner == owner {
                    records.push(record);
                }
            }
            records.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(records)
        })
    }

    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.inner.revoke.prepare_invoke();
            invocation
                .key(self.record_key(id))
                .arg(micros(at))
                .arg(self.retention_ms());
            let mut conn = self.inner.redis.conn();
            let outcome: i64 = self
                .call(async move { invocation.invoke_async(&mut conn).await })
                .await?;
            match outcome {
                -1 => Err(StoreError::new(StoreErrorKind::NotFound)),
                0 => Ok(false),
                _ => Ok(true),
            }
        })
    }

    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let replacement = &rotation.replacement;
            let mut invocation = self.inner.rotate.prepare_invoke();
            invocation
                .key(self.record_key(rotation.old_id))
                .key(self.record_key(&replacement.id))
                .key(self.owner_key(&replacement.owner))
                .arg(micros(rotation.now))
                .arg(micros(rotation.old_expires_at))
                .arg(&replacement.id)
                .arg(self.retention_ms());
            for (name, value) in fields(replacement) {
                invocation.arg(name).arg(value);
            }
            let mut conn = self.inner.redis.conn();
            let outcome: String = self
                .call(async move { invocation.invoke_async(&mut conn).await })
                .await?;
            match outcome.as_str() {
                "ok" => Ok(()),
                "not_found" => Err(StoreError::new(StoreErrorKind::NotFound)),
                "inactive" => Err(StoreError::new(StoreErrorKind::Inactive)),
                "conflict" => Err(StoreError::new(StoreErrorKind::Conflict)),
                _ => Err(self.failed(Error::new(ErrorKind::Reply))),
            }
        })
    }

    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        let store = self.clone();
        let key = self.record_key(id);
        MaybeReady::pending(async move {
            let mut invocation = store.inner.touch.prepare_invoke();
            invocation.key(key).arg(micros(at));
            let mut conn = store.inner.redis.conn();
            let _: i64 = store
                .call(async move { invocation.invoke_async(&mut conn).await })
                .await?;
            Ok(())
        })
    }
}

impl fmt::Debug for RedisApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisApiKeyStore")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}
