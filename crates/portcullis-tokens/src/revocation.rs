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
    /// password change).
    fn revoke_subject(
        &self,
        subject: &str,
        cutoff: SystemTime,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The default cap on denylisted `jti`s.
pub const DEFAULT_MAX_DENYLIST: usize = 100_000;

/// How long a subject cut-off is kept by default: one day, longer than any access token
/// this crate issues (at most one day) plus leeway.
pub const DEFAULT_CUTOFF_RETENTION: Duration = Duration::from_secs(86_400 + 300);

struct Denied {
    issuer: Option<Box<str>>,
    expires_at: SystemTime,
}

struct Inner {
    denied: DashMap<Box<str>, Denied>,
    /// Per subject: the last second (Unix time) whose tokens are refused, and when the
    /// entry may be dropped.
    cutoffs: DashMap<Box<str>, (i64, SystemTime)>,
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

    /// How many denylisted `jti`s and subject cut-offs are held.
    pub fn len(&self) -> (usize, usize) {
        (self.inner.denied.len(), self.inner.cutoffs.len())
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
        inner.denied.retain(|_, d| {
            let keep = d.expires_at > now;
            if !keep {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        inner.cutoffs.retain(|_, (_, keep_until)| {
            let keep = *keep_until > now;
            if !keep {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        inner
            .entries
            .fetch_sub(removed.into_inner(), Ordering::AcqRel);
    }

    fn set_cutoff(&self, subject: &str, cutoff: SystemTime) {
        let inner = &*self.inner;
        let secs = unix_secs(cutoff);
        let keep_until = cutoff + inner.cutoff_retention;
        let mut added = false;
        inner
            .cutoffs
            .entry(subject.into())
            .and_modify(|(s, k)| {
                *s = (*s).max(secs);
                *k = (*k).max(keep_until);
            })
            .or_insert_with(|| {
                added = true;
                (secs, keep_until)
            });
        if added {
            inner.entries.fetch_add(1, Ordering::AcqRel);
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
        if let Some(cutoff) = inner.cutoffs.get(query.subject) {
            let refused = match query.issued_at {
                Some(iat) => unix_secs(iat) <= cutoff.0,
                None => true,
            };
            if refused {
                return MaybeReady::Ready(Err(AuthError::revoked()));
            }
        }
        if let Some(jti) = query.token_id
            && let Some(denied) = inner.denied.get(jti)
        {
            let issuer_matches = match (&denied.issuer, query.issuer) {
                (Some(a), Some(b)) => **a == *b,
                _ => true,
            };
            // Past `exp` the verifier refuses the token itself; still answer "revoked"
            // (never less strict) and leave the purge to the writers.
            if issuer_matches {
                return MaybeReady::Ready(Err(AuthError::revoked()));
            }
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
                self.set_cutoff(token.subject, now);
                return Ok(());
            }
        }
        let previous = inner.denied.insert(
            token.token_id.into(),
            Denied {
                issuer: token.issuer.map(Into::into),
                expires_at: token.expires_at,
            },
        );
        if previous.is_none() {
            inner.entries.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), Error> {
        self.set_cutoff(subject, cutoff);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn query<'a>(
        sub: &'a str,
        jti: Option<&'a str>,
        iat: Option<SystemTime>,
    ) -> RevocationQuery<'a> {
        RevocationQuery {
            issuer: Some("https://issuer"),
            subject: sub,
            token_id: jti,
            issued_at: iat,
        }
    }

    fn revoked(r: &MemoryRevocation, q: &RevocationQuery<'_>) -> bool {
        match r.check(q) {
            MaybeReady::Ready(result) => result.is_err(),
            MaybeReady::Pending(_) => panic!("memory revocation never pends"),
        }
    }

    #[tokio::test]
    async fn denylisted_jti_is_refused_and_others_are_not() {
        let clock = ManualClock::starting_now();
        let r = MemoryRevocation::with_clock(clock.clone());
        let exp = clock.now() + Duration::from_secs(60);
        r.revoke_token(RevokedToken {
            issuer: Some("https://issuer"),
            token_id: "a",
            subject: "alice",
            expires_at: exp,
        })
        .await
        .unwrap();
        assert!(revoked(&r, &query("alice", Some("a"), Some(clock.now()))));
        assert!(!revoked(&r, &query("alice", Some("b"), Some(clock.now()))));
        // Same jti from another issuer is another token.
        let other = RevocationQuery {
            issuer: Some("https://other"),
            ..query("alice", Some("a"), None)
        };
        assert!(!revoked(&r, &other));
    }

    #[tokio::test]
    async fn denylist_entries_purge_after_exp() {
        let clock = ManualClock::starting_now();
        let r = MemoryRevocation::with_clock(clock.clone());
        let exp = clock.now() + Duration::from_secs(60);
        r.revoke_token(RevokedToken {
            issuer: None,
            token_id: "a",
            subject: "alice",
            expires_at: exp,
        })
        .await
        .unwrap();
        assert_eq!(r.len(), (1, 0));
        clock.advance(Duration::from_secs(61));
        r.purge_expired();
        assert_eq!(r.len(), (0, 0));
        assert!(r.is_empty());
        // An already expired token is not even stored.
        r.revoke_token(RevokedToken {
            issuer: None,
            token_id: "b",
            subject: "alice",
            expires_at: exp,
        })
        .await
        .unwrap();
        assert!(r.is_empty());
    }

    #[tokio::test]
    async fn subject_cutoff_refuses_older_and_same_second_tokens_only() {
        let clock = ManualClock::starting_now();
        let r = MemoryRevocation::with_clock(clock.clone());
        let t0 = clock.now();
        r.revoke_subject("alice", t0 + Duration::from_millis(500))
            .await
            .unwrap();
        assert!(revoked(
            &r,
            &query("alice", Some("x"), Some(t0 - Duration::from_secs(10)))
        ));
        assert!(revoked(&r, &query("alice", Some("x"), Some(t0))));
        assert!(!revoked(
            &r,
            &query("alice", Some("x"), Some(t0 + Duration::from_secs(1)))
        ));
        assert!(!revoked(
            &r,
            &query("bob", Some("x"), Some(t0 - Duration::from_secs(10)))
        ));
        // No iat for a subject with a cut-off: refused. Without a cut-off: fine.
        assert!(revoked(&r, &query("alice", Some("x"), None)));
        assert!(!revoked(&r, &query("bob", Some("x"), None)));
    }

    #[tokio::test]
    async fn full_denylist_escalates_to_subject_cutoff() {
        let clock = ManualClock::starting_now();
        let r = MemoryRevocation::with_clock(clock.clone()).max_denylist(2);
        let exp = clock.now() + Duration::from_secs(600);
        for jti in ["a", "b", "c"] {
            r.revoke_token(RevokedToken {
                issuer: None,
                token_id: jti,
                subject: "alice",
                expires_at: exp,
            })
            .await
            .unwrap();
        }
        assert_eq!(r.len(), (2, 1));
        // "c" did not fit but is refused through alice's cut-off.
        assert!(revoked(&r, &query("alice", Some("c"), Some(clock.now()))));
    }
}
