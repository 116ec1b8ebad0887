//! [`SqlRevocation`]: access-token revocations persisted in SQL, checked in memory.

mod fresh;

pub use self::fresh::FreshRevocation;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime},
};

use portcullis_core::{
    AuthError, MaybeReady, Revocation, RevocationQuery,
    internal::{from_unix_micros, hex, unix_micros},
};
use portcullis_tokens::{
    Clock, DEFAULT_CUTOFF_RETENTION, DEFAULT_MAX_DENYLIST, Error as TokenError, MemoryRevocation,
    RevocationStore, RevokedToken, SystemClock,
};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use crate::{PURGE_BATCH_SIZE, SqlDatabase, db::on_pool, purge};

const NEXT_SEQ: &str = "UPDATE portcullis_revocation_seq SET seq = seq + 1 WHERE id = 1 \
                        RETURNING seq";

const UPSERT_TOKEN: &str = "INSERT INTO portcullis_revocations \
     (id, subject, issuer, token_id, cutoff, keep_until, seq) \
     VALUES ($1, $2, $3, $4, NULL, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, keep_until = CASE \
       WHEN excluded.keep_until > portcullis_revocations.keep_until \
       THEN excluded.keep_until ELSE portcullis_revocations.keep_until END";

const UPSERT_CUTOFF: &str = "INSERT INTO portcullis_revocations \
     (id, subject, issuer, token_id, cutoff, keep_until, seq) \
     VALUES ($1, $2, NULL, NULL, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, cutoff = CASE \
       WHEN excluded.cutoff > portcullis_revocations.cutoff \
       THEN excluded.cutoff ELSE portcullis_revocations.cutoff END, keep_until = CASE \
       WHEN excluded.keep_until > portcullis_revocations.keep_until \
       THEN excluded.keep_until ELSE portcullis_revocations.keep_until END";

const SINCE: &str = "SELECT seq, subject, issuer, token_id, cutoff, keep_until \
     FROM portcullis_revocations WHERE seq > $1 AND keep_until > $2 ORDER BY seq LIMIT $3";

/// Access-token revocation for several instances on one database, without a database
/// round trip per request.
///
/// It implements both sides: [`RevocationStore`] (what
/// [`TokenService`](portcullis_tokens::TokenService) writes on logout and logout
/// everywhere) and core's [`Revocation`] (what the JWT verifier checks on every
/// request). Checks read a local [`MemoryRevocation`] only. Writes go to the database
/// first (table `portcullis_revocations`), then to the local view; a write that fails
/// in the database fails and changes nothing.
///
/// - [`load`](Self::load) reads every live revocation at start-up, so a restart never
///   resurrects a revoked token;
/// - [`sync`](Self::sync) pulls what other instances wrote since the last sync (rows
///   carry a sequence number that writers take under a lock, so they commit in order
///   and none is skipped); [`spawn_sync`](Self::spawn_sync) calls it periodically.
///
/// # Staleness
///
/// An instance refuses a token revoked by *another* instance only from its next
/// [`sync`](Self::sync): with `spawn_sync(period)`, at most `period` (plus the time a
/// sync takes) after the revocation. Revocations made through this instance apply at
/// once. Choose the period against the access-token lifetime (a few seconds is
/// cheap: an idle sync is one indexed query). Where a stale answer would leave a gap
/// (re-checking a session right after storing a credential it made), check through
/// [`fresh`](Self::fresh), which syncs first.
///
/// Rows are kept until the token's `exp` (denied tokens) or the cut-off plus its
/// retention (subject cut-offs), then deleted by [`purge_expired`](Self::purge_expired)
/// or [`SqlDatabase::spawn_purger`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use portcullis_core::{MaybeReady, Revocation, RevocationQuery};
/// use portcullis_sql::{SqlDatabase, SqlRevocation};
/// use portcullis_tokens::RevocationStore;
/// use sqlx::sqlite::SqlitePoolOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
/// let db = SqlDatabase::sqlite(pool);
/// db.migrate().await?;
///
/// let revocation = SqlRevocation::load(db.clone()).await?;
/// revocation.revoke_subject("alice", SystemTime::now()).await?;
///
/// // Another instance (or this one after a restart) loads it from the database.
/// let restarted = SqlRevocation::load(db).await?;
/// let query = RevocationQuery {
///     issuer: None,
///     subject: "alice",
///     token_id: Some("t1"),
///     issued_at: Some(SystemTime::now() - Duration::from_secs(60)),
/// };
/// assert!(matches!(restarted.check(&query), MaybeReady::Ready(Err(_))));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlRevocation {
    inner: Arc<Inner>,
}

struct Inner {
    db: SqlDatabase,
    memory: MemoryRevocation,
    clock: Arc<dyn Clock>,
    cutoff_retention: Duration,
    /// The highest `seq` applied by a sync.
    watermark: AtomicI64,
}

