//! The verified-token cache: a bounded, fixed-size table from a token to the principal
//! it verified as.
//!
//! - Looked up by the token itself. A 64-bit hash keyed with a per-cache random seed
//!   (over the token's length and its last 48 bytes, which hold signature bytes that
//!   no one can choose without the key) picks the set; the token stored there is then
//!   compared with the presented one in full, in constant time. A hit is exactly a
//!   token that verified before: a hash collision is a miss, never another token's
//!   principal. (A cryptographic digest would add nothing to that guarantee and costs
//!   several times more per request.)
//! - Fixed size, like a CPU cache: `capacity / 2` sets of two ways, allocated once,
//!   each set behind its own small lock (an odd capacity leaves one entry unused; a
//!   capacity of one is one set of one way). An insert lands in its token's set: in the
//!   way already holding its hash, else a free way (empty, expired or of an older key
//!   generation) if there is one, else over the way used least recently. So an insert
//!   is O(1) and frees at most the one entry it replaces; nothing is ever swept on the
//!   request path (a dead entry stays until replaced or looked up).
//! - Admission: a verified token takes an empty way at once, but goes in over a dead
//!   or live entry only the second time it is seen. A "seen once" doorkeeper (one 32-bit tag per set,
//!   from the hash of the last token refused there) remembers the first sighting. A
//!   stream of one-off tokens thus never pushes out tokens that repeat, and a miss that
//!   is not admitted reads and writes 16 bytes of a compact tag array (80 KB for
//!   10,000 entries, small enough to stay in the CPU's caches): no lock, no
//!   allocation. Only tokens that verified are ever offered, so a client cannot fill
//!   the cache (or the doorkeeper) with junk.
//! - Memory: 68 bytes per unit of `capacity` on 64-bit targets, allocated up front
//!   (per way: its token pointer and length, principal pointer, expiry, issuer and
//!   generation, 48 bytes, and a 4-byte tag; per set of two: its lock and recency
//!   byte, 16 bytes, and the doorkeeper's tag and padding, 8), plus, per entry
//!   held, its token's bytes on the heap. The principal is shared with the requests
//!   that use it.
//! - An entry lives until its token's `exp` (plus leeway) and never longer than the
//!   configured cap after insertion.
//! - Each entry records the issuer whose key verified it and that issuer's key-set
//!   generation at the time; an entry from an older generation is a miss (and is
//!   removed), so rotating an issuer's keys drops its tokens. A hit reads the
//!   generation of its own issuer only: its cost does not grow with the number of
//!   trusted issuers, and a hit never routes by `iss` again.
//! - A hit costs a fast hash of the token's tail, one read lock and one comparison: no
//!   signature check, no JSON parse. Callers still check revocation on every hit.

use std::{
    hash::BuildHasher,
    num::NonZeroUsize,
    sync::{
        PoisonError, RwLock,
        atomic::{AtomicI64, AtomicU8, AtomicU32, Ordering},
    },
};

use portcullis_core::{Principal, internal::metrics};
use subtle::ConstantTimeEq as _;

/// How many bytes at the end of a token pick its slot.
const SLOT_BYTES: usize = 48;

/// Entries per set.
const WAYS: usize = 2;

/// Where a token lives in the cache: its keyed hash, never 0. Computed once per
/// request and used for the look-up and, on a miss, the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(u64);

/// What a verified token is good for: until when, and under which issuer's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    /// Unix seconds from which the entry is dead.
    pub(crate) until: i64,
    /// The index of the issuer whose key verified the token.
    pub(crate) issuer: usize,
    /// That issuer's key-set generation, read before the signature was checked.
    pub(crate) generation: u64,
}

struct Entry {
    token: Box<[u8]>,
    principal: Principal,
    until: i64,
    issuer: usize,
    generation: u64,
}

impl Entry {
    /// Alive at `now` under the current generation of its issuer (`current`).
    fn alive(&self, now: i64, current: &impl Fn(usize) -> u64) -> bool {
        now < self.until && self.generation == current(self.issuer)
    }
}

