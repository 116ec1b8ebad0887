//! [`Backoff`]: how failures turn into waiting, and the failure count that applies it.

use std::{num::NonZeroU32, time::Duration};

/// How failures turn into waiting: the first `free_failures` of a window cost
/// nothing; each further failure makes the key wait `base_delay`, doubled per extra
/// failure, up to `max_delay`. The window opens at the key's first failure and lasts
/// `window`; after it the count starts over.
///
/// A fixed window, opened by the first failure, is what lets a key recover: a
/// failure now and then cannot keep an old count alive.
///
/// There is no lockout: the wait never exceeds `max_delay`, so the legitimate owner
/// of an account under attack gets a turn again. See the [module docs](crate::login)
/// for the keys a backoff applies to.
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
        let doublings = (failures - self.free - 1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The failures of a window that cost nothing.
    pub fn free_failures(&self) -> u32 {
        self.free
    }

    /// The window after which failures are forgotten, counted from the first.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The first wait.
    pub fn first_delay(&self) -> Duration {
        self.base
    }

    /// The longest wait.
    pub fn longest_delay(&self) -> Duration {
        self.max
    }
}

/// Nanoseconds, saturating.
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The failure count of one key, in nanoseconds of the backend's clock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Count {
    pub(super) failures: u32,
    /// When the window opened (the first failure of it).
    start: u64,
    /// The last failure counted.
    pub(super) last: u64,
    pub(super) blocked_until: u64,
}

/// What counting one failure changed, so that a refund can put it back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Undo {
    prev_last: u64,
    set_last: u64,
    prev_block: u64,
    set_block: u64,
}

impl Count {
    /// Whether the window holds failures.
    pub(super) fn active(&self, policy: &Backoff, now: u64) -> bool {
        self.failures > 0 && now.saturating_sub(self.start) < nanos(policy.window)
    }

    /// Whether the entry still matters (counting or blocking).
    pub(super) fn live(&self, policy: &Backoff, now: u64) -> bool {
        self.active(policy, now) || self.blocked_until > now
    }

    /// The wait still imposed, if any.
    pub(super) fn wait(&self, now: u64) -> Option<u64> {
        (self.blocked_until > now).then(|| self.blocked_until - now)
    }

    /// Counts one failure (opening a new window when the last one is over).
    pub(super) fn count(&mut self, policy: &Backoff, now: u64) -> Undo {
        if !self.active(policy, now) {
            self.failures = 0;
            self.start = now;
        }
        self.failures = self.failures.saturating_add(1);
        let undo_last = (self.last, now);
        self.last = now;
        let prev_block = self.blocked_until;
        let delay = policy.delay_after(self.failures);
        if !delay.is_zero() {
            self.blocked_until = now.saturating_add(nanos(delay));
        }
        Undo {
            prev_last: undo_last.0,
            set_last: undo_last.1,
            prev_block,
            set_block: self.blocked_until,
        }
    }

    /// Takes back a failure counted with `undo`: the count, and the wait and time it
    /// set unless a later failure has changed them since. Returns whether nothing is
    /// left (no failure, no wait): the entry can go.
    pub(super) fn refund(&mut self, undo: &Undo, now: u64) -> bool {
        self.failures = self.failures.saturating_sub(1);
        if self.blocked_until == undo.set_block {
            self.blocked_until = undo.prev_block;
        }
        if self.last == undo.set_last {
            self.last = undo.prev_last;
        }
        self.failures == 0 && self.blocked_until <= now
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
        let p = policy();
        let mut c = Count::default();
        c.count(&p, 0);
        c.count(&p, 0);
        assert_eq!(c.wait(0), None);
        c.count(&p, 0); // third: now blocked 1 s
        assert_eq!(c.wait(0), Some(S));
        c.count(&p, S); // fourth: 2 s
        assert_eq!(c.wait(S), Some(2 * S));
        c.count(&p, 3 * S); // fifth: 4 s
        assert_eq!(c.wait(3 * S), Some(4 * S));
    }

    #[test]
    fn the_window_opens_at_the_first_failure_and_closes_for_good() {
        let p = policy();
        let mut c = Count::default();
        // A failure every 50 s: the window opened at 0 s closes at 60 s all the same.
        c.count(&p, 0);
        c.count(&p, 50 * S);
        assert!(c.active(&p, 59 * S));
        c.count(&p, 100 * S);
        assert_eq!(c.failures, 1, "a new window, not a third failure");
        assert_eq!(c.wait(100 * S), None);
    }

    #[test]
    fn a_refund_puts_back_what_the_failure_set() {
        let p = policy();
        let mut c = Count::default();
        c.count(&p, 0);
        c.count(&p, 0);
        let before = c;
        let undo = c.count(&p, 5 * S);
        assert_eq!(c.wait(5 * S), Some(S));
        assert!(!c.refund(&undo, 5 * S));
        assert_eq!(c, before);
        // Refunding the rest leaves nothing behind.
        let mut fresh = Count::default();
        let undo = fresh.count(&p, 7 * S);
        assert!(fresh.refund(&undo, 7 * S));
    }

    #[test]
    fn delays_are_capped() {
        let p = policy().max_delay(Duration::from_secs(10));
        assert_eq!(p.delay_after(3), Duration::from_secs(1));
        assert_eq!(p.delay_after(6), Duration::from_secs(8));
        assert_eq!(p.delay_after(7), Duration::from_secs(10));
        assert_eq!(p.delay_after(u32::MAX), Duration::from_secs(10));
    }
}
