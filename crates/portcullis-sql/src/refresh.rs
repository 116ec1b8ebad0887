//! [`SqlRefreshStore`]: durable refresh-token families.

use std::{fmt, time::SystemTime};

use portcullis_core::internal::{from_unix_micros, hex, unix_micros};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RefreshStore, RotateOutcome,
    Rotation, TokenHash,
};
use sqlx::Row;

use crate::{SqlDatabase, db::on_pool};

const SELECT_TOKEN_PG: &str = "SELECT family, expires_at, used FROM portcullis_refresh_tokens \
                               WHERE hash = $1 FOR UPDATE";
const SELECT_TOKEN_LITE: &str = "SELECT family, expires_at, used FROM portcullis_refresh_tokens \
                                 WHERE hash = $1";
const SELECT_FAMILY_PG: &str = "SELECT subject, client_id, expires_at, revoked \
                                FROM portcullis_refresh_families WHERE family = $1 FOR UPDATE";
const SELECT_FAMILY_LITE: &str = "SELECT subject, client_id, expires_at, revoked \
                                  FROM portcullis_refresh_families WHERE family = $1";

/// A [`RefreshStore`] in PostgreSQL or SQLite: refresh tokens that survive restarts
/// and are shared by every instance on the same database.
///
/// [`rotate`](RefreshStore::rotate) runs in one transaction: on PostgreSQL it locks
/// the presented token's row, then its family's (`SELECT … FOR UPDATE`), so a
/// concurrent rotation of the same token waits and then reads it as used; on SQLite
/// the transaction starts with `BEGIN IMMEDIATE`, which takes the database's write
/// lock before reading. Either way, of many concurrent rotations presenting one
/// token exactly one succeeds and the others detect reuse.
///
/// Only SHA-256 hashes of tokens are stored. Families past their absolute lifetime
/// are deleted by [`purge_expired`](Self::purge_expired) (call it now and then).
///
/// Store failures are [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store)
/// errors (a server error at the token endpoint), logged under `portcullis::sql`.
#[derive(Clone)]
pub struct SqlRefreshStore {
    db: SqlDatabase,
}

impl SqlRefreshStore {
    /// A store in `db`. Run [`SqlDatabase::migrate`] first.
    pub fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// The database.
    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }

    /// Deletes every family (and its tokens) whose absolute lifetime ended by `now`.
    /// Returns how many families were deleted.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, TokenError> {
        let now = unix_micros(now);
        let result: Result<u64, sqlx::Error> = on_pool!(&self.db.pool, |pool, dialect| async {
            let mut tx = pool.begin_with(dialect.begin()).await?;
            sqlx::query(
                "DELETE FROM portcullis_refresh_tokens WHERE family IN \
                 (SELECT family FROM portcullis_refresh_families WHERE expires_at <= $1)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let deleted =
                sqlx::query("DELETE FROM portcullis_refresh_families WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            tx.commit().await?;
            Ok(deleted)
        }
        .await);
        result.map_err(store_error)
    }
}

impl fmt::Debug for SqlRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRefreshStore")
            .field("db", &self.db)
            .finish()
    }
}

fn store_error(e: sqlx::Error) -> TokenError {
    tracing::warn!(target: "portcullis::sql", error = %e, "refresh token store failed");
    TokenError::store(e)
}

/// What a rotation found, decided inside the transaction.
enum Step {
    Done(RotateOutcome),
    Duplicate,
}