/// One set: its ways, and which of them was used last.
struct Set {
    /// The way used last.
    recent: AtomicU8,
    ways: RwLock<[Option<Entry>; WAYS]>,
}

/// What a miss reads of a set, kept apart in a compact array (16 bytes a set, 80 KB
/// for 10,000 entries) that stays in the CPU's caches: a token that is neither cached
/// nor admitted reads and writes this alone, with no lock.
#[repr(C, align(16))]
struct Tags {
    /// The low 32 bits of the hash of the entry in each way (0: empty; a hash always
    /// has its low bit set). Written only under the set's write lock; read without it
    /// as a hint. A look-up whose tag is in no way is a miss without locking; any
    /// other answer is decided under the lock, by the whole token.
    ways: [AtomicU32; WAYS],
    /// The doorkeeper: the tag of the last token offered here and not admitted.
    door: AtomicU32,
}

fn tag(slot: Slot) -> u32 {
    slot.0 as u32
}

pub(crate) struct TokenCache {
    sets: Box<[Set]>,
    tags: Box<[Tags]>,
    /// How many ways of each set are used (1 for a capacity of one, else 2).
    ways: usize,
    seed: foldhash::fast::RandomState,
    /// The clock of the latest insert, for [`len`](Self::len).
    latest_now: AtomicI64,
}

