//! The bounded map of GCRA states behind [`GovernorBackend`](super::GovernorBackend).

use std::{
    fmt,
    hash::Hash,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use dashmap::{DashMap, mapref::entry::Entry};
use governor::{
    nanos::Nanos,
    state::{InMemoryState, NotKeyed, StateStore},
};
use portcullis_core::internal::metrics;

/// A [`DashMap`] of governor's atomic GCRA states (each a theoretical arrival time)
/// that never tracks more than `cap` keys: a new key that finds it full shares one
/// overflow state with every other such key.
pub(super) struct BoundedStore<K> {
    // A seeded fast hash: IP addresses and short keys hash in a few nanoseconds.
    map: DashMap<K, InMemoryState, foldhash::fast::RandomState>,
    overflow: InMemoryState,
    len: AtomicUsize,
    cap: usize,
    pressure: AtomicBool,
}

impl<K: Hash + Eq + Clone> BoundedStore<K> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            map: DashMap::default(),
            overflow: InMemoryState::default(),
            len: AtomicUsize::new(0),
            cap,
            pressure: AtomicBool::new(false),
        }
    }

    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// Keys tracked right now (never above the cap).
    pub(super) fn tracked(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether a new key found the map full since the last call.
    pub(super) fn take_pressure(&self) -> bool {
        self.pressure.swap(false, Ordering::AcqRel)
    }

    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Reads `key`'s arrival time and, when `f` says so, replaces it atomically
    /// (governor's `StateStore::measure_and_replace`).
    #[inline]
    pub(super) fn measure_and_replace<T, E>(
        &self,
        key: &K,
        f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    ) -> Result<T, E> {
        if let Some(state) = self.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        if self.reserve() {
            match self.map.entry(key.clone()) {
                Entry::Occupied(o) => {
                    // Another thread inserted it first: give the slot back.
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    o.get().measure_and_replace(&NotKeyed::NonKey, f)
                }
                Entry::Vacant(v) => {
                    metrics::rate_limit_keys(1);
                    v.insert(InMemoryState::default())
                        .measure_and_replace(&NotKeyed::NonKey, f)
                }
            }
        } else {
            metrics::rate_limit_overflow();
            self.pressure.store(true, Ordering::Release);
            self.overflow.measure_and_replace(&NotKeyed::NonKey, f)
        }
    }

    /// Drops the keys whose arrival time is not after `drop_below` (fresh again).
    pub(super) fn retain_recent(&self, drop_below: u64) {
        let mut dropped = 0;
        self.map.retain(|_, state| {
            let keep = tat_of(state).is_some_and(|tat| tat.as_u64() > drop_below);
            if !keep {
                self.len.fetch_sub(1, Ordering::AcqRel);
                dropped += 1;
            }
            keep
        });
        metrics::rate_limit_keys(-dropped);
    }

    /// Shrinks the map when it is mostly empty.
    pub(super) fn shrink_if_sparse(&self) {
        if self.map.capacity() > 4 * self.tracked().max(1024) {
            self.map.shrink_to_fit();
        }
    }
}

fn tat_of(state: &InMemoryState) -> Option<Nanos> {
    state
        .measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>)
        .err()
        .flatten()
}

impl<K> Drop for BoundedStore<K> {
    fn drop(&mut self) {
        metrics::rate_limit_keys(-(*self.len.get_mut() as i64));
    }
}

impl<K> fmt::Debug for BoundedStore<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedStore")
            .field("tracked", &self.len.load(Ordering::Relaxed))
            .field("cap", &self.cap)
            .finish()
    }
}