impl RefreshStore for SqlRefreshStore {
    async fn create(&self, record: RefreshRecord) -> Result<(), TokenError> {
        let hash = hex(&record.hash.0);
        let result: Result<bool, sqlx::Error> = on_pool!(&self.db.pool, |pool, dialect| {
            async {
            let mut tx = pool.begin_with(dialect.begin()).await?;
            let family = sqlx::query(
                "INSERT INTO portcullis_refresh_families (family, subject, client_id, expires_at, revoked) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (family) DO NOTHING",
            )
            .bind(&record.family)
            .bind(&record.subject)
            .bind(&record.client_id)
            .bind(unix_micros(record.family_expires_at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let token = sqlx::query(
                "INSERT INTO portcullis_refresh_tokens (hash, family, issued_at, expires_at, used) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (hash) DO NOTHING",
            )
            .bind(&hash)
            .bind(&record.family)
            .bind(unix_micros(record.issued_at))
            .bind(unix_micros(record.expires_at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if family == 1 && token == 1 {
                tx.commit().await?;
                Ok(true)
            } else {
                tx.rollback().await?;
                Ok(false)
            }
        }
        .await
        });
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token or family",
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, TokenError> {
        let presented = hex(&rotation.presented.0);
        let successor = hex(&rotation.successor.0);
        let now = unix_micros(rotation.now);
        let result: Result<Step, sqlx::Error> = on_pool!(&self.db.pool, |pool, dialect| {
            async {
            let mut tx = pool.begin_with(dialect.begin()).await?;
            let Some(token) = sqlx::query(dialect.pick(SELECT_TOKEN_PG, SELECT_TOKEN_LITE))
                .bind(&presented)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(Step::Done(RotateOutcome::Unknown));
            };
            let family_id: String = token.try_get("family")?;
            let token_expires: i64 = token.try_get("expires_at")?;
            let used: i64 = token.try_get("used")?;
            let Some(family) = sqlx::query(dialect.pick(SELECT_FAMILY_PG, SELECT_FAMILY_LITE))
                .bind(&family_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(Step::Done(RotateOutcome::Unknown));
            };
            let subject: String = family.try_get("subject")?;
            let client_id: String = family.try_get("client_id")?;
            let family_expires: i64 = family.try_get("expires_at")?;
            let revoked: i64 = family.try_get("revoked")?;
            let step = if revoked != 0 {
                Step::Done(RotateOutcome::FamilyRevoked)
            } else if used != 0 {
                sqlx::query("UPDATE portcullis_refresh_families SET revoked = 1 WHERE family = $1")
                    .bind(&family_id)
                    .execute(&mut *tx)
                    .await?;
                Step::Done(RotateOutcome::Reused {
                    subject,
                    family: family_id,
                })
            } else if client_id != rotation.client_id {
                Step::Done(RotateOutcome::ClientMismatch)
            } else if now >= token_expires || now >= family_expires {
                Step::Done(RotateOutcome::Expired)
            } else if sqlx::query("SELECT 1 FROM portcullis_refresh_tokens WHERE hash = $1")
                .bind(&successor)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            {
                Step::Duplicate
            } else {
                let idle = i64::try_from(rotation.idle_timeout.as_micros()).unwrap_or(i64::MAX);
                let expires = now.saturating_add(idle).min(family_expires);
                sqlx::query("UPDATE portcullis_refresh_tokens SET used = 1 WHERE hash = $1")
                    .bind(&presented)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO portcullis_refresh_tokens (hash, family, issued_at, expires_at, used) \
                     VALUES ($1, $2, $3, $4, 0)",
                )
                .bind(&successor)
                .bind(&family_id)
                .bind(now)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
                // Exact times for the caller; the row keeps microseconds.
                let expires_at = (rotation.now + rotation.idle_timeout).min(from_unix_micros(family_expires));
                Step::Done(RotateOutcome::Rotated(RefreshRecord {
                    hash: *rotation.successor,
                    family: family_id,
                    subject,
                    client_id,
                    issued_at: rotation.now,
                    expires_at,
                    family_expires_at: from_unix_micros(family_expires),
                }))
            };
            match step {
                Step::Done(outcome) => {
                    tx.commit().await?;
                    Ok(Step::Done(outcome))
                }
                Step::Duplicate => {
                    tx.rollback().await?;
                    Ok(Step::Duplicate)
                }
            }
        }
        .await
        });
        match result {
            Ok(Step::Done(outcome)) => Ok(outcome),
            Ok(Step::Duplicate) => Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token",
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, TokenError> {
        let key = hex(&hash.0);
        let result: Result<Option<RefreshRecord>, sqlx::Error> =
            on_pool!(&self.db.pool, |pool, dialect| async {
                let row = sqlx::query(
                    "SELECT t.family, t.issued_at, t.expires_at, f.subject, f.client_id, \
                     f.expires_at AS family_expires_at \
                     FROM portcullis_refresh_tokens t \
                     JOIN portcullis_refresh_families f ON f.family = t.family \
                     WHERE t.hash = $1",
                )
                .bind(&key)
                .fetch_optional(pool)
                .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(RefreshRecord {
                        hash: *hash,
                        family: row.try_get("family")?,
                        subject: row.try_get("subject")?,
                        client_id: row.try_get("client_id")?,
                        issued_at: from_unix_micros(row.try_get("issued_at")?),
                        expires_at: from_unix_micros(row.try_get("expires_at")?),
                        family_expires_at: from_unix_micros(row.try_get("family_expires_at")?),
                    })),
                }
            }
            .await);
        result.map_err(store_error)
    }

    async fn revoke_family(&self, family: &str) -> Result<bool, TokenError> {
        let result: Result<u64, sqlx::Error> = on_pool!(&self.db.pool, |pool, dialect| {
            async {
            sqlx::query(
                "UPDATE portcullis_refresh_families SET revoked = 1 WHERE family = $1 AND revoked = 0",
            )
            .bind(family)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        }
        .await
        });
        result.map(|n| n == 1).map_err(store_error)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<Vec<String>, TokenError> {
        let result: Result<Vec<String>, sqlx::Error> =
            on_pool!(&self.db.pool, |pool, dialect| async {
                sqlx::query_scalar(
                    "UPDATE portcullis_refresh_families SET revoked = 1 \
                 WHERE subject = $1 AND revoked = 0 RETURNING family",
                )
                .bind(subject)
                .fetch_all(pool)
                .await
            }
            .await);
        result.map_err(store_error)
    }
}
