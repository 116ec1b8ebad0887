//! Access-token revocation: a `jti` denylist and per-subject "issued before" cut-offs.

use std::{
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use dashmap::DashMap;
use portcullis_core::{AuthError, MaybeReady, Revocation, RevocationQuery, internal::unix_secs};

use crate::{Clock, Error, SystemClock};

/// One access token to revoke, by identifiers (never by its bytes: ECDSA signatures
/// are malleable, so the same claims can arrive under other bytes).
#[derive(Debug, Clone, Copy)]
pub struct RevokedToken<'a> {
    /// `iss`, if the token had one.
    pub issuer: Option<&'a str>,
    /// `jti`.
    pub token_id: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// `exp`: the entry is kept until then, after which the token is dead anyway.
    pub expires_at: SystemTime,
}

/// The write side of revocation, which [`TokenService`](crate::TokenService) drives:
/// in memory here, shared through Redis elsewhere. The read side is core's
/// [`Revocation`], which verifiers consult.
pub trait RevocationStore: Send + Sync + 'static {
    /// Denies one token until its `exp`.
    fn revoke_token(
        &self,
        token: RevokedToken<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Refuses every token of `subject` issued at or before `cutoff` (logout everywhere,
    /// password change), whichever issuer issued it.
    fn revoke_subject(
        &self,
        subject: &str,
        cutoff: SystemTime,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Refuses every token of `subject` *from `issuer`* issued at or before `cutoff`.
    /// A resource server trusting several issuers keys cut-offs by (issuer, subject):
    /// the same `sub` at another issuer names another party, whose tokens stand.
    ///
    /// The default applies the cut-off to every issuer
    /// ([`revoke_subject`](Self::revoke_subject)), which fails closed; the stores of
    /// this project scope it to `issuer`.
    fn revoke_issuer_subject(
        &self,
        issuer: &str,
        subject: &str,
        cutoff: SystemTime,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = issuer;
        self.revoke_subject(subject, cutoff)
    }
}

/// The default cap on denylisted `jti`s.
pub const DEFAULT_MAX_DENYLIST: usize = 100_000;

/// How long a subject cut-off is kept by default: one day, longer than any access token
/// this crate issues (at most one day) plus leeway.
pub const DEFAULT_CUTOFF_RETENTION: Duration = Duration::from_secs(86_400 + 300);

/// A denied `jti` of one issuer (`None`: of any issuer).
struct Denied {
    issuer: Option<Box<str>>,
    expires_at: SystemTime,
}

/// A subject's cut-off at one issuer (`None`: at every issuer): the last second
/// (Unix time) whose tokens are refused, and when the entry may be dropped.
struct Cutoff {
    issuer: Option<Box<str>>,
    secs: i64,
    keep_until: SystemTime,
}

/// Whether an entry for `entry` applies to a token of `presented`: the same issuer,
/// or either side without one (failing closed).
fn same_issuer(entry: Option<&str>, presented: Option<&str>) -> bool {
    match (entry, presented) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

struct Inner {
    /// By `jti`: one entry per issuer that revoked it (almost always one).
    denied: DashMap<Box<str>, Vec<Denied>>,
    /// By subject: one entry per issuer that cut it off (almost always one).
    cutoffs: DashMap<Box<str>, Vec<Cutoff>>,
    entries: AtomicUsize,
    sweep_at: AtomicUsize,
    max_denylist: usize,
    cutoff_retention: Duration,
    clock: Arc<dyn Clock>,
}

/// In-memory access-token revocation; implements core's [`Revocation`], so hand it (or
/// a clone: clones share state) to the JWT layer.
///
/// - **`jti` denylist**: [`revoke_token`](RevocationStore::revoke_token) refuses one
///   token (matched by `jti` and, when both have one, `iss`) until its `exp`; then the
///   entry is dropped, since the verifier refuses the expired token anyway.
/// - **Subject cut-off**: [`revoke_subject`](RevocationStore::revoke_subject) refuses
///   every token of the subject whose `iat` is at or before the cut-off. `iat` has
///   whole-second precision, so a token issued in the same second as the cut-off is
///   refused too (failing closed): a client that logs in again within that second
///   must retry. A token *without* `iat` for a subject that has a cut-off is refused,
///   since nothing shows it was issued after. Cut-offs are kept for
///   [`DEFAULT_CUTOFF_RETENTION`] (configurable), after which every token they could
///   refuse has expired.
///
/// # Bounded memory
///
/// The denylist holds at most `max_denylist` entries (default
/// [`DEFAULT_MAX_DENYLIST`]). When full, expired entries are purged; if it is still
/// full, the revocation escalates to a subject cut-off (every token of that subject
/// issued until now is refused). That fails closed: it may log a subject out of more
/// sessions than asked, never fewer.
///
/// # Performance
///
/// When nothing is revoked, [`check`](Revocation::check) reads two atomics-backed
/// counters and answers [`MaybeReady::Ready`]; otherwise it does at most two sharded
/// map look-ups by `&str`. It never allocates and never awaits.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use portcullis_core::{MaybeReady, Revocation, RevocationQuery};
/// use portcullis_tokens::{MemoryRevocation, RevocationStore, RevokedToken};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_tokens::Error> {
/// let revocation = MemoryRevocation::new();
/// let query = RevocationQuery { issuer: None, subject: "alice", token_id: Some("t1"), issued_at: None };
/// assert!(matches!(revocation.check(&query), MaybeReady::Ready(Ok(()))));
///
/// revocation.revoke_token(RevokedToken {
///     issuer: None, token_id: "t1", subject: "alice",
///     expires_at: SystemTime::now() + Duration::from_secs(600),
/// }).await?;
/// assert!(matches!(revocation.check(&query), MaybeReady::Ready(Err(_))));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryRevocation {
    inner: Arc<Inner>,
}

impl Default for MemoryRevocation {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRevocation {
    /// An empty revocation list with the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty revocation list with `clock`.
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                denied: DashMap::new(),
                cutoffs: DashMap::new(),
                entries: AtomicUsize::new(0),
                sweep_at: AtomicUsize::new(1024),
                max_denylist: DEFAULT_MAX_DENYLIST,
                cutoff_retention: DEFAULT_CUTOFF_RETENTION,
                clock: Arc::new(clock),
            }),
        }
    }

    /// Sets the denylist cap (minimum 1).
    ///
    /// # Panics
    ///
    /// If called after the list was cloned (configure before sharing it).
    #[must_use]
    pub fn max_denylist(mut self, max: usize) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configure MemoryRevocation before cloning it")
            .max_denylist = max.max(1);
        self
    }

    /// Sets how long subject cut-offs are kept. Must exceed the longest access-token
    /// lifetime of any issuer whose tokens this list checks, plus leeway.
    ///
    /// # Panics
    ///
    /// If called after the list was cloned (configure before sharing it).
    #[must_use]
    pub fn cutoff_retention(mut self, retention: Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configure MemoryRevocation before cloning it")
            .cutoff_retention = retention;
        self
    }

    /// How many denylisted tokens and subject cut-offs are held (each counted per
    /// issuer). Walks the lists: for diagnostics and tests.
    pub fn len(&self) -> (usize, usize) {
        let denied = self.inner.denied.iter().map(|e| e.value().len()).sum();
        let cutoffs = self.inner.cutoffs.iter().map(|e| e.value().len()).sum();
        (denied, cutoffs)
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.inner.entries.load(Ordering::Acquire) == 0
    }

    /// Drops denylist entries past their `exp` and cut-offs past their retention.
    pub fn purge_expired(&self) {
        let now = self.inner.clock.now();
        let inner = &*self.inner;
        let removed = AtomicUsize::new(0);
        inner.denied.retain(|_, list| {
            let before = list.len();
            list.retain(|d| d.expires_at > now);
            removed.fetch_add(before - list.len(), Ordering::Relaxed);
            !list.is_empty()
        });
        inner.cutoffs.retain(|_, list| {
            let before = list.len();
            list.retain(|c| c.keep_until > now);
            removed.fetch_add(before - list.len(), Ordering::Relaxed);
            !list.is_empty()
        });
        inner
            .entries
            .fetch_sub(removed.into_inner(), Ordering::AcqRel);
    }

    fn set_cutoff(&self, issuer: Option<&str>, subject: &str, cutoff: SystemTime) {
        let inner = &*self.inner;
        let secs = unix_secs(cutoff);
        let keep_until = cutoff + inner.cutoff_retention;
        let mut list = inner.cutoffs.entry(subject.into()).or_default();
        match list.iter_mut().find(|c| c.issuer.as_deref() == issuer) {
            Some(c) => {
                c.secs = c.secs.max(secs);
                c.keep_until = c.keep_until.max(keep_until);
            }
            None => {
                list.push(Cutoff {
                    issuer: issuer.map(Into::into),
                    secs,
                    keep_until,
                });
                inner.entries.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

impl fmt::Debug for MemoryRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (denied, cutoffs) = self.len();
        f.debug_struct("MemoryRevocation")
            .field("denied", &denied)
            .field("cutoffs", &cutoffs)
            .field("max_denylist", &self.inner.max_denylist)
            .finish()
    }
}

impl Revocation for MemoryRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        let inner = &*self.inner;
        if inner.entries.load(Ordering::Acquire) == 0 {
            return MaybeReady::Ready(Ok(()));
        }
        if let Some(cutoffs) = inner.cutoffs.get(query.subject) {
            let refused = cutoffs.iter().any(|c| {
                same_issuer(c.issuer.as_deref(), query.issuer)
                    && query.issued_at.is_none_or(|iat| unix_secs(iat) <= c.secs)
            });
            if refused {
                return MaybeReady::Ready(Err(AuthError::revoked()));
            }
        }
        if let Some(jti) = query.token_id
            && let Some(denied) = inner.denied.get(jti)
            // Past `exp` the verifier refuses the token itself; still answer "revoked"
            // (never less strict) and leave the purge to the writers.
            && denied
                .iter()
                .any(|d| same_issuer(d.issuer.as_deref(), query.issuer))
        {
            return MaybeReady::Ready(Err(AuthError::revoked()));
        }
        MaybeReady::Ready(Ok(()))
    }
}