/// Configures a [`SqlRevocation`]; made by [`SqlRevocation::builder`].
#[must_use]
pub struct SqlRevocationBuilder {
    db: SqlDatabase,
    clock: Arc<dyn Clock>,
    cutoff_retention: Duration,
    max_denylist: usize,
}

impl fmt::Debug for SqlRevocationBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRevocationBuilder")
            .field("db", &self.db)
            .field("cutoff_retention", &self.cutoff_retention)
            .field("max_denylist", &self.max_denylist)
            .finish_non_exhaustive()
    }
}

impl SqlRevocationBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a subject cut-off is kept, here and in the database (default
    /// [`DEFAULT_CUTOFF_RETENTION`]). Must exceed the longest access-token lifetime,
    /// plus leeway, of any issuer whose tokens this checks.
    pub fn cutoff_retention(mut self, retention: Duration) -> Self {
        self.cutoff_retention = retention;
        self
    }

    /// The local denylist's cap (default [`DEFAULT_MAX_DENYLIST`]); see
    /// [`MemoryRevocation`] for what happens when it is full (it fails closed).
    pub fn max_denylist(mut self, max: usize) -> Self {
        self.max_denylist = max;
        self
    }

    /// Loads every live revocation from the database into the local view.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) when the database
    /// fails.
    pub async fn load(self) -> Result<SqlRevocation, TokenError> {
        let clock = Arc::clone(&self.clock);
        let memory = MemoryRevocation::with_clock(move || clock.now())
            .max_denylist(self.max_denylist)
            .cutoff_retention(self.cutoff_retention);
        let revocation = SqlRevocation {
            inner: Arc::new(Inner {
                db: self.db,
                memory,
                clock: self.clock,
                cutoff_retention: self.cutoff_retention,
                watermark: AtomicI64::new(0),
            }),
        };
        revocation.sync().await?;
        Ok(revocation)
    }
}

impl SqlRevocation {
    /// Loads every live revocation in `db` with the defaults (system clock,
    /// [`DEFAULT_CUTOFF_RETENTION`], [`DEFAULT_MAX_DENYLIST`]). Run
    /// [`SqlDatabase::migrate`] first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) when the database
    /// fails.
    pub async fn load(db: SqlDatabase) -> Result<Self, TokenError> {
        Self::builder(db).load().await
    }

    /// Starts configuring a revocation list on `db`; finish with
    /// [`load`](SqlRevocationBuilder::load).
    pub fn builder(db: SqlDatabase) -> SqlRevocationBuilder {
        SqlRevocationBuilder {
            db,
            clock: Arc::new(SystemClock),
            cutoff_retention: DEFAULT_CUTOFF_RETENTION,
            max_denylist: DEFAULT_MAX_DENYLIST,
        }
    }

    /// The database.
    pub fn database(&self) -> &SqlDatabase {
        &self.inner.db
    }

    /// The local view that [`check`](Revocation::check) reads (for its size, say).
    /// Revoke through `self`: what is written to the view directly is not persisted.
    pub fn local(&self) -> &MemoryRevocation {
        &self.inner.memory
    }

