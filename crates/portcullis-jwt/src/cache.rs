//! The verified-token cache: a bounded map from a token to the principal it verified
//! as.
//!
//! - Looked up by the token itself. A 64-bit hash keyed with a per-cache random seed
//!   (over the token's length and its last 48 bytes, which hold signature bytes that
//!   no one can choose without the key) picks the slot; the token stored there is then
//!   compared with the presented one in full, in constant time. A hit is exactly a
//!   token that verified before: a hash collision is a miss, never another token's
//!   principal. (A cryptographic digest would add nothing to that guarantee and costs
//!   several times more per request.)
//! - Bounded: at most `capacity` entries, each holding its token's bytes beside the
//!   principal. When full, expired and stale entries are dropped first; if that frees
//!   too little, an arbitrary eighth of the entries goes. Only tokens that verified are
//!   ever inserted, so a client cannot fill the cache with junk.
//! - An entry lives until its token's `exp` (plus leeway) and never longer than the
//!   configured cap after insertion.
//! - Each entry records the key-set generation it was verified under; an entry from an
//!   older generation is a miss (and is removed), so rotating keys drops the cache.
//! - A hit costs a fast hash of the token's tail, one map look-up and one
//!   comparison: no signature check, no JSON parse. Callers still check revocation on
//!   every hit.

use std::{
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    num::NonZeroUsize,
};

use dashmap::DashMap;
use portcullis_core::Principal;
use subtle::ConstantTimeEq as _;

/// How many bytes at the end of a token pick its slot.
const SLOT_BYTES: usize = 48;

/// Where a token lives in the cache: its keyed hash. Computed once per request and
/// used for the look-up and, on a miss, the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(u64);

struct Entry {
    token: Box<[u8]>,
    principal: Principal,
    /// Unix seconds from which the entry is dead.
    until: i64,
    generation: u64,
}

impl Entry {
    fn alive(&self, now: i64, generation: u64) -> bool {
        self.generation == generation && now < self.until
    }
}

pub(crate) struct TokenCache {
    map: DashMap<u64, Entry, BuildHasherDefault<Prehashed>>,
    seed: foldhash::fast::RandomState,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            map: DashMap::with_capacity_and_hasher(
                capacity.get().min(1024),
                BuildHasherDefault::default(),
            ),
            seed: foldhash::fast::RandomState::default(),
            capacity: capacity.get(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The slot of `token`: a keyed hash of its last [`SLOT_BYTES`] bytes (all of a
    /// shorter token) and its length.
    ///
    /// A token ends with its signature, which no one can choose without the key, so
    /// its tail spreads valid tokens as well as the whole would, at a fraction of the
    /// cost (a cache hit on a 409-byte token takes 42 ns instead of 68 ns). Invalid
    /// tokens may share a slot as they please: they are never inserted, and a look-up
    /// still compares the whole token.
    pub(crate) fn slot(&self, token: &[u8]) -> Slot {
        let tail = &token[token.len().saturating_sub(SLOT_BYTES)..];
        Slot(self.seed.hash_one((token.len(), tail)))
    }

    /// The principal cached for `token`, if alive at `now` and of `generation`.
    pub(crate) fn get(
        &self,
        slot: Slot,
        token: &[u8],
        now: i64,
        generation: u64,
    ) -> Option<Principal> {
        {
            let entry = self.map.get(&slot.0)?;
            if !same_token(&entry.token, token) {
                return None;
            }
            if entry.alive(now, generation) {
                return Some(entry.principal.clone());
            }
        }
        self.map
            .remove_if(&slot.0, |_, e| !e.alive(now, generation));
        None
    }

    pub(crate) fn insert(
        &self,
        slot: Slot,
        token: &[u8],
        principal: Principal,
        until: i64,
        now: i64,
        generation: u64,
    ) {
        if until <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&slot.0) {
            self.make_room(now, generation);
        }
        self.map.insert(
            slot.0,
            Entry {
                token: token.into(),
                principal,
                until,
                generation,
            },
        );
    }

    fn make_room(&self, now: i64, generation: u64) {
        self.map.retain(|_, e| e.alive(now, generation));
        if self.map.len() < self.capacity {
            return;
        }
        // Still full of live entries: drop an arbitrary eighth so the next
        // `capacity / 8` inserts run without another sweep.
        let evict = (self.capacity / 8).max(1);
        let victims: Vec<u64> = self.map.iter().take(evict).map(|e| *e.key()).collect();
        for slot in victims {
            self.map.remove(&slot);
        }
    }

    pub(crate) fn clear(&self) {
        self.map.clear();
    }
}

/// Whether `stored` equals `presented`, in time that depends on their lengths only
/// (lengths are not secret). The bytes are folded eight at a time into one
/// difference word, with no branch on their values, and `subtle` decides on that
/// word. Comparing byte by byte through `subtle` (one optimisation barrier per byte)
/// would cost about forty times more on a 400-byte token, on every cache hit.
fn same_token(stored: &[u8], presented: &[u8]) -> bool {
    if stored.len() != presented.len() {
        return false;
    }
    let (stored_words, stored_tail) = stored.as_chunks::<8>();
    let (presented_words, presented_tail) = presented.as_chunks::<8>();
    let mut diff = 0u64;
    for (a, b) in stored_words.iter().zip(presented_words) {
        diff |= u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b);
    }
    for (a, b) in stored_tail.iter().zip(presented_tail) {
        diff |= u64::from(a ^ b);
    }
    diff.ct_eq(&0).into()
}

