//! [`GovernorBackend`]: GCRA state in memory, with bounded memory.

use std::{
    cmp, fmt,
    hash::Hash,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use governor::{
    Quota,
    clock::{Clock, DefaultClock, Reference},
};
use portcullis_core::MaybeReady;

use super::{
    BackendError, DEFAULT_CLEANUP_EVERY, DEFAULT_MAX_KEYS, Decision, RateLimitBackend,
    store::BoundedStore,
};

struct Inner<K, C: Clock> {
    store: BoundedStore<K>,
    clock: C,
    start: C::Instant,
    quota: Quota,
    // GCRA parameters in nanoseconds, as governor derives them: the emission
    // interval (one unit) and the tolerance (the rest of the burst).
    interval: u64,
    tolerance: u64,
    burst: u32,
    checks: AtomicU64,
    last_cleanup: AtomicU64,
    cleaning: AtomicBool,
    cleanup_every: u64,
}

/// The local backend: GCRA (the algorithm of [governor], on its atomic per-key
/// state) over a sharded map, with bounded memory.
///
/// # Memory
///
/// At most [`max_keys`](Self::max_keys) keys (default 100,000) are tracked. Every
/// [`cleanup_every`](Self::cleanup_every) checks (default 4096), or every `tracked / 2`
/// checks when the map is larger (so the cleanup costs O(1) per check amortised), the
/// check that crosses the mark drops the keys whose state is back to fresh and, when
/// the map has become mostly empty, shrinks it. No background task is needed.
///
/// When the map is full and nothing can be dropped (a flood of distinct keys within
/// one window), keys already tracked keep their exact state (a limited key stays
/// limited; none is evicted, so a flood cannot reset anyone's count), and **new keys
/// share one overflow bucket with the same quota**. The service stays limited, never
/// unlimited; the price is that new clients arriving during such a flood are limited
/// together, until housekeeping frees slots. A `WARN` event
/// (`portcullis::ratelimit`) reports it.
///
/// Cloning shares the state.
///
/// [governor]: https://docs.rs/governor
pub struct GovernorBackend<K, C: Clock = DefaultClock> {
    inner: Arc<Inner<K, C>>,
}

impl<K, C: Clock> Clone for GovernorBackend<K, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, C: Clock> fmt::Debug for GovernorBackend<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GovernorBackend")
            .field("quota", &self.inner.quota)
            .field("store", &self.inner.store)
            .finish()
    }
}

impl<K: Hash + Eq + Clone> GovernorBackend<K> {
    /// A backend enforcing `quota` per key, on the default (monotonic) clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> GovernorBackend<K, C> {
    /// A backend on `clock` (`governor::clock::FakeRelativeClock` in tests).
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self::build(quota, clock, DEFAULT_MAX_KEYS, DEFAULT_CLEANUP_EVERY)
    }

    fn build(quota: Quota, clock: C, max_keys: usize, cleanup_every: u64) -> Self {
        let interval = duration_nanos(quota.replenish_interval()).max(1);
        let burst = quota.burst_size().get();
        Self {
            inner: Arc::new(Inner {
                store: BoundedStore::new(max_keys),
                start: clock.now(),
                clock,
                quota,
                interval,
                tolerance: interval.saturating_mul(u64::from(burst - 1)),
                burst,
                checks: AtomicU64::new(0),
                last_cleanup: AtomicU64::new(0),
                cleaning: AtomicBool::new(false),
                cleanup_every,
            }),
        }
    }

    /// The cap on tracked keys (default 100,000).
    pub fn max_keys(&self) -> usize {
        self.inner.store.cap()
    }

    /// Returns a backend with a different cap on tracked keys. The state starts
    /// empty: call it while configuring.
    pub fn with_max_keys(self, max_keys: NonZeroU32) -> Self {
        let i = &self.inner;
        Self::build(
            i.quota,
            i.clock.clone(),
            max_keys.get() as usize,
            i.cleanup_every,
        )
    }

    /// Returns a backend that runs housekeeping every `checks` checks (state starts
    /// empty).
    pub fn cleanup_every(self, checks: NonZeroU32) -> Self {
        let i = &self.inner;
        Self::build(
            i.quota,
            i.clock.clone(),
            i.store.cap(),
            u64::from(checks.get()),
        )
    }

    /// How many keys are tracked now (never above [`max_keys`](Self::max_keys)).
    pub fn tracked(&self) -> usize {
        self.inner.store.tracked()
    }

    /// Runs housekeeping now: drops fresh-again keys, shrinks the map when mostly empty.
    #[cold]
    pub fn housekeep(&self) {
        let i = &self.inner;
        if i.cleaning
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let was_full = i.store.take_pressure();
        i.store.retain_recent(self.now());
        i.store.shrink_if_sparse();
        let len = i.store.tracked();
        if was_full && len >= i.store.cap() {
            tracing::warn!(
                target: "portcullis::ratelimit",
                tracked = len,
                max_keys = i.store.cap(),
                "rate limit key cap reached: new keys share the overflow bucket"
            );
        }
        i.last_cleanup
            .store(i.checks.load(Ordering::Relaxed), Ordering::Release);
        i.cleaning.store(false, Ordering::Release);
    }

    /// Nanoseconds since the backend was built, on its clock.
    #[inline]
    fn now(&self) -> u64 {
        let i = &self.inner;
        i.clock.now().duration_since(i.start).as_u64()
    }

    /// Counts one request for `key` and decides, synchronously: what
    /// [`RateLimitBackend::check`] returns, ready.
    #[inline]
    pub fn check_now(&self, key: &K) -> Decision {
        let i = &self.inner;
        // The count only paces housekeeping, so a plain load and store do: racing
        // threads may lose a few increments (housekeeping then runs a few checks
        // later), but not a locked read-modify-write on every request. A count that a
        // stale store set back below the last cleanup reads as zero checks since.
        let n = i.checks.load(Ordering::Relaxed).wrapping_add(1);
        i.checks.store(n, Ordering::Relaxed);
        let since = n.saturating_sub(i.last_cleanup.load(Ordering::Relaxed));
        // The interval grows with the map, so a cleanup over `tracked` entries costs
        // O(1) per check amortised, even while a flood keeps the map full.
        if since >= i.cleanup_every.max(i.store.tracked() as u64 / 2) {
            self.housekeep();
        }
        // GCRA as governor runs it, with one reading of the clock for the decision
        // and its times: admit when the theoretical arrival time (TAT) is at most a
        // tolerance ahead, then push it one interval on.
        let now = self.now();
        let (interval, tolerance) = (i.interval, i.tolerance);
        let decided = i.store.measure_and_replace(key, |tat| {
            let tat = tat.map_or(now, |t| t.as_u64());
            let earliest = tat.saturating_sub(tolerance);
            if now < earliest {
                Err(earliest - now)
            } else {
                let next = cmp::max(tat, now) + interval;
                Ok((next - now, next.into()))
            }
        });
        match decided {
            Ok(ahead) => Decision::admitted(ahead, interval, i.burst),
            Err(wait) => Decision::denied(Duration::from_nanos(wait)),
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<K, C> RateLimitBackend<K> for GovernorBackend<K, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    C: Clock + Clone + Send + Sync + 'static,
{
    #[inline]
    fn check(&self, key: &K) -> MaybeReady<Result<Decision, BackendError>> {
        MaybeReady::Ready(Ok(self.check_now(key)))
    }

    fn quota(&self) -> (NonZeroU32, Duration) {
        let q = self.inner.quota;
        (q.burst_size(), q.burst_size_replenished_in())
    }
}