impl RevocationStore for MemoryRevocation {
    async fn revoke_token(&self, token: RevokedToken<'_>) -> Result<(), Error> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        if token.expires_at <= now {
            return Ok(());
        }
        let len = inner.denied.len();
        if len >= inner.sweep_at.load(Ordering::Relaxed) {
            // Expired entries go as the list grows, without a background task.
            self.purge_expired();
            let len = inner.denied.len();
            inner
                .sweep_at
                .store((len * 2).clamp(1024, inner.max_denylist), Ordering::Relaxed);
        }
        if inner.denied.len() >= inner.max_denylist {
            self.purge_expired();
            if inner.denied.len() >= inner.max_denylist
                && !inner.denied.contains_key(token.token_id)
            {
                self.set_cutoff(token.issuer, token.subject, now);
                return Ok(());
            }
        }
        let mut list = inner.denied.entry(token.token_id.into()).or_default();
        match list
            .iter_mut()
            .find(|d| d.issuer.as_deref() == token.issuer)
        {
            Some(d) => d.expires_at = d.expires_at.max(token.expires_at),
            None => {
                list.push(Denied {
                    issuer: token.issuer.map(Into::into),
                    expires_at: token.expires_at,
                });
                inner.entries.fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), Error> {
        self.set_cutoff(None, subject, cutoff);
        Ok(())
    }

    async fn revoke_issuer_subject(
        &self,
        issuer: &str,
        subject: &str,
        cutoff: SystemTime,
    ) -> Result<(), Error> {
        self.set_cutoff(Some(issuer), subject, cutoff);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