/// The map's hasher: its keys are already keyed hashes, so it passes them through.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::PrincipalKind;

    fn p(subject: &str) -> Principal {
        Principal::builder(subject, PrincipalKind::User).build()
    }

    fn put(cache: &TokenCache, token: &str, until: i64, now: i64, generation: u64) {
        cache.insert(
            cache.slot(token.as_bytes()),
            token.as_bytes(),
            p(token),
            until,
            now,
            generation,
        );
    }

    fn get(cache: &TokenCache, token: &str, now: i64, generation: u64) -> Option<Principal> {
        cache.get(
            cache.slot(token.as_bytes()),
            token.as_bytes(),
            now,
            generation,
        )
    }

    #[test]
    fn tokens_sharing_a_tail_share_a_slot_but_never_an_answer() {
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let tail = "s".repeat(SLOT_BYTES);
        let (a, b) = (format!("aaaa.{tail}"), format!("bbbb.{tail}"));
        assert_eq!(cache.slot(a.as_bytes()), cache.slot(b.as_bytes()));
        put(&cache, &a, 100, 50, 0);
        assert!(get(&cache, &b, 60, 0).is_none());
        assert_eq!(get(&cache, &a, 60, 0).unwrap().subject(), a);
        // A different tail or length is a different slot (but for a 2^-64 chance).
        assert_ne!(cache.slot(a.as_bytes()), cache.slot(&a.as_bytes()[1..]));
        assert_ne!(cache.slot(a.as_bytes()), cache.slot(b"aaaa.t"));
    }

    #[test]
    fn entry_dies_at_until() {
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        put(&cache, "t", 100, 50, 0);
        assert!(get(&cache, "t", 99, 0).is_some());
        assert!(get(&cache, "t", 100, 0).is_none());
        assert_eq!(cache.len(), 0, "a dead entry is removed on sight");
    }

    #[test]
    fn other_generation_is_a_miss() {
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        put(&cache, "t", 100, 50, 1);
        assert!(get(&cache, "t", 60, 2).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn never_grows_past_capacity() {
        let cache = TokenCache::new(NonZeroUsize::new(64).unwrap());
        for i in 0..10_000 {
            put(&cache, &i.to_string(), 1_000, 0, 0);
            assert!(cache.len() <= 64);
        }
        // The newest entry is always kept.
        assert_eq!(get(&cache, "9999", 1, 0).unwrap().subject(), "9999");
    }

    #[test]
    fn expired_entries_go_first_when_full() {
        let cache = TokenCache::new(NonZeroUsize::new(8).unwrap());
        for i in 0..7 {
            put(&cache, &i.to_string(), 10, 0, 0);
        }
        put(&cache, "live", 1_000, 0, 0);
        put(&cache, "new", 1_000, 20, 0);
        assert_eq!(cache.len(), 2);
        assert!(get(&cache, "live", 21, 0).is_some());
    }

    #[test]
    fn a_slot_collision_is_a_miss_not_a_hit() {
        // Force two different tokens into one slot: the stored token decides.
        let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let slot = cache.slot(b"a.b.c");
        cache.insert(slot, b"a.b.c", p("alice"), 1_000, 0, 0);
        assert!(cache.get(slot, b"a.b.d", 1, 0).is_none());
        assert!(cache.get(slot, b"a.b.", 1, 0).is_none());
        assert!(cache.get(slot, b"a.b.cc", 1, 0).is_none());
        assert_eq!(cache.get(slot, b"a.b.c", 1, 0).unwrap().subject(), "alice");
        assert_eq!(cache.len(), 1, "a colliding look-up leaves the entry alone");
    }

    #[test]
    fn same_token_sees_every_differing_bit() {
        let a = *b"0123456789abcdefXYZ";
        assert!(same_token(&a, &a));
        for i in 0..a.len() {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!same_token(&a, &b), "byte {i} bit {bit}");
            }
        }
        assert!(!same_token(&a, &a[..18]));
        assert!(same_token(b"", b""));
    }

    #[test]
    fn seeds_differ_between_caches() {
        let one = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let two = TokenCache::new(NonZeroUsize::new(4).unwrap());
        let differ = (0..8).any(|i| {
            let t = format!("token-{i}");
            one.slot(t.as_bytes()) != two.slot(t.as_bytes())
        });
        assert!(differ, "each cache hashes with its own random seed");
    }
}
