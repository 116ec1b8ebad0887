//! A store call that cannot finish (a row locked by another connection) ends at the
//! database's deadline with a store error, and changes nothing.

use std::time::Instant;

use portcullis_sql::sqlx::{self, Postgres, Sqlite, pool::PoolConnection};

use super::*;

on_both! {
    a_call_on_a_locked_row_ends_at_the_deadline => call_on_a_locked_row_ends_at_the_deadline;
}

/// A connection of its own, inside a transaction that holds the lock a rotation needs.
enum Holder {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

impl Holder {
    async fn lock(opener: Opener<'_>) -> Self {
        match opener {
            Opener::Postgres(scope) => {
                let mut conn = scope.pool().await.acquire().await.unwrap();
                sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
                sqlx::query("SELECT hash FROM portcullis_refresh_tokens FOR UPDATE")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                Self::Postgres(conn)
            }
            Opener::Sqlite(scope) => {
                let mut conn = scope.pool().await.acquire().await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                Self::Sqlite(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Self::Postgres(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
            }
            Self::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
            }
        }
    }
}

async fn call_on_a_locked_row_ends_at_the_deadline(opener: Opener<'_>) {
    let deadline = Duration::from_millis(300);
    let db = opener.open().await.with_deadline(deadline);
    let refresh = RefreshTokens::new(SqlRefreshStore::new(db));
    let stamp = refresh.stamp("alice").await.unwrap();
    let issued = refresh.issue("alice", "web", stamp).await.unwrap();

    let holder = Holder::lock(opener).await;
    let started = Instant::now();
    let err = refresh
        .rotate(issued.token.as_str(), "web")
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), TokenErrorKind::Store, "{err:?}");
    assert!(took >= deadline, "gave up after {took:?}");
    assert!(took < Duration::from_secs(2), "waited {took:?}");
    holder.release().await;

    // The abandoned rotation changed nothing: the token is still live, once.
    let next = refresh.rotate(issued.token.as_str(), "web").await.unwrap();
    assert_eq!(next.record.family, issued.record.family);
}
