//! [`SqlDatabase`]: the pool the stores share, and the schema they need.

use std::{fmt, future::Future, time::Duration};

#[cfg(feature = "postgres")]
use sqlx::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::SqlitePool;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("portcullis-sql needs the `postgres` or the `sqlite` feature");

/// Runs `$body`, a `Result<_, sqlx::Error>` expression, with `$pool` bound to the
/// concrete pool of the [`SqlDatabase`] `$db` and `$dialect` to its [`Dialect`],
/// within the database's deadline (a call that overruns it is a timed-out I/O
/// error); the body is compiled once per database.
macro_rules! on_pool {
    ($db:expr, |$pool:ident, $dialect:ident| $body:expr) => {{
        let db: &$crate::SqlDatabase = $db;
        $crate::db::within(db.deadline, async {
            $crate::db::on_pool_raw!(&db.pool, |$pool, $dialect| $body)
        })
        .await
    }};
}
pub(crate) use on_pool;

/// [`on_pool!`] on a bare pool, without a deadline (migrations, closing).
macro_rules! on_pool_raw {
    ($db:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match $db {
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($pool) => {
                let $dialect = $crate::db::Dialect::Postgres;
                let _ = $dialect;
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite($pool) => {
                let $dialect = $crate::db::Dialect::Sqlite;
                let _ = $dialect;
                $body
            }
        }
    };
}
pub(crate) use on_pool_raw;

/// The default deadline of one store call: connection, statements and commit.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

/// `call`, or a timed-out I/O error once `deadline` has passed. Dropping the call
/// rolls back its open transaction, if any (sqlx rolls back a dropped transaction).
pub(crate) async fn within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the database did not answer within the deadline",
        ))),
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

/// Which SQL a statement needs where the two databases differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Dialect {
    /// The statement that opens a read-write transaction: on SQLite `BEGIN IMMEDIATE`
    /// takes the write lock at once, so two rotations never both read a token as
    /// live (a deferred transaction would fail one of them at its first write).
    pub(crate) fn begin(self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres => "BEGIN",
            #[cfg(feature = "sqlite")]
            Self::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// `postgres` on PostgreSQL, `sqlite` on SQLite.
    pub(crate) fn pick(self, postgres: &'static str, sqlite: &'static str) -> &'static str {
        let _ = (postgres, sqlite);
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres => postgres,
            #[cfg(feature = "sqlite")]
            Self::Sqlite => sqlite,
        }
    }
}

/// The database the stores of this crate live in: a `sqlx` pool for PostgreSQL or
/// SQLite. Cloning shares the pool.
///
/// Call [`migrate`](Self::migrate) once at start-up: it creates the tables
/// (`portcullis_refresh_families`, `portcullis_refresh_tokens`,
/// `portcullis_session_stamps`, `portcullis_api_keys`, `portcullis_one_time_tokens`,
/// `portcullis_revocations`, `portcullis_revocation_seq`, and `portcullis_schema`,
/// which records the schema version) if they are missing, and upgrades them when a
/// later version of this crate needs it (existing rows keep working). Instances that
/// migrate at once are serialized (an advisory lock on PostgreSQL, the write lock on
/// SQLite). Tables go into the connection's current schema (`search_path`).
///
/// Expired rows are deleted by [`purge_expired`](Self::purge_expired), once, or
/// periodically by the task [`spawn_purger`](Self::spawn_purger) starts.
///
/// # SQLite
///
/// Give the pool a busy timeout (sqlx's default is 5 s) so that writers queue for the
/// write lock instead of failing, and prefer WAL journal mode:
/// `SqliteConnectOptions::new().filename(path).create_if_missing(true)
/// .journal_mode(SqliteJournalMode::Wal).busy_timeout(Duration::from_secs(5))`.
#[derive(Clone)]
pub struct SqlDatabase {
    pub(crate) pool: Pool,
    pub(crate) deadline: Duration,
}

impl SqlDatabase {
    /// The stores on a PostgreSQL pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// The stores on a SQLite pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Gives every store call on this database `deadline` (default
    /// [`DEFAULT_DEADLINE`], 2 s) for its connection, statements and commit. A call
    /// that overruns it fails as a store error (the auth layers and the token
    /// endpoints answer `503`) instead of waiting on a locked row or an unreachable
    /// server; its transaction is rolled back. Migrations are not bound by it.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Creates or upgrades the tables, in one transaction. Idempotent.
    ///
    /// # Errors
    ///
    /// When the database fails, or holds a schema newer than this crate knows.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        on_pool_raw!(&self.pool, |pool, dialect| {
            let mut tx = pool.begin_with(dialect.begin()).await?;
            #[cfg(feature = "postgres")]
            if dialect == Dialect::Postgres {
                // Serialize concurrent start-ups: CREATE TABLE IF NOT EXISTS races.
                sqlx::query("SELECT pg_advisory_xact_lock(7306216311642395)")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(SCHEMA_TABLE).execute(&mut *tx).await?;
            let current: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM portcullis_schema WHERE component = 'portcullis'",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let current = current.unwrap_or(0);
            let latest = MIGRATIONS.len() as i64;
            if current > latest {
                return Err(sqlx::Error::Protocol(format!(
                    "portcullis schema version {current} is newer than this build knows ({latest})"
                )));
            }
            for statements in &MIGRATIONS[current as usize..] {
                for statement in *statements {
                    sqlx::query(*statement).execute(&mut *tx).await?;
                }
            }
            if current < latest {
                sqlx::query(
                    "INSERT INTO portcullis_schema (component, version) VALUES ('portcullis', $1) \
                     ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                )
                .bind(latest)
                .execute(&mut *tx)
                .await?;
                tracing::info!(
                    target: "portcullis::sql",
                    from = current,
                    to = latest,
                    "portcullis schema migrated"
                );
            }
            tx.commit().await
        })
    }

    /// Closes the pool: waits for every connection to be returned, then closes them.
    /// Stores sharing this database fail afterwards.
    pub async fn close(&self) {
        on_pool_raw!(&self.pool, |pool, dialect| pool.close().await)
    }

    /// Which database this is: `"postgres"` or `"sqlite"`.
    pub fn backend_name(&self) -> &'static str {
        on_pool_raw!(&self.pool, |_pool, dialect| dialect
            .pick("postgres", "sqlite"))
    }
}

