//! [`SqlRefreshStore`]: durable refresh-token families and session stamps.

mod rotate;

use std::{fmt, time::SystemTime};

use portcullis_core::internal::{from_unix_micros, hex, unix_micros};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RefreshStore, RotateOutcome,
    Rotation, SessionStamp, TokenHash,
};
use sqlx::Row;

#[cfg(feature = "postgres")]
use crate::db::Dialect;
use crate::{SqlDatabase, db::on_pool, purge};

/// Creates the subject's stamp row if it has none, so that there is a row to lock.
#[cfg(feature = "postgres")]
const ENSURE_STAMP_PG: &str = "INSERT INTO portcullis_session_stamps (subject, stamp, updated_at) \
                               VALUES ($1, 0, $2) ON CONFLICT (subject) DO NOTHING";
/// A share lock: logins of one subject do not wait for each other, but
/// `end_sessions`'s update of the row waits for them (and they for it).
const LOCK_STAMP_PG: &str = "SELECT stamp FROM portcullis_session_stamps WHERE subject = $1 \
                             FOR SHARE";
const READ_STAMP: &str = "SELECT stamp FROM portcullis_session_stamps WHERE subject = $1";

const ADVANCE_STAMP: &str = "INSERT INTO portcullis_session_stamps (subject, stamp, updated_at) \
     VALUES ($1, 1, $2) ON CONFLICT (subject) DO UPDATE \
     SET stamp = portcullis_session_stamps.stamp + 1, updated_at = excluded.updated_at";

const INSERT_FAMILY: &str = "INSERT INTO portcullis_refresh_families \
     (family, subject, client_id, expires_at, revoked) \
     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (family) DO NOTHING";

const INSERT_TOKEN: &str = "INSERT INTO portcullis_refresh_tokens \
     (hash, family, issued_at, expires_at, used) \
     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (hash) DO NOTHING";

/// A [`RefreshStore`] in PostgreSQL or SQLite: refresh tokens and session stamps that
/// survive restarts and are shared by every instance on the same database.
///
/// Each write is one transaction; on SQLite it starts with `BEGIN IMMEDIATE`, which
/// takes the database's write lock before reading, so the transactions of every
/// instance run one after the other. On PostgreSQL they take row locks:
///
/// - [`rotate`](RefreshStore::rotate) locks the presented token's row, then its
///   family's (`SELECT … FOR UPDATE`), so a concurrent rotation of the same token
///   waits and then reads it as used. Of many concurrent rotations presenting one
///   token, exactly one rotates it; the others get the same successor back when they
///   come within the reuse interval from the same client, and revoke the family
///   otherwise.
/// - [`create`](RefreshStore::create) makes sure the subject has a row in
///   `portcullis_session_stamps`, locks it (`FOR SHARE`), compares the stamp and
///   inserts the family; [`end_sessions`](RefreshStore::end_sessions) updates that row
///   (an exclusive lock) and then revokes the subject's families. So either the
///   login's family exists when the revocation runs (and is revoked), or the login
///   reads the new stamp (and stores nothing).
///
/// Only SHA-256 hashes of tokens are stored, and the successor of a used token only
/// sealed for its predecessor's holder. Families past their absolute lifetime are
/// deleted by [`purge_expired`](Self::purge_expired) (or
/// [`SqlDatabase::spawn_purger`]). Session stamps are kept: one small row for each
/// subject that ever logged in (PostgreSQL) or ended its sessions (SQLite).
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

    /// Deletes the families (and their tokens) whose absolute lifetime ended by `now`,
    /// in bounded batches (see [`SqlDatabase::purge_expired`]). Returns how many
    /// families were deleted.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, TokenError> {
        purge::refresh_families(&self.db, now)
            .await
            .map_err(store_error)
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

fn stamp_from(value: i64) -> Result<SessionStamp, sqlx::Error> {
    u64::try_from(value)
        .map(SessionStamp)
        .map_err(|_| sqlx::Error::Decode("portcullis_session_stamps.stamp is negative".into()))
}