/// `hash` mapped onto `0..n` (multiply-shift: uses the hash's high bits).
fn index(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

impl TokenCache {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        let capacity = capacity.get();
        let (sets, ways) = if capacity == 1 {
            (1, 1)
        } else {
            (capacity / WAYS, WAYS)
        };
        Self {
            sets: (0..sets)
                .map(|_| Set {
                    recent: AtomicU8::new(0),
                    ways: RwLock::new([None, None]),
                })
                .collect(),
            tags: (0..sets)
                .map(|_| Tags {
                    ways: [AtomicU32::new(0), AtomicU32::new(0)],
                    door: AtomicU32::new(0),
                })
                .collect(),
            ways,
            seed: foldhash::fast::RandomState::default(),
            latest_now: AtomicI64::new(i64::MIN),
        }
    }

    /// How many live entries the cache holds, as of the clock of the latest insert
    /// and the issuers' `current` key generations. Walks the whole table: for
    /// diagnostics, not the request path.
    pub(crate) fn len(&self, current: impl Fn(usize) -> u64) -> usize {
        let now = self.latest_now.load(Ordering::Relaxed);
        self.sets
            .iter()
            .map(|set| {
                let ways = set.ways.read().unwrap_or_else(PoisonError::into_inner);
                ways.iter()
                    .flatten()
                    .filter(|e| e.alive(now, &current))
                    .count()
            })
            .sum()
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
        // The low bit set: 0 marks an empty way.
        Slot(self.seed.hash_one((token.len(), tail)) | 1)
    }

    /// The set of `slot` and its tags.
    fn at(&self, slot: Slot) -> (&Set, &Tags) {
        let i = index(slot.0, self.sets.len());
        (&self.sets[i], &self.tags[i])
    }

    /// The way whose tag is `tag` (no lock: only a hint).
    fn tagged(&self, tags: &Tags, tag: u32) -> Option<usize> {
        tags.ways[..self.ways]
            .iter()
            .position(|t| t.load(Ordering::Relaxed) == tag)
    }

    /// The principal cached for `token`, if alive at `now` and verified under the
    /// `current` key generation of its issuer (called with the entry's issuer index,
    /// only when an entry holds exactly `token`).
    pub(crate) fn get(
        &self,
        slot: Slot,
        token: &[u8],
        now: i64,
        current: impl Fn(usize) -> u64,
    ) -> Option<Principal> {
        let found = self.find(slot, token, now, &current);
        metrics::jwt_cache_lookup(found.is_some());
        found
    }

    fn find(
        &self,
        slot: Slot,
        token: &[u8],
        now: i64,
        current: &impl Fn(usize) -> u64,
    ) -> Option<Principal> {
        let (set, tags) = self.at(slot);
        let way = self.tagged(tags, tag(slot))?;
        {
            let ways = set.ways.read().unwrap_or_else(PoisonError::into_inner);
            // Under the lock, the whole token decides.
            let entry = ways[way].as_ref()?;
            if !same_token(&entry.token, token) {
                return None;
            }
            if entry.alive(now, current) {
                if usize::from(set.recent.load(Ordering::Relaxed)) != way {
                    set.recent.store(way as u8, Ordering::Relaxed);
                }
                return Some(entry.principal.clone());
            }
        }
        // Dead: remove it (one entry, under the set's lock).
        let dead = {
            let mut ways = set.ways.write().unwrap_or_else(PoisonError::into_inner);
            let gone = ways[way]
                .as_ref()
                .is_some_and(|e| !e.alive(now, current) && same_token(&e.token, token));
            if gone {
                tags.ways[way].store(0, Ordering::Relaxed);
                ways[way].take()
            } else {
                None
            }
        };
        metrics::jwt_cache_entries(-i64::from(dead.is_some()));
        drop(dead);
        None
    }

    /// Offers a token that just verified, valid as `validity` says. It goes in if it
    /// was offered before (the doorkeeper remembers its tag) or its set has an empty
    /// way; then into the way with its own tag, else a free way (empty, dead, or stale
    /// under its issuer's `current` generation), else over the way used least
    /// recently. Otherwise the doorkeeper records it: no lock, no allocation.
    pub(crate) fn insert(
        &self,
        slot: Slot,
        token: &[u8],
        principal: Principal,
        validity: Validity,
        now: i64,
        current: impl Fn(usize) -> u64,
    ) {
        if validity.until <= now {
            return;
        }
        if self.latest_now.load(Ordering::Relaxed) < now {
            self.latest_now.store(now, Ordering::Relaxed);
        }
        let (set, tags) = self.at(slot);
        let tag = tag(slot);
        let seen = tags.door.load(Ordering::Relaxed) == tag;
        if !seen && self.tagged(tags, 0).is_none() {
            tags.door.store(tag, Ordering::Relaxed);
            return;
        }
        let replaced = {
            let mut ways = set.ways.write().unwrap_or_else(PoisonError::into_inner);
            let ways = &mut ways[..self.ways];
            let way = self.tagged(tags, tag).or_else(|| {
                ways.iter()
                    .position(|e| e.as_ref().is_none_or(|e| !e.alive(now, &current)))
            });
            let way = match way {
                Some(way) => way,
                None if seen => {
                    let recent = usize::from(set.recent.load(Ordering::Relaxed));
                    if self.ways == 1 { 0 } else { 1 - recent.min(1) }
                }
                None => {
                    tags.door.store(tag, Ordering::Relaxed);
                    return;
                }
            };
            set.recent.store(way as u8, Ordering::Relaxed);
            tags.ways[way].store(tag, Ordering::Relaxed);
            if seen {
                tags.door.store(0, Ordering::Relaxed);
            }
            ways[way].replace(Entry {
                token: token.into(),
                principal,
                until: validity.until,
                issuer: validity.issuer,
                generation: validity.generation,
            })
        };
        // The one entry replaced, if any, is freed outside the lock.
        metrics::jwt_cache_entries(i64::from(replaced.is_none()));
        drop(replaced);
    }

    pub(crate) fn clear(&self) {
        for (set, tags) in self.sets.iter().zip(&self.tags) {
            let old = {
                let mut ways = set.ways.write().unwrap_or_else(PoisonError::into_inner);
                for t in &tags.ways {
                    t.store(0, Ordering::Relaxed);
                }
                tags.door.store(0, Ordering::Relaxed);
                std::mem::take(&mut *ways)
            };
            metrics::jwt_cache_entries(-(old.iter().flatten().count() as i64));
            drop(old);
        }
    }
}

impl Drop for TokenCache {
    fn drop(&mut self) {
        self.clear();
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

#[cfg(test)]
mod tests;
