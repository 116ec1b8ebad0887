//! The SQL stores against real PostgreSQL (`DATABASE_URL`, a fresh schema per test)
//! and SQLite (a file in a temporary directory). Every contract runs on both.

#[path = "../common/mod.rs"]
mod common;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use common::{PgScope, SqliteScope, database_url};
use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyDigest, KeyFormat, KeyRotation, NewApiKey,
    StoreErrorKind,
};
use portcullis_sql::{SqlApiKeyStore, SqlDatabase, SqlRefreshStore};
use portcullis_tokens::{
    Clock, Error as TokenError, ErrorKind as TokenErrorKind, IssuedRefreshToken, ManualClock,
    RefreshRecord, RefreshStore, RefreshTokens, RotateOutcome, Rotation, SealedToken, TokenHash,
};

/// Declares `$name` twice: `postgres::$name` and `sqlite::$name`, each running
/// `$body(db)` on a fresh database.
macro_rules! on_both {
    ($($name:ident => $body:ident;)+) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = super::database_url() else { return };
                    let scope = super::PgScope::new(&url).await;
                    super::$body(super::Opener::Postgres(&scope)).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let scope = super::SqliteScope::new();
                    super::$body(super::Opener::Sqlite(&scope)).await;
                }
            )+
        }
    };
}

// After `on_both!`, which they use.
mod apikey;
mod deadline;
mod one_time;
mod purge;
mod refresh;
mod reuse;
mod revocation;
mod schema;
mod stamp;

/// Opens (and re-opens) the test's database.
#[derive(Clone, Copy)]
enum Opener<'a> {
    Postgres(&'a PgScope),
    Sqlite(&'a SqliteScope),
}

impl Opener<'_> {
    async fn open(self) -> SqlDatabase {
        match self {
            Self::Postgres(scope) => scope.database().await,
            Self::Sqlite(scope) => scope.database().await,
        }
    }

    /// Runs SQL (one or more statements) on a pool of its own.
    async fn execute(self, sql: impl Into<String>) {
        let sql = portcullis_sql::sqlx::AssertSqlSafe(sql.into());
        match self {
            Self::Postgres(scope) => {
                let pool = scope.pool().await;
                portcullis_sql::sqlx::raw_sql(sql)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Self::Sqlite(scope) => {
                let pool = scope.pool().await;
                portcullis_sql::sqlx::raw_sql(sql)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }

    /// The first column of every row `sql` returns, as text.
    async fn strings(self, sql: &'static str) -> Vec<String> {
        match self {
            Self::Postgres(scope) => {
                let pool = scope.pool().await;
                let rows = portcullis_sql::sqlx::query_scalar(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                rows
            }
            Self::Sqlite(scope) => {
                let pool = scope.pool().await;
                let rows = portcullis_sql::sqlx::query_scalar(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                rows
            }
        }
    }

    fn rounds(self) -> usize {
        match self {
            Self::Postgres(_) => 40,
            Self::Sqlite(_) => 25,
        }
    }
}

async fn close(db: SqlDatabase) {
    // Waits until every connection is returned and closed.
    db.close().await;
}

/// The kind of a refusal; panics on success.
fn refused<T: std::fmt::Debug>(result: Result<T, TokenError>) -> TokenErrorKind {
    result.unwrap_err().kind()
}

/// The record the store holds under `hash`; panics when there is none.
async fn stored(refresh: &RefreshTokens<SqlRefreshStore>, hash: &TokenHash) -> RefreshRecord {
    refresh.store().find(hash).await.unwrap().unwrap()
}

/// Lowercase hex, as the stores write hashes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reuse interval of [`refresh_tokens`].
const REUSE: Duration = Duration::from_secs(10);

fn refresh_tokens(db: SqlDatabase, clock: &ManualClock) -> RefreshTokens<SqlRefreshStore> {
    RefreshTokens::builder(SqlRefreshStore::new(db))
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(600))
        .unwrap()
        .absolute_lifetime(Duration::from_secs(3600))
        .unwrap()
        .reuse_interval(REUSE)
        .build()
}

/// A login: reads the subject's stamp, then opens a family with it.
async fn login(
    refresh: &RefreshTokens<SqlRefreshStore>,
    subject: &str,
    client_id: &str,
) -> IssuedRefreshToken {
    let stamp = refresh.stamp(subject).await.unwrap();
    refresh.issue(subject, client_id, stamp).await.unwrap()
}
