//! [`LoginBackend`]: where the login throttle keeps its counts, and the types it
//! exchanges with the layer.

use std::{fmt, net::IpAddr, num::NonZeroU32, time::Duration};

use governor::Quota;
use portcullis_core::MaybeReady;
use sha2::{Digest, Sha256};

use super::Backoff;
use crate::BackendError;

/// Keeps the login throttle's counts: [`MemoryLoginBackend`](super::MemoryLoginBackend)
/// in the process (the default), or a shared store such as `portcullis-redis`'s
/// `RedisLoginThrottle`, so that several instances enforce one budget.
///
/// For each attempt the layer calls [`begin`](Self::begin) once the account is known,
/// and, if the attempt was admitted, [`settle`](Self::settle) once the handler has
/// answered. Each call must be atomic: `begin` decides on every bucket and counts the
/// attempt provisionally as a failure in one step, so parallel guesses are all
/// counted; `settle` keeps, clears or refunds that failure. The rules are in the
/// [module docs](crate::login).
///
/// ```
/// use std::{net::IpAddr, time::Duration};
/// use portcullis_core::MaybeReady;
/// use portcullis_ratelimit::{
///     BackendError, LoginBackend, LoginRateLimitLayer,
///     login::{Admission, LoginAttempt, LoginBucket, LoginOutcome},
/// };
///
/// /// Refuses one address, admits everyone else, and counts nothing.
/// #[derive(Debug)]
/// struct Blocklist(IpAddr);
///
/// impl LoginBackend for Blocklist {
///     type Ticket = ();
///
///     fn begin(&self, attempt: &LoginAttempt) -> MaybeReady<Result<Admission<()>, BackendError>> {
///         MaybeReady::Ready(Ok(if attempt.ip() == self.0 {
///             Admission::Refused { bucket: LoginBucket::Attempts, wait: Duration::from_secs(60) }
///         } else {
///             Admission::Admitted(())
///         }))
///     }
///
///     fn settle(&self, _: (), _: LoginOutcome) -> MaybeReady<Result<(), BackendError>> {
///         MaybeReady::Ready(Ok(()))
///     }
/// }
///
/// let layer = LoginRateLimitLayer::with_backend(Blocklist([192, 0, 2, 66].into()));
/// # let _ = layer;
/// ```
pub trait LoginBackend: Send + Sync + 'static {
    /// What `begin` hands to `settle`: which entries it changed and how.
    type Ticket: Send + 'static;

    /// Decides on `attempt` and, when it is admitted, counts it as a failure of its IP,
    /// of its account from its IP, and of its account. At once for state in memory
    /// ([`MaybeReady::Ready`]), or after a round trip ([`MaybeReady::pending`]).
    fn begin(
        &self,
        attempt: &LoginAttempt,
    ) -> MaybeReady<Result<Admission<Self::Ticket>, BackendError>>;

    /// Settles an admitted attempt by the handler's answer.
    fn settle(
        &self,
        ticket: Self::Ticket,
        outcome: LoginOutcome,
    ) -> MaybeReady<Result<(), BackendError>>;
}

/// One login attempt, as the layer hands it to a [`LoginBackend`]: the client IP, the
/// account (never readable: a backend gets it only as a salted hash) and the limits.
/// See the [module docs](crate::login).
#[derive(Clone)]
pub struct LoginAttempt {
    ip: IpAddr,
    account: Option<String>,
    limits: LoginLimits,
}

impl LoginAttempt {
    /// An attempt from `ip` on `account` (trimmed and lowercased here; `None` or blank
    /// is the "no account" account).
    pub fn new(ip: IpAddr, account: Option<&str>, limits: LoginLimits) -> Self {
        let account = account
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty());
        Self {
            ip,
            account,
            limits,
        }
    }

    /// The client IP (IPv6 already reduced to its prefix by the layer's resolver).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Whether an account was found in the request.
    pub fn has_account(&self) -> bool {
        self.account.is_some()
    }

    /// The account as SHA-256 over `salt` and the account name: what a backend keeps
    /// and logs. Attempts without an account share one key per salt.
    pub fn account_key(&self, salt: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        match &self.account {
            Some(a) => {
                h.update([1]);
                h.update(a.as_bytes());
            }
            None => h.update([0]),
        }
        h.finalize().into()
    }

    /// The limits to apply.
    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }
}

