//! Where rate-limit state lives: the [`RateLimitBackend`] trait, the [`Decision`] it
//! returns, and [`GovernorBackend`], the local default with bounded memory.

use std::{error::Error as StdError, fmt, num::NonZeroU32, time::Duration};

use portcullis_core::MaybeReady;

mod governor;
mod store;

pub use self::governor::GovernorBackend;

/// The default cap on tracked keys.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Housekeeping runs every this many checks by default.
pub const DEFAULT_CLEANUP_EVERY: u64 = 4096;

/// Keeps rate-limit state for keys `K`: the local [`GovernorBackend`], or a shared
/// store (Redis) implemented elsewhere.
///
/// The quota is the backend's: it is fixed when the backend is built, and reported
/// by [`quota`](Self::quota) for the `RateLimit-Policy` field.
///
/// ```
/// use std::{num::NonZeroU32, time::Duration};
/// use portcullis_core::MaybeReady;
/// use portcullis_ratelimit::{BackendError, Decision, RateLimitBackend};
///
/// /// Lets everyone through, announcing a quota of 10 per second.
/// struct Unlimited;
///
/// impl RateLimitBackend<String> for Unlimited {
///     fn check(&self, _key: &String) -> MaybeReady<Result<Decision, BackendError>> {
///         MaybeReady::Ready(Ok(Decision::allowed(9, Duration::from_millis(100))))
///     }
///
///     fn quota(&self) -> (NonZeroU32, Duration) {
///         (NonZeroU32::new(10).unwrap(), Duration::from_secs(1))
///     }
/// }
/// ```
pub trait RateLimitBackend<K>: Send + Sync + 'static {
    /// Counts one request for `key` and decides: at once for state in memory
    /// ([`MaybeReady::Ready`], no allocation), or after a round trip to a shared
    /// store ([`MaybeReady::pending`]).
    fn check(&self, key: &K) -> MaybeReady<Result<Decision, BackendError>>;

    /// The quota: burst `q` and the window `w` in which a spent burst is replenished.
    fn quota(&self) -> (NonZeroU32, Duration);
}

/// A shared backend, or one chosen at run time: `Arc<dyn RateLimitBackend<K>>` is a
/// backend too (in memory on one machine, in Redis on several, from one variable).
impl<K, B: RateLimitBackend<K> + ?Sized> RateLimitBackend<K> for std::sync::Arc<B> {
    fn check(&self, key: &K) -> MaybeReady<Result<Decision, BackendError>> {
        (**self).check(key)
    }

    fn quota(&self) -> (NonZeroU32, Duration) {
        (**self).quota()
    }
}

/// The outcome of one rate-limit check: enough for `Retry-After` and the `RateLimit`
/// fields whichever backend produced it.
///
/// [`reset`](Self::reset) is the `t` of the `RateLimit` field: the time until more
/// quota is available, one unit more than [`remaining`](Self::remaining). It means
/// the same whether the request was allowed or refused, so the last request a burst
/// admits and the refusal right after it announce the same `t`.
#[derive(Clone, Copy)]
pub struct Decision {
    allowed: bool,
    counts: Counts,
    retry_after: Duration,
}

#[derive(Clone, Copy)]
enum Counts {
    Known {
        remaining: u32,
        reset: Duration,
    },
    // An admission by the local GCRA, worked out when asked: its theoretical arrival
    // time lies `ahead` ns from now, one unit is `interval` ns, the burst `burst`
    // units. The division this takes is left to callers that want the counts (the
    // layer without success headers never does).
    Gcra {
        ahead: u64,
        interval: u64,
        burst: u32,
    },
}

impl Decision {
    /// The request may proceed; `remaining` more fit now, and one more unit becomes
    /// available after `reset`.
    pub fn allowed(remaining: u32, reset: Duration) -> Self {
        Self {
            allowed: true,
            counts: Counts::Known { remaining, reset },
            retry_after: Duration::ZERO,
        }
    }

    /// The request is refused; the next one fits after `retry_after`.
    pub fn denied(retry_after: Duration) -> Self {
        Self {
            allowed: false,
            counts: Counts::Known {
                remaining: 0,
                reset: retry_after,
            },
            retry_after,
        }
    }

    /// An admission by a GCRA whose theoretical arrival time is `ahead` ns away
    /// (`0 < ahead <= burst * interval`).
    #[inline]
    pub(crate) fn admitted(ahead: u64, interval: u64, burst: u32) -> Self {
        Self {
            allowed: true,
            counts: Counts::Gcra {
                ahead,
                interval,
                burst,
            },
            retry_after: Duration::ZERO,
        }
    }

    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Quota units left (`r`).
    pub fn remaining(&self) -> u32 {
        match self.counts {
            Counts::Known { remaining, .. } => remaining,
            Counts::Gcra {
                ahead,
                interval,
                burst,
            } => {
                let spent = u32::try_from(ahead.div_ceil(interval)).unwrap_or(u32::MAX);
                burst.saturating_sub(spent)
            }
        }
    }

    /// Time until more quota is available (`t`): one unit more than
    /// [`remaining`](Self::remaining).
    pub fn reset(&self) -> Duration {
        match self.counts {
            Counts::Known { reset, .. } => reset,
            Counts::Gcra {
                ahead, interval, ..
            } => {
                // The units spent are the intervals `ahead` reaches into; the oldest
                // comes back when the first of them has passed.
                let spent = ahead.div_ceil(interval).max(1);
                Duration::from_nanos(ahead - interval * (spent - 1))
            }
        }
    }

    /// How long a refused client must wait (zero when allowed).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        self.allowed == other.allowed
            && self.retry_after == other.retry_after
            && self.remaining() == other.remaining()
            && self.reset() == other.reset()
    }
}

impl Eq for Decision {}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("allowed", &self.allowed)
            .field("remaining", &self.remaining())
            .field("reset", &self.reset())
            .field("retry_after", &self.retry_after)
            .finish()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_counts_match_the_explicit_ones() {
        let s = 1_000_000_000;
        // A burst of 3, one unit per 20 s: after one request at rest the arrival
        // time is 20 s ahead; two units remain and the spent one is back in 20 s.
        let cases = [
            (20 * s, Decision::allowed(2, Duration::from_secs(20))),
            (40 * s, Decision::allowed(1, Duration::from_secs(20))),
            (60 * s, Decision::allowed(0, Duration::from_secs(20))),
            // Two requests at rest, a third 13 s later: 47 s ahead, and the first
            // unit is back 20 s after it was spent, 7 s from now.
            (47 * s, Decision::allowed(0, Duration::from_secs(7))),
            // One request at rest, a second 13 s later.
            (27 * s, Decision::allowed(1, Duration::from_secs(7))),
        ];
        for (ahead, expected) in cases {
            let lazy = Decision::admitted(ahead, 20 * s, 3);
            assert_eq!(lazy, expected, "{ahead}");
            assert_eq!(format!("{lazy:?}"), format!("{expected:?}"));
        }
    }
}
