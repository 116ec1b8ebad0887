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
    Clock, Error as TokenError, ErrorKind as TokenErrorKind, ManualClock, RefreshRecord,
    RefreshStore, RefreshTokens, RotateOutcome, Rotation, TokenHash,
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
mod refresh;
mod schema;

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

fn refresh_tokens(db: SqlDatabase, clock: &ManualClock) -> RefreshTokens<SqlRefreshStore> {
    RefreshTokens::builder(SqlRefreshStore::new(db))
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(600))
        .unwrap()
        .absolute_lifetime(Duration::from_secs(3600))
        .unwrap()
        .build()
}
