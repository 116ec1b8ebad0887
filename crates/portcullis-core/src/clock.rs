//! Injectable time: every Portcullis crate reads the time through [`Clock`], so a test
//! moves one [`ManualClock`] instead of sleeping, and the same clock can drive the JWT
//! verifier, API-key expiry and refresh-token expiry at once.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

/// A source of the current time.
///
/// [`SystemClock`] is the default; [`ManualClock`] is for tests; closures
/// `Fn() -> SystemTime` are clocks too:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_core::clock::Clock;
///
/// let fixed = || UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(fixed.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// A time no earlier than [`now`](Self::now) would give, and at most a few
    /// milliseconds later, possibly cheaper to read.
    ///
    /// For expiry checks on hot paths whose only possible error is to see something
    /// expire a few milliseconds early (a cache entry that then takes the precise path,
    /// a key refused just before its expiry). The default reads [`now`](Self::now);
    /// [`SystemClock`] reads the kernel's coarse clock where there is one (Linux).
    fn now_or_later(&self) -> SystemTime {
        self.now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The operating system's wall clock. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(target_os = "linux")]
    fn now_or_later(&self) -> SystemTime {
        coarse::now_or_later()
    }
}

/// The kernel's coarse wall clock: the time of the last timer tick, read without
/// touching the hardware counter (a few nanoseconds instead of a few tens).
#[cfg(target_os = "linux")]
mod coarse {
    use std::{
        sync::OnceLock,
        time::{Duration, SystemTime},
    };

    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// How far the coarse clock may lag the precise one: twice its resolution (one
    /// tick, so two leave room for a tick handled late), and never less than 1 ms.
    fn margin() -> Duration {
        static MARGIN: OnceLock<Duration> = OnceLock::new();
        *MARGIN.get_or_init(|| {
            let res = duration(clock_getres(ClockId::RealtimeCoarse)).unwrap_or_default();
            (res * 2).max(Duration::from_millis(1))
        })
    }

    fn duration(ts: Timespec) -> Option<Duration> {
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        (nanos < 1_000_000_000).then(|| Duration::new(secs, nanos))
    }

    pub(super) fn now_or_later() -> SystemTime {
        match duration(clock_gettime(ClockId::RealtimeCoarse)) {
            Some(since_epoch) => SystemTime::UNIX_EPOCH + since_epoch + margin(),
            // Before 1970 or nonsense: the precise clock decides.
            None => SystemTime::now(),
        }
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use portcullis_core::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
/// let seen_by_a_layer = clock.clone();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(seen_by_a_layer.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_005));
/// ```
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// A clock standing at the current wall-clock time, truncated to whole seconds
    /// (JWT times are whole seconds).
    pub fn starting_now() -> Self {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Microseconds since the Unix epoch (negative before it), saturating: how the
/// Redis and SQL backends store times.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use portcullis_core::clock::{from_unix_micros, unix_micros};
///
/// let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
/// assert_eq!(unix_micros(t), 1_700_000_000_123_456);
/// assert_eq!(from_unix_micros(unix_micros(t)), t);
/// assert_eq!(unix_micros(UNIX_EPOCH - Duration::from_micros(5)), -5);
/// ```
pub fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The inverse of [`unix_micros`].
pub fn from_unix_micros(us: i64) -> SystemTime {
    if us >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(us.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_or_later_is_never_earlier_and_only_slightly_later() {
        for _ in 0..10_000 {
            let before = SystemClock.now();
            let later = SystemClock.now_or_later();
            let after = SystemClock.now();
            assert!(later >= before, "{later:?} < {before:?}");
            // At most the margin (a few ticks) past a precise read taken after it.
            let ahead = later.duration_since(after).unwrap_or_default();
            assert!(ahead <= Duration::from_millis(50), "{ahead:?} ahead");
        }
    }

    #[test]
    fn other_clocks_default_to_now() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(7));
        assert_eq!(clock.now_or_later(), clock.now());
    }
}
