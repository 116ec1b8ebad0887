//! [`MemoryLoginBackend`]: the login throttle's counts in the process, in capped maps
//! that drop their oldest entries.

use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::{BuildHasher, Hash, Hasher},
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, MutexGuard},
};

use governor::{
    Quota,
    clock::{Clock, DefaultClock, Reference},
};
use portcullis_core::MaybeReady;

use super::{
    Admission, Backoff, LoginAttempt, LoginBackend, LoginBucket, LoginOutcome,
    backoff::{Count, Undo, nanos},
    lru::Lru,
};
use crate::{BackendError, backend::DEFAULT_MAX_KEYS};

type Account = [u8; 32];

/// The default [`LoginBackend`]: counts in memory, for one instance. See the
/// [module docs](crate::login) for what is counted.
///
/// # Memory
///
/// Four maps (attempts per IP, failures per IP, per account and IP, per account) of
/// at most [`max_keys`](Self::with_max_keys) entries each (default 100,000). An entry
/// is written only when an attempt is counted; an attempt refunded
/// ([`LoginOutcome::NotCounted`]) takes its provisional entry away again. When a map
/// is full, its **oldest** entry (the one written longest ago) goes: a new account or
/// IP always gets its own count, never a shared one. Dropping an entry forgets its
/// failures, but pushing out one entry takes `max_keys` newer ones, each of which had
/// to be a counted attempt with a budget of its own.
///
/// Attempts in flight may take up to `max_keys / 64` (at least 64) entries beyond the
/// cap without pushing anything out, so requests that end up refunded cannot evict
/// counted failures; each confirmed failure then drops up to two of the oldest
/// entries until the map is back at its cap. Each attempt also drops up to two
/// expired entries from the old end of each map: no sweep, no background task, O(1)
/// per attempt.
///
/// All of an attempt is decided under one lock, so parallel attempts are counted one
/// after the other. Cloning shares the state.
pub struct MemoryLoginBackend<C: Clock = DefaultClock> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: Clock> {
    state: Mutex<State>,
    clock: C,
    start: C::Instant,
    salt: [u8; 16],
    cap: usize,
}

struct State {
    attempts: Lru<IpAddr, u64>,
    ips: Lru<IpAddr, Count>,
    pairs: Lru<(Account, IpAddr), Count>,
    accounts: Lru<Account, Count>,
}

/// The entries a [`MemoryLoginBackend`] changed for one attempt (its
/// [`LoginBackend::Ticket`]).
#[derive(Debug)]
pub struct MemoryLoginTicket {
    ip: IpAddr,
    account: Account,
    ip_undo: Undo,
    pair_undo: Undo,
    account_undo: Undo,
}

/// How many entries a [`MemoryLoginBackend`] holds, per map.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tracked {
    /// IPs with attempts in their quota window.
    pub attempts: usize,
    /// IPs with failures.
    pub ip_failures: usize,
    /// Account-and-IP pairs with failures.
    pub account_ip_failures: usize,
    /// Accounts with failures.
    pub account_failures: usize,
}

impl MemoryLoginBackend {
    /// An empty backend on the system clock.
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for MemoryLoginBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock + Clone> MemoryLoginBackend<C> {
    /// An empty backend on `clock` (`governor::clock::FakeRelativeClock` in tests).
    pub fn with_clock(clock: C) -> Self {
        Self::build(clock, DEFAULT_MAX_KEYS)
    }

    /// The same clock with empty maps of at most `max_keys` entries each.
    #[must_use]
    pub fn with_max_keys(self, max_keys: NonZeroU32) -> Self {
        Self::build(self.inner.clock.clone(), max_keys.get() as usize)
    }

    fn build(clock: C, cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    attempts: Lru::new(),
                    ips: Lru::new(),
                    pairs: Lru::new(),
                    accounts: Lru::new(),
                }),
                start: clock.now(),
                clock,
                salt: random_salt(),
                cap,
            }),
        }
    }
}

impl<C: Clock> MemoryLoginBackend<C> {
    /// Entries held now, per map.
    pub fn tracked(&self) -> Tracked {
        let s = self.inner.lock();
        Tracked {
            attempts: s.attempts.len(),
            ip_failures: s.ips.len(),
            account_ip_failures: s.pairs.len(),
            account_failures: s.accounts.len(),
        }
    }

    /// The cap on each map.
    pub fn max_keys(&self) -> usize {
        self.inner.cap
    }
}

/// 16 random bytes from the standard library's per-process hash keys.
pub(super) fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    for (i, chunk) in salt.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    salt
}