impl fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS portcullis_schema (\
    component TEXT PRIMARY KEY, \
    version BIGINT NOT NULL)";

/// The schema, one entry per version; a released entry is never edited, a change is
/// a new entry. Times are microseconds since the Unix epoch (`BIGINT`), flags `0`/`1`,
/// hashes and digests lowercase hex: the same DDL runs on both databases.
const MIGRATIONS: &[&[&str]] = &[V1, V2];

const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS portcullis_refresh_families (\
        family TEXT PRIMARY KEY, \
        subject TEXT NOT NULL, \
        client_id TEXT NOT NULL, \
        expires_at BIGINT NOT NULL, \
        revoked BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS portcullis_refresh_families_subject \
        ON portcullis_refresh_families (subject)",
    "CREATE TABLE IF NOT EXISTS portcullis_refresh_tokens (\
        hash TEXT PRIMARY KEY, \
        family TEXT NOT NULL, \
        issued_at BIGINT NOT NULL, \
        expires_at BIGINT NOT NULL, \
        used BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS portcullis_refresh_tokens_family \
        ON portcullis_refresh_tokens (family)",
    "CREATE TABLE IF NOT EXISTS portcullis_api_keys (\
        id TEXT PRIMARY KEY, \
        owner TEXT NOT NULL, \
        name TEXT NOT NULL, \
        scopes TEXT NOT NULL, \
        roles TEXT NOT NULL, \
        created_at BIGINT NOT NULL, \
        expires_at BIGINT, \
        revoked_at BIGINT, \
        last_used_at BIGINT, \
        rotated_to TEXT, \
        digest TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS portcullis_api_keys_owner \
        ON portcullis_api_keys (owner, created_at)",
];

/// Session stamps, the reuse interval, session-bound API keys, one-time tokens and
/// access-token revocations.
const V2: &[&str] = &[
    "CREATE TABLE portcullis_session_stamps (\
        subject TEXT PRIMARY KEY, \
        stamp BIGINT NOT NULL, \
        updated_at BIGINT NOT NULL)",
    // Set when a token is used: when, and the successor it was rotated to (its hash,
    // and the successor sealed for the predecessor's holder). NULL on rows used
    // before this version: a repeat of those is reuse.
    "ALTER TABLE portcullis_refresh_tokens ADD COLUMN used_at BIGINT",
    "ALTER TABLE portcullis_refresh_tokens ADD COLUMN successor TEXT",
    "ALTER TABLE portcullis_refresh_tokens ADD COLUMN sealed_successor TEXT",
    "CREATE INDEX portcullis_refresh_families_expires \
        ON portcullis_refresh_families (expires_at)",
    "ALTER TABLE portcullis_api_keys ADD COLUMN session_bound BIGINT NOT NULL DEFAULT 1",
    "CREATE TABLE portcullis_one_time_tokens (\
        hash TEXT PRIMARY KEY, \
        subject TEXT NOT NULL, \
        purpose TEXT NOT NULL, \
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX portcullis_one_time_tokens_subject ON portcullis_one_time_tokens (subject)",
    "CREATE INDEX portcullis_one_time_tokens_expires ON portcullis_one_time_tokens (expires_at)",
    // One row per denied token (`token_id` set) or subject cut-off (`cutoff` set); `id`
    // is a digest of what the row is about. `seq` orders writes for `sync`.
    "CREATE TABLE portcullis_revocations (\
        id TEXT PRIMARY KEY, \
        subject TEXT NOT NULL, \
        issuer TEXT, \
        token_id TEXT, \
        cutoff BIGINT, \
        keep_until BIGINT NOT NULL, \
        seq BIGINT NOT NULL)",
    "CREATE INDEX portcullis_revocations_seq ON portcullis_revocations (seq)",
    "CREATE INDEX portcullis_revocations_keep_until ON portcullis_revocations (keep_until)",
    // One row: the last `seq` handed out. Writers lock it, so they commit in `seq` order.
    "CREATE TABLE portcullis_revocation_seq (\
        id BIGINT PRIMARY KEY, \
        seq BIGINT NOT NULL)",
    "INSERT INTO portcullis_revocation_seq (id, seq) VALUES (1, 0)",
];