impl fmt::Debug for LoginAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("ip", &self.ip)
            .field("account", &self.account.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The four limits of the login throttle. See the [module docs](crate::login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    attempts: Quota,
    ip_failures: Backoff,
    account_ip_failures: Backoff,
    account_failures: Backoff,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero constant")
}

impl Default for LoginLimits {
    /// 20 attempts per minute per IP; 100 free failures a day per IP; 5 free failures
    /// a day per account and IP; 10 free failures an hour per account (applied only
    /// to IPs that have failed on it); past the free failures, 1 s doubling to 15 min.
    fn default() -> Self {
        const HOUR: Duration = Duration::from_secs(3600);
        Self {
            attempts: Quota::per_minute(nz(20)),
            ip_failures: Backoff::new(nz(100), 24 * HOUR),
            account_ip_failures: Backoff::new(nz(5), 24 * HOUR),
            account_failures: Backoff::new(nz(10), HOUR),
        }
    }
}

impl LoginLimits {
    /// Attempts per IP, failed or not (a GCRA quota).
    pub fn attempts(&self) -> Quota {
        self.attempts
    }

    /// Failures per IP, on any account.
    pub fn ip_failures(&self) -> Backoff {
        self.ip_failures
    }

    /// Consecutive failures per account and IP: cleared by a success of that account
    /// from that IP.
    pub fn account_ip_failures(&self) -> Backoff {
        self.account_ip_failures
    }

    /// Failures per account, from any IP; its wait applies only to IPs with a failure
    /// on the account in their account-and-IP window.
    pub fn account_failures(&self) -> Backoff {
        self.account_failures
    }

    pub(super) fn set_attempts(&mut self, quota: Quota) {
        self.attempts = quota;
    }

    pub(super) fn set_ip_failures(&mut self, backoff: Backoff) {
        self.ip_failures = backoff;
    }

    pub(super) fn set_account_ip_failures(&mut self, backoff: Backoff) {
        self.account_ip_failures = backoff;
    }

    pub(super) fn set_account_failures(&mut self, backoff: Backoff) {
        self.account_failures = backoff;
    }
}

/// What [`LoginBackend::begin`] decided. See the [module docs](crate::login).
#[derive(Debug)]
pub enum Admission<T> {
    /// Counted provisionally as a failure; settle it with this ticket.
    Admitted(T),
    /// Refused: nothing was counted but the attempt itself (unless `bucket` is
    /// [`LoginBucket::Attempts`]).
    Refused {
        /// The limit that refused.
        bucket: LoginBucket,
        /// How long until that limit lets the attempt through.
        wait: Duration,
    },
}

/// The limit that refused an attempt (for events; the client gets the same answer
/// whichever it was).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginBucket {
    /// Attempts per IP.
    Attempts,
    /// Failures per IP.
    IpFailures,
    /// Consecutive failures per account and IP.
    AccountIpFailures,
    /// Failures per account, for IPs that have failed on it.
    AccountFailures,
}

impl LoginBucket {
    /// The `key_kind` of the `Throttled` event.
    pub fn key_kind(self) -> &'static str {
        match self {
            Self::Attempts => "ip",
            Self::IpFailures => "ip_failures",
            Self::AccountIpFailures => "account_ip",
            Self::AccountFailures => "account",
        }
    }
}

/// How the handler's answer settles an admitted attempt.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    /// A failed login (`401`/`403` by default): the provisional failure stands.
    Failure,
    /// A successful login (`2xx`): the account-and-IP failures are cleared; the
    /// attempt is refunded from the IP and account counts.
    Success,
    /// Any other answer (a `422` before the password was checked, say): refunded
    /// everywhere, leaving no entry behind that the attempt created.
    NotCounted,
}
