//! Where rate-limit state lives: the [`RateLimitBackend`] trait, and
//! [`GovernorBackend`], the local default with bounded memory.

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    hash::Hash,
    num::NonZeroU32,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use dashmap::{DashMap, mapref::entry::Entry};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::{NoOpMiddleware, StateInformationMiddleware},
    nanos::Nanos,
    state::{InMemoryState, NotKeyed, StateStore, keyed::ShrinkableKeyedStateStore},
};

/// The outcome of one rate-limit check: enough for `Retry-After` and the `RateLimit`
/// fields whichever backend produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    remaining: u32,
    reset: Duration,
    retry_after: Duration,
}

impl Decision {
    /// The request may proceed; `remaining` more fit now, and the quota is fully
    /// replenished (or at least grows) after `reset`.
    pub fn allowed(remaining: u32, reset: Duration) -> Self {
        Self {
            allowed: true,
            remaining,
            reset,
            retry_after: Duration::ZERO,
        }
    }

    /// The request is refused; the next one fits after `retry_after`.
    pub fn denied(retry_after: Duration) -> Self {
        Self {
            allowed: false,
            remaining: 0,
            reset: retry_after,
            retry_after,
        }
    }

    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Quota units left (`r`).
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Time until more quota is available (`t`).
    pub fn reset(&self) -> Duration {
        self.reset
    }