    /// Applies to the local view every revocation written to the database (by any
    /// instance) since the last sync, in pages of [`PURGE_BATCH_SIZE`] rows. Returns
    /// how many rows were applied. Applying a row twice is harmless, so concurrent
    /// syncs are fine.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) when the database
    /// fails; what was applied before stays applied.
    pub async fn sync(&self) -> Result<usize, TokenError> {
        let inner = &*self.inner;
        let mut applied = 0;
        loop {
            let since = inner.watermark.load(Ordering::Acquire);
            let now = unix_micros(inner.clock.now());
            let rows: Vec<Entry> = on_pool!(&inner.db, |pool, dialect| async {
                let rows = sqlx::query(SINCE)
                    .bind(since)
                    .bind(now)
                    .bind(PURGE_BATCH_SIZE as i64)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(Entry {
                            seq: row.try_get("seq")?,
                            subject: row.try_get("subject")?,
                            issuer: row.try_get("issuer")?,
                            token_id: row.try_get("token_id")?,
                            cutoff: row.try_get("cutoff")?,
                            keep_until: row.try_get("keep_until")?,
                        })
                    })
                    .collect::<Result<Vec<Entry>, sqlx::Error>>()
            }
            .await)
            .map_err(store_error)?;
            for entry in &rows {
                entry.apply(&inner.memory).await?;
                inner.watermark.fetch_max(entry.seq, Ordering::AcqRel);
            }
            applied += rows.len();
            if (rows.len() as u64) < PURGE_BATCH_SIZE {
                return Ok(applied);
            }
        }
    }

    /// A [`Revocation`] that syncs before every check: authoritative across
    /// instances, at a database query per check. For the few checks that must not be
    /// stale (see [`FreshRevocation`]), not for the request path.
    pub fn fresh(&self) -> FreshRevocation {
        FreshRevocation::new(self.clone())
    }

    /// Spawns a task on the current Tokio runtime that calls [`sync`](Self::sync)
    /// every `period` (the first time after one period). Failures are logged (target
    /// `portcullis::sql`) and retried at the next tick. `period` bounds how stale this
    /// instance's view of other instances' revocations is (see
    /// [Staleness](Self#staleness)).
    ///
    /// Keep the handle and [`abort`](JoinHandle::abort) it to stop syncing (dropping
    /// it detaches the task).
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, or if `period` is zero.
    pub fn spawn_sync(&self, period: Duration) -> JoinHandle<()> {
        assert!(!period.is_zero(), "the sync period must not be zero");
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(error) = this.sync().await {
                    tracing::warn!(
                        target: "portcullis::sql",
                        %error,
                        "syncing revocations failed"
                    );
                }
            }
        })
    }

    /// Deletes the rows that expired by `now` (tokens past `exp`, cut-offs past their
    /// retention), in bounded batches (see [`SqlDatabase::purge_expired`]), and drops
    /// the same from the local view. Returns how many rows were deleted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) when the database
    /// fails.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, TokenError> {
        self.inner.memory.purge_expired();
        purge::revocations(&self.inner.db, now)
            .await
            .map_err(store_error)
    }

    /// Writes one row in its own transaction, under the sequence lock.
    async fn write(&self, row: Write<'_>) -> Result<(), TokenError> {
        let result: Result<(), sqlx::Error> = on_pool!(&self.inner.db, |pool, dialect| {
            async {
                let mut tx = pool.begin_with(dialect.begin()).await?;
                let seq: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
                match row {
                    Write::Token(token) => {
                        sqlx::query(UPSERT_TOKEN)
                            .bind(token_row_id(token.issuer, token.token_id))
                            .bind(token.subject)
                            .bind(token.issuer)
                            .bind(token.token_id)
                            .bind(unix_micros(token.expires_at))
                            .bind(seq)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Write::Cutoff { subject, cutoff } => {
                        let keep_until = cutoff
                            .checked_add(self.inner.cutoff_retention)
                            .unwrap_or_else(|| from_unix_micros(i64::MAX));
                        sqlx::query(UPSERT_CUTOFF)
                            .bind(subject_row_id(subject))
                            .bind(subject)
                            .bind(unix_micros(cutoff))
                            .bind(unix_micros(keep_until))
                            .bind(seq)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await
            }
            .await
        });
        result.map_err(store_error)
    }
}

impl fmt::Debug for SqlRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRevocation")
            .field("db", &self.inner.db)
            .field("local", &self.inner.memory)
            .field("watermark", &self.inner.watermark.load(Ordering::Relaxed))
            .finish()
    }
}

impl Revocation for SqlRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        self.inner.memory.check(query)
    }
}

impl RevocationStore for SqlRevocation {
    async fn revoke_token(&self, token: RevokedToken<'_>) -> Result<(), TokenError> {
        if token.expires_at <= self.inner.clock.now() {
            // Dead anyway: the verifier refuses it on `exp`.
            return Ok(());
        }
        self.write(Write::Token(token)).await?;
        self.inner.memory.revoke_token(token).await
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), TokenError> {
        self.write(Write::Cutoff { subject, cutoff }).await?;
        self.inner.memory.revoke_subject(subject, cutoff).await
    }
}

enum Write<'a> {
    Token(RevokedToken<'a>),
    Cutoff {
        subject: &'a str,
        cutoff: SystemTime,
    },
}

/// One row read by a sync.
struct Entry {
    seq: i64,
    subject: String,
    issuer: Option<String>,
    token_id: Option<String>,
    cutoff: Option<i64>,
    keep_until: i64,
}

impl Entry {
    async fn apply(&self, memory: &MemoryRevocation) -> Result<(), TokenError> {
        match (&self.token_id, self.cutoff) {
            (Some(token_id), _) => {
                memory
                    .revoke_token(RevokedToken {
                        issuer: self.issuer.as_deref(),
                        token_id,
                        subject: &self.subject,
                        expires_at: from_unix_micros(self.keep_until),
                    })
                    .await
            }
            (None, Some(cutoff)) => {
                memory
                    .revoke_subject(&self.subject, from_unix_micros(cutoff))
                    .await
            }
            (None, None) => Ok(()),
        }
    }
}

/// A fixed-length key for a denied token, whatever the length of its `iss` and `jti`;
/// a token with an `iss` never shares a row with one without.
fn token_row_id(issuer: Option<&str>, token_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis revoked token\0");
    match issuer {
        Some(issuer) => {
            hasher.update([1]);
            hasher.update((issuer.len() as u64).to_be_bytes());
            hasher.update(issuer.as_bytes());
        }
        None => hasher.update([0]),
    }
    hasher.update(token_id.as_bytes());
    hex(&hasher.finalize())
}

fn subject_row_id(subject: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis subject cutoff\0");
    hasher.update(subject.as_bytes());
    hex(&hasher.finalize())
}

fn store_error(e: sqlx::Error) -> TokenError {
    tracing::warn!(target: "portcullis::sql", error = %e, "revocation store failed");
    TokenError::store(e)
}
