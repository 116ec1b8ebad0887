//! [`SqlResetStore`]: durable one-time tokens (password resets, e-mail verification).

use std::{fmt, time::SystemTime};

use portcullis_core::internal::{from_hex, from_unix_micros, hex, unix_micros};
use portcullis_password::{ResetError, ResetRecord, ResetStore};
use sqlx::Row;

use crate::{SqlDatabase, db::on_pool, purge};

/// A [`ResetStore`] in PostgreSQL or SQLite: the one-time tokens of
/// [`ResetTokens`](portcullis_password::ResetTokens) (password-reset and e-mail
/// verification links), shared by every instance and kept across restarts.
///
/// A row holds the SHA-256 of the token (hex; never the token), its subject, its
/// purpose and its expiry. [`take`](ResetStore::take) is a single
/// `DELETE … RETURNING`: of concurrent redemptions of one token, exactly one gets the
/// record, on every instance. Expired rows are deleted by
/// [`purge_expired`](Self::purge_expired) (or [`SqlDatabase::spawn_purger`]);
/// [`ResetTokens`](portcullis_password::ResetTokens) refuses them before that.
///
/// Failures are [`ResetErrorKind::Store`](portcullis_password::ResetErrorKind::Store),
/// logged under `portcullis::sql`.
///
/// ```
/// use portcullis_password::{ResetErrorKind, ResetTokens};
/// use portcullis_sql::{SqlDatabase, SqlResetStore};
/// use sqlx::sqlite::SqlitePoolOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
/// let db = SqlDatabase::sqlite(pool);
/// db.migrate().await?;
///
/// let resets = ResetTokens::new(SqlResetStore::new(db));
/// let token = resets.issue("alice", "password_reset").await?;
/// assert_eq!(resets.redeem(token.as_str(), "password_reset").await?, "alice");
/// let again = resets.redeem(token.as_str(), "password_reset").await.unwrap_err();
/// assert_eq!(again.kind(), ResetErrorKind::Invalid);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlResetStore {
    db: SqlDatabase,
}

impl SqlResetStore {
    /// A store in `db`. Run [`SqlDatabase::migrate`] first.
    pub fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// The database.
    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }

    /// Deletes the tokens that expired by `now`, in bounded batches (see
    /// [`SqlDatabase::purge_expired`]). Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, ResetError> {
        purge::one_time_tokens(&self.db, now)
            .await
            .map_err(store_error)
    }
}

impl fmt::Debug for SqlResetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlResetStore")
            .field("db", &self.db)
            .finish()
    }
}

fn store_error(e: sqlx::Error) -> ResetError {
    tracing::warn!(target: "portcullis::sql", error = %e, "one-time token store failed");
    ResetError::store("one-time token store failed")
}

impl ResetStore for SqlResetStore {
    async fn insert(&self, record: ResetRecord) -> Result<(), ResetError> {
        let result: Result<(), sqlx::Error> = on_pool!(&self.db, |pool, dialect| {
            sqlx::query(
                "INSERT INTO portcullis_one_time_tokens (hash, subject, purpose, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hex(&record.hash))
            .bind(&record.subject)
            .bind(&record.purpose)
            .bind(unix_micros(record.expires_at))
            .execute(pool)
            .await
            .map(drop)
        });
        result.map_err(store_error)
    }

    async fn take(&self, hash: &[u8; 32]) -> Result<Option<ResetRecord>, ResetError> {
        let key = hex(hash);
        let result: Result<Option<ResetRecord>, sqlx::Error> =
            on_pool!(&self.db, |pool, dialect| async {
                let row = sqlx::query(
                    "DELETE FROM portcullis_one_time_tokens WHERE hash = $1 \
                     RETURNING hash, subject, purpose, expires_at",
                )
                .bind(&key)
                .fetch_optional(pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let stored: String = row.try_get("hash")?;
                Ok(Some(ResetRecord {
                    hash: from_hex::<32>(&stored).ok_or_else(|| {
                        sqlx::Error::Decode("portcullis_one_time_tokens.hash is malformed".into())
                    })?,
                    subject: row.try_get("subject")?,
                    purpose: row.try_get("purpose")?,
                    expires_at: from_unix_micros(row.try_get("expires_at")?),
                }))
            }
            .await);
        result.map_err(store_error)
    }

    async fn remove_subject(&self, subject: &str) -> Result<usize, ResetError> {
        let result: Result<u64, sqlx::Error> = on_pool!(&self.db, |pool, dialect| {
            sqlx::query("DELETE FROM portcullis_one_time_tokens WHERE subject = $1")
                .bind(subject)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        result
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(store_error)
    }
}