    /// How long a refused client must wait (zero when allowed).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// A backend failed (a shared store unreachable, say). The layer answers `503`: it
/// fails closed.
#[derive(Debug)]
pub struct BackendError {
    message: &'static str,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl BackendError {
    /// An error with a short lowercase message (never a key or a credential).
    pub fn new(message: &'static str) -> Self {
        Self {
            message,
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A check still under way (a network round trip).
pub type BoxCheckFuture =
    Pin<Box<dyn Future<Output = Result<Decision, BackendError>> + Send + 'static>>;

/// The answer of [`RateLimitBackend::check`]: ready at once (local state, no
/// allocation), or a future.
pub enum Check {
    /// Decided synchronously.
    Ready(Result<Decision, BackendError>),
    /// Decided later.
    Pending(BoxCheckFuture),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Keeps rate-limit state for keys `K`: the local [`GovernorBackend`], or a shared
/// store (Redis) implemented elsewhere.
///
/// The quota is the backend's: it is fixed when the backend is built, and reported
/// by [`quota`](Self::quota) for the `RateLimit-Policy` field.
pub trait RateLimitBackend<K>: Send + Sync + 'static {
    /// Counts one request for `key` and decides.
    fn check(&self, key: &K) -> Check;

    /// [`check`](Self::check) for a caller that only needs to know whether to admit
    /// the request: the rate-limit layer without success headers. The request is
    /// counted and decided exactly as by `check`, and a refusal's
    /// [`retry_after`](Decision::retry_after) and [`reset`](Decision::reset) must be
    /// exact; an allowed request's [`remaining`](Decision::remaining) and `reset` may be
    /// left at zero to save work. By default, `check`.
    fn check_admission(&self, key: &K) -> Check {
        self.check(key)
    }

    /// The quota: burst `q` and the window `w` in which a spent burst is replenished.
    fn quota(&self) -> (NonZeroU32, Duration);
}

/// The default cap on tracked keys.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Housekeeping (`retain_recent`) runs every this many checks by default.
pub const DEFAULT_CLEANUP_EVERY: u64 = 4096;

/// A [`DashMap`] of governor states that never tracks more than `cap` keys: a new key
/// that finds it full shares one overflow state with every other such key.
///
/// Cloning shares the store.
pub struct BoundedStore<K> {
    shared: Arc<StoreShared<K>>,
}

struct StoreShared<K> {
    // A seeded fast hash: IP addresses and short keys hash in a few nanoseconds.
    map: DashMap<K, InMemoryState, foldhash::fast::RandomState>,
    overflow: InMemoryState,
    len: AtomicUsize,
    cap: usize,
    pressure: AtomicBool,
}

impl<K> Clone for BoundedStore<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: Hash + Eq + Clone> BoundedStore<K> {
    fn new(cap: usize) -> Self {
        Self {
            shared: Arc::new(StoreShared {
                map: DashMap::default(),
                overflow: InMemoryState::default(),
                len: AtomicUsize::new(0),
                cap,
                pressure: AtomicBool::new(false),
            }),
        }
    }

    fn reserve(&self) -> bool {
        self.shared
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.shared.cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Keys tracked right now (never above the cap).
    pub fn tracked(&self) -> usize {
        self.shared.len.load(Ordering::Acquire)
    }
}

fn tat_of(state: &InMemoryState) -> Option<Nanos> {
    state
        .measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>)
        .err()
        .flatten()
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.shared.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        if self.reserve() {
            match self.shared.map.entry(key.clone()) {
                Entry::Occupied(o) => {
                    // Another thread inserted it first: give the slot back.
                    self.shared.len.fetch_sub(1, Ordering::AcqRel);
                    o.get().measure_and_replace(&NotKeyed::NonKey, f)
                }
                Entry::Vacant(v) => v
                    .insert(InMemoryState::default())
                    .measure_and_replace(&NotKeyed::NonKey, f),
            }
        } else {
            self.shared.pressure.store(true, Ordering::Release);
            self.shared
                .overflow
                .measure_and_replace(&NotKeyed::NonKey, f)
        }
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.shared.map.retain(|_, state| {
            let keep = tat_of(state).is_some_and(|tat| tat > drop_below);
            if !keep {
                self.shared.len.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
    }

    fn shrink_to_fit(&self) {
        self.shared.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.tracked()
    }

    fn is_empty(&self) -> bool {
        self.tracked() == 0
    }
}

impl<K> fmt::Debug for BoundedStore<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedStore")
            .field("tracked", &self.shared.len.load(Ordering::Relaxed))
            .field("cap", &self.shared.cap)
            .finish()
    }
}

type Limiter<K, C> = RateLimiter<K, BoundedStore<K>, C, StateInformationMiddleware>;

struct Inner<K: Hash + Eq + Clone, C: Clock + Clone> {
    limiter: Limiter<K, C>,
    store: BoundedStore<K>,
    clock: C,
    quota: Quota,
    checks: AtomicU64,
    last_cleanup: AtomicU64,
    cleaning: AtomicBool,
    cleanup_every: u64,
}

/// The local backend: governor's GCRA over a sharded map, with bounded memory.
///
/// # Memory
///
/// At most [`max_keys`](Self::max_keys) keys (default 100,000) are tracked. Every
/// [`cleanup_every`](Self::cleanup_every) checks (default 4096), or every `tracked / 2`
/// checks when the map is larger (so the cleanup costs O(1) per check amortised), the
/// check that crosses the mark runs governor's `retain_recent` (dropping keys whose
/// state is back to fresh) and, when the map has become mostly empty,
/// `shrink_to_fit`. No background task is needed.
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
pub struct GovernorBackend<K: Hash + Eq + Clone, C: Clock + Clone = DefaultClock> {
    inner: Arc<Inner<K, C>>,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Clone for GovernorBackend<K, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> fmt::Debug for GovernorBackend<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GovernorBackend")
            .field("quota", &self.inner.quota)
            .field("tracked", &self.tracked())
            .field("max_keys", &self.max_keys())
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
        let store = BoundedStore::new(max_keys);
        let limiter = RateLimiter::<K, BoundedStore<K>, C, NoOpMiddleware<C::Instant>>::new(
            quota,
            store.clone(),
            clock.clone(),
        )
        .with_middleware::<StateInformationMiddleware>();
        Self {
            inner: Arc::new(Inner {
                limiter,
                store,
                clock,
                quota,
                checks: AtomicU64::new(0),
                last_cleanup: AtomicU64::new(0),
                cleaning: AtomicBool::new(false),
                cleanup_every,
            }),
        }
    }

    /// The cap on tracked keys (default 100,000).
    pub fn max_keys(&self) -> usize {
        self.inner.store.shared.cap
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
            i.store.shared.cap,
            u64::from(checks.get()),
        )
    }

    /// How many keys are tracked now (never above [`max_keys`](Self::max_keys)).
    pub fn tracked(&self) -> usize {
        self.inner.limiter.len()
    }

    /// Runs housekeeping now: drops fresh-again keys, shrinks the map when mostly empty.
    pub fn housekeep(&self) {
        let i = &self.inner;
        if i.cleaning
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let store = &i.store;
        let was_full = store.shared.pressure.swap(false, Ordering::AcqRel);
        i.limiter.retain_recent();
        let len = store.tracked();
        if store.shared.map.capacity() > 4 * len.max(1024) {
            i.limiter.shrink_to_fit();
        }
        if was_full && len >= store.shared.cap {
            tracing::warn!(
                target: "portcullis::ratelimit",
                tracked = len,
                max_keys = store.shared.cap,
                "rate limit key cap reached: new keys share the overflow bucket"
            );
        }
        i.last_cleanup
            .store(i.checks.load(Ordering::Relaxed), Ordering::Release);
        i.cleaning.store(false, Ordering::Release);
    }

    /// The synchronous check (what [`RateLimitBackend::check`] returns as `Ready`).
    pub fn check_now(&self, key: &K) -> Decision {
        self.decide(key, true)
    }

    /// The synchronous [`check_admission`](RateLimitBackend::check_admission): an
    /// allowed request's `remaining` and `reset` are zero.
    pub fn check_admission_now(&self, key: &K) -> Decision {
        self.decide(key, false)
    }

    #[inline]
    fn decide(&self, key: &K, counts: bool) -> Decision {
        let i = &self.inner;
        // The count only paces housekeeping, so a plain load and store do: racing
        // threads may lose a few increments (housekeeping then runs a few checks
        // later), but not a locked read-modify-write on every request. A count that a
        // stale store set back below the last cleanup reads as zero checks since.
        let n = i.checks.load(Ordering::Relaxed).wrapping_add(1);
        i.checks.store(n, Ordering::Relaxed);
        let since = n.saturating_sub(i.last_cleanup.load(Ordering::Relaxed));
        // The interval grows with the map, so a retain over `tracked` entries costs
        // O(1) per check amortised, even while a flood keeps the map full.
        if since >= i.cleanup_every.max(i.store.tracked() as u64 / 2) {
            self.housekeep();
        }
        match i.limiter.check_key(key) {
            Ok(_) if !counts => Decision::allowed(0, Duration::ZERO),
            Ok(snapshot) => {
                let burst = i.quota.burst_size().get();
                // A division and a multiplication: about a quarter of the check's
                // time, hence `counts`.
                let remaining = snapshot.remaining_burst_capacity();
                // The theoretical arrival time lies within `burst - remaining` cell
                // intervals from now: that bounds the time to a full quota.
                let reset = i.quota.replenish_interval() * burst.saturating_sub(remaining);
                Decision::allowed(remaining, reset)
            }
            Err(not_until) => Decision::denied(not_until.wait_time_from(i.clock.now())),
        }
    }
}

impl<K, C> RateLimitBackend<K> for GovernorBackend<K, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    C: Clock + Clone + Send + Sync + 'static,
{
    fn check(&self, key: &K) -> Check {
        Check::Ready(Ok(self.check_now(key)))
    }

    fn check_admission(&self, key: &K) -> Check {
        Check::Ready(Ok(self.check_admission_now(key)))
    }

    fn quota(&self) -> (NonZeroU32, Duration) {
        let q = self.inner.quota;
        (q.burst_size(), q.burst_size_replenished_in())
    }
}