/// How a creation ended inside its transaction.
enum Created {
    Done,
    Duplicate,
    SessionsEnded,
}

impl RefreshStore for SqlRefreshStore {
    async fn stamp(&self, subject: &str) -> Result<SessionStamp, TokenError> {
        let result: Result<SessionStamp, sqlx::Error> = on_pool!(&self.db, |pool, dialect| async {
            let stamp: Option<i64> = sqlx::query_scalar(READ_STAMP)
                .bind(subject)
                .fetch_optional(pool)
                .await?;
            stamp.map_or(Ok(SessionStamp::default()), stamp_from)
        }
        .await);
        result.map_err(store_error)
    }

    async fn create(&self, record: RefreshRecord, stamp: SessionStamp) -> Result<(), TokenError> {
        let hash = hex(&record.hash.0);
        let result: Result<Created, sqlx::Error> = on_pool!(&self.db, |pool, dialect| {
            async {
                let mut tx = pool.begin_with(dialect.begin()).await?;
                #[cfg(feature = "postgres")]
                if dialect == Dialect::Postgres {
                    sqlx::query(ENSURE_STAMP_PG)
                        .bind(&record.subject)
                        .bind(unix_micros(record.issued_at))
                        .execute(&mut *tx)
                        .await?;
                }
                let current: Option<i64> =
                    sqlx::query_scalar(dialect.pick(LOCK_STAMP_PG, READ_STAMP))
                        .bind(&record.subject)
                        .fetch_optional(&mut *tx)
                        .await?;
                let current = current.map_or(Ok(SessionStamp::default()), stamp_from)?;
                if current != stamp {
                    tx.rollback().await?;
                    return Ok(Created::SessionsEnded);
                }
                let family = sqlx::query(INSERT_FAMILY)
                    .bind(&record.family)
                    .bind(&record.subject)
                    .bind(&record.client_id)
                    .bind(unix_micros(record.family_expires_at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let token = sqlx::query(INSERT_TOKEN)
                    .bind(&hash)
                    .bind(&record.family)
                    .bind(unix_micros(record.issued_at))
                    .bind(unix_micros(record.expires_at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if family == 1 && token == 1 {
                    tx.commit().await?;
                    Ok(Created::Done)
                } else {
                    tx.rollback().await?;
                    Ok(Created::Duplicate)
                }
            }
            .await
        });
        match result.map_err(store_error)? {
            Created::Done => Ok(()),
            Created::Duplicate => Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token or family",
            )),
            Created::SessionsEnded => Err(TokenError::new(
                TokenErrorKind::SessionsEnded,
                "the subject's sessions were ended while this login was under way",
            )),
        }
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, TokenError> {
        rotate::rotate(&self.db, &rotation).await
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, TokenError> {
        let key = hex(&hash.0);
        let result: Result<Option<RefreshRecord>, sqlx::Error> =
            on_pool!(&self.db, |pool, dialect| async {
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
        let result: Result<u64, sqlx::Error> = on_pool!(&self.db, |pool, dialect| {
            sqlx::query(
                "UPDATE portcullis_refresh_families SET revoked = 1 \
                 WHERE family = $1 AND revoked = 0",
            )
            .bind(family)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        result.map(|n| n == 1).map_err(store_error)
    }

    async fn end_sessions(&self, subject: &str) -> Result<Vec<String>, TokenError> {
        let now = unix_micros(SystemTime::now());
        let result: Result<Vec<String>, sqlx::Error> = on_pool!(&self.db, |pool, dialect| async {
            // The stamp first, as `create` does: the two serialize on its row.
            let mut tx = pool.begin_with(dialect.begin()).await?;
            sqlx::query(ADVANCE_STAMP)
                .bind(subject)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let families: Vec<String> = sqlx::query_scalar(
                "UPDATE portcullis_refresh_families SET revoked = 1 \
                     WHERE subject = $1 AND revoked = 0 RETURNING family",
            )
            .bind(subject)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(families)
        }
        .await);
        result.map_err(store_error)
    }
}
