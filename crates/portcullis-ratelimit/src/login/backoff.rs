//! Failure counting with growing backoff, in a capped map.

use std::{
    hash::Hash,
    num::NonZeroU32,
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use dashmap::{DashMap, mapref::entry::Entry as MapEntry};

/// How failures turn into waiting: the first `free_failures` within `window` cost
/// nothing; each further failure makes the key wait `base_delay`, doubled per extra
/// failure, up to `max_delay`. A key with no failure for `window` starts over.
///
/// There is no lockout: the wait never exceeds `max_delay`, so the legitimate owner
/// of an account under attack gets a turn again.
///
/// ```
/// use std::{num::NonZeroU32, time::Duration};
/// use portcullis_ratelimit::Backoff;
///
/// let b = Backoff::new(NonZeroU32::new(3).unwrap(), Duration::from_secs(900));
/// assert_eq!(b.delay_after(3), Duration::ZERO);
/// assert_eq!(b.delay_after(4), Duration::from_secs(1));
/// assert_eq!(b.delay_after(6), Duration::from_secs(4));
/// assert_eq!(b.delay_after(60), Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    free: u32,
    window: Duration,
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// `free_failures` per `window` before any wait; then 1 s doubling up to 15 min.
    pub fn new(free_failures: NonZeroU32, window: Duration) -> Self {
        Self {
            free: free_failures.get(),
            window,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
        }
    }

    /// The first wait (default 1 s).
    pub fn base_delay(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The longest wait (default 15 min).
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The wait imposed after the `failures`-th failure within the window.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free - 1).min(40);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The window after which failures are forgotten.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    failures: u32,
    last: u64,
    blocked_until: u64,
}

impl Entry {
    fn begin(&mut self, policy: &Backoff, now: u64) -> Result<(), Duration> {
        if self.blocked_until > now {
            return Err(Duration::from_nanos(self.blocked_until - now));
        }
        if now.saturating_sub(self.last) > nanos(policy.window) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        let delay = policy.delay_after(self.failures);
        if !delay.is_zero() {
            self.blocked_until = now.saturating_add(nanos(delay));
        }
        Ok(())
    }

    fn refund(&mut self, policy: &Backoff) {
        self.failures = self.failures.saturating_sub(1);
        if self.failures <= policy.free {
            self.blocked_until = 0;
        }
    }

    fn stale(&self, policy: &Backoff, now: u64) -> bool {
        self.blocked_until <= now && now.saturating_sub(self.last) > nanos(policy.window)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Which state a provisional failure was counted in.
#[derive(Debug)]
pub(crate) enum Slot<K> {
    Key(K),
    Overflow,
}

/// Failure counts per key, at most `cap` keys; beyond, new keys share one overflow
/// entry (limited together, never unlimited; tracked keys are never evicted early).
#[derive(Debug)]
pub(crate) struct BackoffStore<K: Hash + Eq> {
    map: DashMap<K, Entry>,
    overflow: Mutex<Entry>,
    len: AtomicUsize,
    cap: usize,
    policy: Backoff,
    ops: AtomicU64,
    last_cleanup: AtomicU64,
}

const CLEANUP_EVERY: u64 = 1024;

impl<K: Hash + Eq + Clone> BackoffStore<K> {
    pub(crate) fn new(policy: Backoff, cap: usize) -> Self {
        Self {
            map: DashMap::new(),
            overflow: Mutex::new(Entry::default()),
            len: AtomicUsize::new(0),
            cap,
            policy,
            ops: AtomicU64::new(0),
            last_cleanup: AtomicU64::new(0),
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Counts a provisional failure for `key`, or says how long it must wait.
    pub(crate) fn begin(&self, key: K, now: u64) -> Result<Slot<K>, Duration> {
        let n = self.ops.fetch_add(1, Ordering::Relaxed) + 1;
        let since = n.wrapping_sub(self.last_cleanup.load(Ordering::Relaxed));
        if since >= CLEANUP_EVERY || (since >= 64 && self.tracked() >= self.cap) {
            self.housekeep(now, n);
        }
        if let Some(mut e) = self.map.get_mut(&key) {
            return e.begin(&self.policy, now).map(|()| Slot::Key(key));
        }
        let reserved = self
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                (l < self.cap).then_some(l + 1)
            })
            .is_ok();
        if !reserved {
            let mut e = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
            return e.begin(&self.policy, now).map(|()| Slot::Overflow);
        }
        match self.map.entry(key.clone()) {
            MapEntry::Occupied(mut o) => {
                self.len.fetch_sub(1, Ordering::AcqRel);
                o.get_mut()
                    .begin(&self.policy, now)
                    .map(|()| Slot::Key(key))
            }
            MapEntry::Vacant(v) => {
                let mut e = Entry::default();
                let r = e.begin(&self.policy, now);
                v.insert(e);
                r.map(|()| Slot::Key(key))
            }
        }
    }

    /// The attempt was not a failure after all.
    pub(crate) fn refund(&self, slot: &Slot<K>) {
        match slot {
            Slot::Key(k) => {
                if let Some(mut e) = self.map.get_mut(k) {
                    e.refund(&self.policy);
                }
            }
            Slot::Overflow => self
                .overflow
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .refund(&self.policy),
        }
    }

    /// A success: forget the key's failures.
    pub(crate) fn clear(&self, slot: &Slot<K>) {
        match slot {
            Slot::Key(k) => {
                if self.map.remove(k).is_some() {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                }
            }
            // The overflow entry is shared: one success does not clear the others.
            Slot::Overflow => self.refund(slot),
        }
    }

    fn housekeep(&self, now: u64, n: u64) {
        self.last_cleanup.store(n, Ordering::Relaxed);
        self.map.retain(|_, e| {
            let keep = !e.stale(&self.policy, now);
            if !keep {
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
        let len = self.tracked();
        if self.map.capacity() > 4 * len.max(1024) {
            self.map.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn policy() -> Backoff {
        Backoff::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(60))
    }

    #[test]
    fn waits_double_after_free_failures() {
        let store = BackoffStore::new(policy(), 10);
        assert!(store.begin("a", 0).is_ok());
        assert!(store.begin("a", 0).is_ok());
        assert!(store.begin("a", 0).is_ok()); // third: now blocked 1 s
        assert_eq!(store.begin("a", 0).unwrap_err(), Duration::from_secs(1));
        assert!(store.begin("a", S).is_ok()); // fourth: 2 s
        assert_eq!(store.begin("a", S).unwrap_err(), Duration::from_secs(2));
        assert!(store.begin("a", 3 * S).is_ok()); // fifth: 4 s
        assert_eq!(store.begin("a", 3 * S).unwrap_err(), Duration::from_secs(4));
    }

    #[test]
    fn failures_are_forgotten_after_the_window() {
        let store = BackoffStore::new(policy(), 10);
        for _ in 0..3 {
            store.begin("a", 0).unwrap();
        }
        assert!(store.begin("a", 0).is_err());
        // 61 s later: no lockout, counting starts over.
        assert!(store.begin("a", 61 * S).is_ok());
        assert!(store.begin("a", 61 * S).is_ok());
    }

    #[test]
    fn cap_holds_and_overflow_is_shared() {
        let store = BackoffStore::new(policy(), 3);
        for k in 0..100u32 {
            let _ = store.begin(k, 0);
            assert!(store.tracked() <= 3);
        }
        // Keys 3.. share the overflow entry, which is now blocked.
        assert!(store.begin(1000, 0).is_err());
        // A tracked key keeps its own count.
        assert!(store.begin(0, 0).is_ok());
    }
}
