//! Test helpers: a fresh PostgreSQL schema per test (dropped afterwards) and a SQLite
//! file in a temporary directory.

#![allow(dead_code, unreachable_pub)]

use std::{path::PathBuf, str::FromStr, time::Duration};

use portcullis_sql::{
    SqlDatabase,
    sqlx::{
        Connection, PgConnection, PgPool, SqlitePool,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    },
};

/// `DATABASE_URL`, or `None` (after saying why on stderr) when it is unset outside
/// CI. Under `CI=true` a missing database fails the test.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("DATABASE_URL is not set, but CI=true requires the PostgreSQL tests to run");
            }
            eprintln!("skipping: DATABASE_URL is not set (set it to run the PostgreSQL tests)");
            None
        }
    }
}

/// A schema `t_<random>` of its own; dropped (with everything in it) on drop.
pub struct PgScope {
    url: String,
    pub schema: String,
}

impl PgScope {
    pub async fn new(url: &str) -> Self {
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(url).await.unwrap();
        portcullis_sql::sqlx::raw_sql(portcullis_sql::sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        Self {
            url: url.to_owned(),
            schema,
        }
    }

    /// A pool whose connections work in the test's schema.
    pub async fn pool(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap()
    }

    pub async fn database(&self) -> SqlDatabase {
        let db = SqlDatabase::postgres(self.pool().await);
        db.migrate().await.unwrap();
        db
    }
}

impl Drop for PgScope {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        // Runs even when the test panicked; a runtime of its own on another thread,
        // since the test's runtime may be shutting down.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&url).await?;
                portcullis_sql::sqlx::raw_sql(portcullis_sql::sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

/// A SQLite database file in a temporary directory (removed on drop).
pub struct SqliteScope {
    dir: tempfile::TempDir,
    // Opening connections switches a new file to WAL, which needs the write lock and
    // fails at once ("database is locked") rather than waiting when several pools do it
    // together; so pools connect one at a time, while migrations still run concurrently.
    connecting: tokio::sync::Mutex<()>,
}

impl SqliteScope {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("portcullis.db")
    }

    pub async fn pool(&self) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let _one_at_a_time = self.connecting.lock().await;
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap()
    }

    pub async fn database(&self) -> SqlDatabase {
        let db = SqlDatabase::sqlite(self.pool().await);
        db.migrate().await.unwrap();
        db
    }
}
