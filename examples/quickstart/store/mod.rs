//! The example's own tables, on the same pool as `portcullis-sql`'s: users, and the
//! one-shot claim "the first user became admin".
//!
//! Plain `sqlx::query` with `$n` parameters (both SQLite and PostgreSQL accept them),
//! no compile-time-checked macros, so building needs no database. Times are
//! microseconds since the Unix epoch in `BIGINT`, as in `portcullis-sql`.

use std::{
    fmt,
    path::Path,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use portcullis_sql::{
    SqlDatabase,
    sqlx::{
        self, PgPool, SqlitePool,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    },
};
use rand::RngCore;

/// Runs `$body` with `$pool` bound to the concrete pool; compiled once per database.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

// After `on_db!`, which they use.
mod users;

pub(crate) use users::{Registered, User, Users};

/// One pool, SQLite or PostgreSQL. Cloning shares it.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path`.
    pub(crate) async fn sqlite(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await?;
        Ok(Self::Sqlite(pool))
    }

    /// Connects to PostgreSQL; with `schema`, creates it if missing and puts every
    /// table there (`search_path`).
    pub(crate) async fn postgres(url: &str, schema: Option<&str>) -> Result<Self, sqlx::Error> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            // `schema` is validated as [a-z0-9_]+ by the configuration.
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&admin)
            .await?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The same pool for the `portcullis-sql` stores.
    pub(crate) fn portcullis(&self) -> SqlDatabase {
        match self {
            Self::Sqlite(pool) => SqlDatabase::sqlite(pool.clone()),
            Self::Postgres(pool) => SqlDatabase::postgres(pool.clone()),
        }
    }

    /// Creates the example's tables if they are missing. Idempotent; concurrent
    /// start-ups are serialized (advisory lock on PostgreSQL, the write lock on SQLite).
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::Error> {
        on_db!(self, |pool| {
            let begin = match self {
                Self::Sqlite(_) => "BEGIN IMMEDIATE",
                Self::Postgres(_) => "BEGIN",
            };
            let mut tx = pool.begin_with(begin).await?;
            if matches!(self, Self::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock(7306216311642396)")
                    .execute(&mut *tx)
                    .await?;
            }
            for statement in SCHEMA {
                sqlx::query(*statement).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }
}

const SCHEMA: &[&str] = &[
    // `email_key` is the lowercased address: uniqueness is case-insensitive on both
    // databases without collations or extensions; `email` keeps what the user typed.
    "CREATE TABLE IF NOT EXISTS quickstart_users (\
        id TEXT PRIMARY KEY, \
        email TEXT NOT NULL, \
        email_key TEXT NOT NULL UNIQUE, \
        name TEXT, \
        password_hash TEXT NOT NULL, \
        roles TEXT NOT NULL, \
        email_verified BIGINT NOT NULL DEFAULT 0, \
        created BIGINT NOT NULL)",
    // One-shot claims, such as "the first user became admin".
    "CREATE TABLE IF NOT EXISTS quickstart_meta (\
        key TEXT PRIMARY KEY, \
        value TEXT NOT NULL)",
];

pub(crate) fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A random id with a readable prefix: 128 bits from the OS, base32-ish lowercase.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
