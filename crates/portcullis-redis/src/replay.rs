//! [`RedisReplayCache`]: the DPoP proofs every instance has accepted.

use std::{fmt, sync::Arc, time::Duration};

use portcullis_core::{AuthError, MaybeReady};
use portcullis_jwt::dpop::ReplayCache;

use crate::{FailurePolicy, Redis};

struct Inner {
    redis: Redis,
    timeout: Duration,
}

/// A DPoP [`ReplayCache`] in Redis, shared by every instance of a service: a proof
/// accepted by one is refused by all the others.
///
/// Each accepted proof is one key, `{prefix}dpop:{hex digest}`, written with
/// `SET NX PX` (one round trip, atomic: of two instances racing with one proof, one
/// wins) and expiring when the proof's window closes, so memory holds only proofs
/// that could still be replayed. A failed or slow call (default timeout 250 ms)
/// refuses the request with `503`: this is an authentication decision and always
/// fails closed.
///
/// ```no_run
/// use portcullis_jwt::dpop::Dpop;
/// use portcullis_redis::{Redis, RedisReplayCache};
///
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let dpop = Dpop::new().replay_cache(RedisReplayCache::new(&redis));
/// # Ok::<(), portcullis_redis::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisReplayCache {
    inner: Arc<Inner>,
}

impl RedisReplayCache {
    /// A replay cache on `redis`, with its timeout.
    pub fn new(redis: &Redis) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout: redis.timeout(),
            }),
        }
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's, 250 ms).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: self.inner.redis.clone(),
                timeout,
            }),
        }
    }
}

impl ReplayCache for RedisReplayCache {
    fn first_use(
        &self,
        id: &[u8; 32],
        until: i64,
        now: i64,
    ) -> MaybeReady<Result<bool, AuthError>> {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let key = self.inner.redis.key(&[b"dpop:", hex.as_bytes()]);
        let ttl_ms = until.saturating_sub(now).clamp(1, i64::MAX / 1000) * 1000;
        let inner = Arc::clone(&self.inner);
        MaybeReady::pending(async move {
            let mut conn = inner.redis.conn();
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(1).arg("NX").arg("PX").arg(ttl_ms);
            let reply = inner
                .redis
                .call(inner.timeout, async {
                    cmd.query_async::<Option<String>>(&mut conn).await
                })
                .await;
            match reply {
                Ok(set) => Ok(set.is_some()),
                Err(error) => {
                    inner
                        .redis
                        .report("dpop replay cache", FailurePolicy::Closed, &error);
                    Err(AuthError::unavailable("dpop_replay_unavailable")
                        .with_description("proof checking is temporarily unavailable")
                        .with_source(error))
                }
            }
        })
    }
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}