impl<C: Clock> Inner<C> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    fn slack(&self) -> usize {
        (self.cap / 64).max(64)
    }

    fn begin(&self, attempt: &LoginAttempt) -> Admission<MemoryLoginTicket> {
        let limits = attempt.limits();
        let (ip, account) = (attempt.ip(), attempt.account_key(&self.salt));
        let refused = |bucket, wait: u64| Admission::Refused {
            bucket,
            wait: std::time::Duration::from_nanos(wait),
        };
        let now = self.now();
        let mut s = self.lock();
        s.housekeep(attempt, now);

        match gcra(s.attempts.get(&ip), limits.attempts(), now) {
            Ok(tat) => {
                s.attempts.put(ip, tat);
                s.attempts.trim(self.cap, 1);
            }
            Err(wait) => return refused(LoginBucket::Attempts, wait),
        }

        let (ip_policy, pair_policy, account_policy) = (
            limits.ip_failures(),
            limits.account_ip_failures(),
            limits.account_failures(),
        );
        let live = |c: Option<Count>, p: &Backoff| c.filter(|c| c.live(p, now)).unwrap_or_default();
        let mut ip_count = live(s.ips.get(&ip), &ip_policy);
        let mut pair = live(s.pairs.get(&(account, ip)), &pair_policy);
        let mut account_count = live(s.accounts.get(&account), &account_policy);
        if let Some(wait) = ip_count.wait(now) {
            return refused(LoginBucket::IpFailures, wait);
        }
        if let Some(wait) = pair.wait(now) {
            return refused(LoginBucket::AccountIpFailures, wait);
        }
        if pair.active(&pair_policy, now) {
            // The account's wait binds only an IP that has failed on it, and for no
            // longer than the longest wait after that IP's own last failure.
            let own_limit = pair
                .last
                .saturating_add(nanos(account_policy.longest_delay()));
            let until = account_count.blocked_until.min(own_limit);
            if until > now {
                return refused(LoginBucket::AccountFailures, until - now);
            }
        }

        let ticket = MemoryLoginTicket {
            ip,
            account,
            ip_undo: ip_count.count(&ip_policy, now),
            pair_undo: pair.count(&pair_policy, now),
            account_undo: account_count.count(&account_policy, now),
        };
        let most = self.cap + self.slack();
        s.ips.put(ip, ip_count);
        s.ips.trim(most, 1);
        s.pairs.put((account, ip), pair);
        s.pairs.trim(most, 1);
        s.accounts.put(account, account_count);
        s.accounts.trim(most, 1);
        Admission::Admitted(ticket)
    }

    fn settle(&self, t: &MemoryLoginTicket, outcome: LoginOutcome) {
        let now = self.now();
        let mut s = self.lock();
        match outcome {
            LoginOutcome::Success => {
                refund(&mut s.ips, &t.ip, &t.ip_undo, now);
                s.pairs.remove(&(t.account, t.ip));
                refund(&mut s.accounts, &t.account, &t.account_undo, now);
            }
            LoginOutcome::NotCounted => {
                refund(&mut s.ips, &t.ip, &t.ip_undo, now);
                refund(&mut s.pairs, &(t.account, t.ip), &t.pair_undo, now);
                refund(&mut s.accounts, &t.account, &t.account_undo, now);
            }
            // The failure stands; a map holding attempts beyond its cap moves back
            // toward it, two entries per confirmed failure.
            _ => {
                s.ips.trim(self.cap, 2);
                s.pairs.trim(self.cap, 2);
                s.accounts.trim(self.cap, 2);
            }
        }
    }
}

impl State {
    /// Drops up to two expired entries from the old end of each map.
    fn housekeep(&mut self, attempt: &LoginAttempt, now: u64) {
        let limits = attempt.limits();
        for _ in 0..2 {
            if let Some((ip, _)) = self.attempts.oldest().filter(|&(_, tat)| tat <= now) {
                self.attempts.remove(&ip);
            }
            drop_expired(&mut self.ips, &limits.ip_failures(), now);
            drop_expired(&mut self.pairs, &limits.account_ip_failures(), now);
            drop_expired(&mut self.accounts, &limits.account_failures(), now);
        }
    }
}

fn drop_expired<K: Hash + Eq + Copy>(map: &mut Lru<K, Count>, policy: &Backoff, now: u64) {
    if let Some((key, count)) = map.oldest()
        && !count.live(policy, now)
    {
        map.remove(&key);
    }
}

fn refund<K: Hash + Eq + Copy>(map: &mut Lru<K, Count>, key: &K, undo: &Undo, now: u64) {
    if let Some(mut count) = map.get(key) {
        if count.refund(undo, now) {
            map.remove(key);
        } else {
            map.replace(key, count);
        }
    }
}

