//! The verified-token cache: a bounded map from a token's SHA-256 to the principal it
//! verified as.
//!
//! - Bounded: at most `capacity` entries. When full, expired and stale entries are
//!   dropped first; if that frees too little, an arbitrary eighth of the entries goes.
//!   Only tokens that verified are ever inserted, so a client cannot fill the cache
//!   with junk.
//! - An entry lives until its token's `exp` (plus leeway) and never longer than the
//!   configured cap after insertion.
//! - Each entry records the key-set generation it was verified under; an entry from an
//!   older generation is a miss (and is removed), so rotating keys drops the cache.
//! - A hit costs a SHA-256 of the token and one map look-up: no signature check, no
//!   JSON parse. Callers still check revocation on every hit.

use std::num::NonZeroUsize;

use dashmap::DashMap;
use portcullis_core::Principal;
use sha2::{Digest, Sha256};

/// A cache key: the token's SHA-256.
pub(crate) type Fingerprint = [u8; 32];

pub(crate) fn fingerprint(token: &str) -> Fingerprint {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    principal: Principal,
    /// Unix seconds from which the entry is dead.
    until: i64,
    generation: u64,
}

pub(crate) struct TokenCache {
    map: DashMap<Fingerprint, Entry>,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            map: DashMap::with_capacity(capacity.get().min(1024)),
            capacity: capacity.get(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The principal cached for `fp`, if alive at `now` and of `generation`.
    pub(crate) fn get(&self, fp: &Fingerprint, now: i64, generation: u64) -> Option<Principal> {
        let stale = {
            let entry = self.map.get(fp)?;
            if entry.generation == generation && now < entry.until {
                return Some(entry.principal.clone());
            }
            true
        };
        if stale {
            self.map.remove(fp);
        }
        None
    }

    pub(crate) fn insert(
        &self,
        fp: Fingerprint,
        principal: Principal,
        until: i64,
        now: i64,
        generation: u64,
    ) {
        if until <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&fp) {
            self.make_room(now, generation);
        }
        self.map.insert(
            fp,
            Entry {
                principal,
                until,
                generation,
            },
        );
    }

    fn make_room(&self, now: i64, generation: u64) {
        self.map
            .retain(|_, e| e.generation == generation && now < e.until);
        if self.map.len() < self.capacity {
            return;
        }
        // Still full of live entries: drop an arbitrary eighth so the next
        // `capacity / 8` inserts run without another sweep.
        let evict = (self.capacity / 8).max(1);
        let victims: Vec<Fingerprint> = self.map.iter().take(evict).map(|e| *e.key()).collect();
        for fp in victims {
            self.map.remove(&fp);
        }
    }

    pub(crate) fn clear(&self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::PrincipalKind;

    fn p() -> Principal {
        Principal::builder("s", PrincipalKind::User).build()
    }

    #[test]
    fn entry_dies_at_until() {
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let fp = fingerprint("t");
        cache.insert(fp, p(), 100, 50, 0);
        assert!(cache.get(&fp, 99, 0).is_some());
        assert!(cache.get(&fp, 100, 0).is_none());
        assert_eq!(cache.len(), 0, "a dead entry is removed on sight");
    }

    #[test]
    fn other_generation_is_a_miss() {
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let fp = fingerprint("t");
        cache.insert(fp, p(), 100, 50, 1);
        assert!(cache.get(&fp, 60, 2).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn never_grows_past_capacity() {
        let cache = TokenCache::new(NonZeroUsize::new(64).unwrap());
        for i in 0..10_000 {
            cache.insert(fingerprint(&i.to_string()), p(), 1_000, 0, 0);
            assert!(cache.len() <= 64);
        }
        // The newest entry is always kept.
        assert!(cache.get(&fingerprint("9999"), 1, 0).is_some());
    }

    #[test]
    fn expired_entries_go_first_when_full() {
        let cache = TokenCache::new(NonZeroUsize::new(8).unwrap());
        for i in 0..7 {
            cache.insert(fingerprint(&i.to_string()), p(), 10, 0, 0);
        }
        cache.insert(fingerprint("live"), p(), 1_000, 0, 0);
        cache.insert(fingerprint("new"), p(), 1_000, 20, 0);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&fingerprint("live"), 21, 0).is_some());
    }
}
