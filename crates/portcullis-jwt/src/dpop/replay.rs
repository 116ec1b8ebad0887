//! Proofs seen before: the `jti` replay check of RFC 9449 §11.1.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use portcullis_core::{AuthError, MaybeReady};

/// Remembers the proofs a service accepted, so that none is accepted twice
/// ([RFC 9449 §11.1](https://www.rfc-editor.org/rfc/rfc9449#section-11.1)).
///
/// A proof is named by a digest of its key's thumbprint and its `jti`, never by the
/// client's bytes. The default, [`MemoryReplayCache`], serves one instance; several
/// instances behind one name must share theirs (`portcullis_redis::RedisReplayCache`).
pub trait ReplayCache: Send + Sync + 'static {
    /// Records the proof `id` as used until `until` (Unix seconds; `now` is the
    /// verifier's time). Answers `Ok(true)` when the proof was not seen before and is
    /// now recorded, `Ok(false)` when it was (or cannot be told apart from one that
    /// was), or the error to refuse the request with when the cache cannot say.
    fn first_use(&self, id: &[u8; 32], until: i64, now: i64)
    -> MaybeReady<Result<bool, AuthError>>;
}

impl<R: ReplayCache + ?Sized> ReplayCache for Arc<R> {
    fn first_use(
        &self,
        id: &[u8; 32],
        until: i64,
        now: i64,
    ) -> MaybeReady<Result<bool, AuthError>> {
        (**self).first_use(id, until, now)
    }
}

/// The default number of proofs a [`MemoryReplayCache`] holds: 100,000.
pub const DEFAULT_REPLAY_CAPACITY: NonZeroUsize = NonZeroUsize::new(100_000).unwrap();

const SHARDS: usize = 16;

/// A bounded in-memory [`ReplayCache`] for a single instance.
///
/// Proofs are kept until their acceptance window closes. When the cache is full, the
/// proof whose window closes first is dropped and the cache stops accepting proofs
/// whose window closes that early, so it stays bounded without ever accepting a proof
/// twice: under a flood, older (but still valid) proofs are refused as if replayed.
/// About 100 bytes per proof.
pub struct MemoryReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

#[derive(Default)]
struct Shard {
    until: HashMap<[u8; 16], i64>,
    by_until: BTreeSet<(i64, [u8; 16])>,
    /// No proof whose window closes at or before this is accepted: one such may have
    /// been dropped to make room.
    floor: i64,
}

impl MemoryReplayCache {
    /// A cache holding up to `capacity` proofs.
    pub fn new(capacity: NonZeroUsize) -> Self {
        let per_shard = capacity.get().div_ceil(SHARDS);
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Self { shards, per_shard }
    }

    /// How many proofs are held (expired ones included until they are swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).until.len())
            .sum()
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(
        &self,
        id: &[u8; 32],
        until: i64,
        now: i64,
    ) -> MaybeReady<Result<bool, AuthError>> {
        let (shard, key) = id.split_at(16);
        let key: [u8; 16] = key.try_into().expect("16 bytes");
        let shard = &self.shards[usize::from(shard[0]) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        MaybeReady::Ready(Ok(shard.first_use(key, until, now, self.per_shard)))
    }
}

impl Shard {
    fn first_use(&mut self, key: [u8; 16], until: i64, now: i64, capacity: usize) -> bool {
        while let Some(&(at, old)) = self.by_until.first()
            && at <= now
        {
            self.by_until.pop_first();
            self.until.remove(&old);
        }
        if until <= self.floor || self.until.contains_key(&key) {
            return false;
        }
        if self.until.len() >= capacity
            && let Some((at, old)) = self.by_until.pop_first()
        {
            self.until.remove(&old);
            self.floor = self.floor.max(at);
            if until <= self.floor {
                return false;
            }
        }
        self.until.insert(key, until);
        self.by_until.insert((until, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id[28..].copy_from_slice(&n.to_be_bytes());
        id
    }

    fn first(cache: &MemoryReplayCache, n: u32, until: i64, now: i64) -> bool {
        match cache.first_use(&id(n), until, now) {
            MaybeReady::Ready(result) => result.unwrap(),
            MaybeReady::Pending(_) => unreachable!("the memory cache answers at once"),
        }
    }

    #[test]
    fn a_proof_is_accepted_once_until_its_window_closes() {
        let cache = MemoryReplayCache::default();
        assert!(first(&cache, 1, 100, 0));
        assert!(!first(&cache, 1, 100, 50));
        // Past its window the entry is swept: the verifier refuses the stale proof by
        // its `iat` before asking again.
        assert!(first(&cache, 1, 200, 100));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_stays_bounded_and_never_accepts_twice() {
        let cache = MemoryReplayCache::new(NonZeroUsize::new(SHARDS).unwrap());
        // Every id lands in shard 0: one place there.
        assert!(first(&cache, 0, 100, 0));
        assert!(first(&cache, 16, 200, 0));
        assert_eq!(cache.len(), 1);
        // The dropped proof cannot come back, nor any whose window closes as early.
        assert!(!first(&cache, 0, 100, 0));
        assert!(!first(&cache, 32, 90, 0));
        assert!(!first(&cache, 16, 200, 0));
        assert!(first(&cache, 48, 300, 0));
    }
}