/// GCRA as governor computes it: the new theoretical arrival time, or the wait.
fn gcra(tat: Option<u64>, quota: Quota, now: u64) -> Result<u64, u64> {
    let t = nanos(quota.replenish_interval()).max(1);
    let tau = t.saturating_mul(u64::from(quota.burst_size().get()) - 1);
    let tat = tat.unwrap_or(now).max(now);
    let earliest = tat.saturating_sub(tau);
    if now < earliest {
        Err(earliest - now)
    } else {
        Ok(tat.saturating_add(t))
    }
}

impl<C> LoginBackend for MemoryLoginBackend<C>
where
    C: Clock + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    type Ticket = MemoryLoginTicket;

    fn begin(
        &self,
        attempt: &LoginAttempt,
    ) -> MaybeReady<Result<Admission<MemoryLoginTicket>, BackendError>> {
        MaybeReady::Ready(Ok(self.inner.begin(attempt)))
    }

    fn settle(
        &self,
        ticket: MemoryLoginTicket,
        outcome: LoginOutcome,
    ) -> MaybeReady<Result<(), BackendError>> {
        self.inner.settle(&ticket, outcome);
        MaybeReady::Ready(Ok(()))
    }
}

impl<C: Clock> Clone for MemoryLoginBackend<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Clock> fmt::Debug for MemoryLoginBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLoginBackend")
            .field("max_keys", &self.inner.cap)
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::login::LoginLimits;

    fn attempt(account: &str) -> LoginAttempt {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut limits = LoginLimits::default();
        let many = NonZeroU32::new(1000).unwrap();
        limits.set_attempts(Quota::per_minute(many));
        limits.set_ip_failures(Backoff::new(many, Duration::from_secs(60)));
        LoginAttempt::new(ip, Some(account), limits)
    }

    fn admit(backend: &MemoryLoginBackend<FakeRelativeClock>, account: &str) -> MemoryLoginTicket {
        match backend.inner.begin(&attempt(account)) {
            Admission::Admitted(ticket) => ticket,
            refused => panic!("{refused:?}"),
        }
    }

    #[test]
    fn attempts_in_flight_do_not_push_out_counted_failures() {
        let backend = MemoryLoginBackend::with_clock(FakeRelativeClock::default())
            .with_max_keys(NonZeroU32::new(3).unwrap());
        for n in 0..3 {
            let ticket = admit(&backend, &format!("counted{n}"));
            backend.inner.settle(&ticket, LoginOutcome::Failure);
        }
        let in_flight: Vec<_> = (0..20)
            .map(|n| admit(&backend, &format!("pending{n}")))
            .collect();
        assert_eq!(backend.tracked().account_failures, 23);
        for ticket in &in_flight {
            backend.inner.settle(ticket, LoginOutcome::NotCounted);
        }
        let tracked = backend.tracked();
        assert_eq!(tracked.account_failures, 3, "{tracked:?}");
        assert_eq!(tracked.account_ip_failures, 3, "{tracked:?}");
        let key = attempt("counted0").account_key(&backend.inner.salt);
        assert_eq!(backend.inner.lock().accounts.get(&key).unwrap().failures, 1);
    }

    #[test]
    fn beyond_the_slack_the_oldest_entry_goes_at_once() {
        let backend = MemoryLoginBackend::with_clock(FakeRelativeClock::default())
            .with_max_keys(NonZeroU32::new(3).unwrap());
        for n in 0..200 {
            let _ = admit(&backend, &format!("pending{n}"));
        }
        // The cap plus 64 in flight, never more.
        assert_eq!(backend.tracked().account_failures, 67);
    }

    #[test]
    fn expired_entries_are_dropped_as_attempts_go_by() {
        let clock = FakeRelativeClock::default();
        let backend = MemoryLoginBackend::with_clock(clock.clone());
        for n in 0..3 {
            let ticket = admit(&backend, &format!("old{n}"));
            backend.inner.settle(&ticket, LoginOutcome::Failure);
        }
        // A day later every window has closed; each attempt drops two old entries.
        clock.advance(Duration::from_secs(86_400));
        let ticket = admit(&backend, "new");
        backend.inner.settle(&ticket, LoginOutcome::Failure);
        let ticket = admit(&backend, "newer");
        backend.inner.settle(&ticket, LoginOutcome::Failure);
        assert_eq!(backend.tracked().account_failures, 2);
    }

    #[test]
    fn the_attempt_quota_is_governors_gcra() {
        // 5 per minute: a burst of five, then one every 12 s.
        let quota = Quota::per_minute(NonZeroU32::new(5).unwrap());
        let s = 1_000_000_000;
        let mut tat = None;
        for _ in 0..5 {
            tat = Some(gcra(tat, quota, 0).unwrap());
        }
        assert_eq!(gcra(tat, quota, 0), Err(12 * s));
        assert!(gcra(tat, quota, 12 * s).is_ok());
    }
}
