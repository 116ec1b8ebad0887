//! [`SqlApiKeyStore`]: durable API-key records.

use std::{fmt, sync::Arc, time::SystemTime};

use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, KeyDigest, KeyRotation, StoreError, StoreErrorKind, StoreFuture,
};
use portcullis_core::{
    MaybeReady,
    internal::{from_unix_micros as from_micros, unix_micros as micros},
};
use sqlx::Row;

use crate::{SqlDatabase, db::on_pool};

const SELECT_OLD_PG: &str = "SELECT revoked_at, expires_at, rotated_to FROM portcullis_api_keys \
                             WHERE id = $1 FOR UPDATE";
const SELECT_OLD_LITE: &str = "SELECT revoked_at, expires_at, rotated_to FROM portcullis_api_keys \
                               WHERE id = $1";

const INSERT: &str = "INSERT INTO portcullis_api_keys \
     (id, owner, name, scopes, roles, created_at, expires_at, revoked_at, last_used_at, rotated_to, \
      session_bound, digest) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING";

/// An [`ApiKeyStore`] in PostgreSQL or SQLite: keys that survive restarts and are
/// shared by every instance on the same database.
///
/// Only the key's digest is stored (hex), with its owner, grants, times (to the
/// microsecond) and whether it ends with its owner's sessions (`session_bound`, a
/// column that is `1` for keys stored before it existed). [`rotate`](ApiKeyStore::rotate) is one transaction (the old row
/// locked with `FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite); on any
/// refusal nothing changes. [`revoke`](ApiKeyStore::revoke) and
/// [`record_last_use`](ApiKeyStore::record_last_use) are single conditional updates.
///
/// Failures are [`StoreErrorKind::Backend`]: the authenticator answers `503`, never
/// `401`. They are logged under `portcullis::sql`.
#[derive(Clone)]
pub struct SqlApiKeyStore {
    db: SqlDatabase,
}

impl SqlApiKeyStore {
    /// A store in `db`. Run [`SqlDatabase::migrate`] first.
    pub fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// The database.
    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }
}

impl fmt::Debug for SqlApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlApiKeyStore")
            .field("db", &self.db)
            .finish()
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    tracing::warn!(target: "portcullis::sql", error = %e, "api key store failed");
    StoreError::backend(e)
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_error(what: &'static str) -> sqlx::Error {
    sqlx::Error::Decode(format!("portcullis_api_keys.{what} is malformed").into())
}

fn record_from<R>(row: &R) -> Result<ApiKeyRecord, sqlx::Error>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let time = |name: &str| -> Result<Option<SystemTime>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(from_micros))
    };
    let list = |name: &'static str| -> Result<Vec<String>, sqlx::Error> {
        serde_json::from_str(&row.try_get::<String, _>(name)?).map_err(|_| decode_error(name))
    };
    let digest: String = row.try_get("digest")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        scopes: list("scopes")?,
        roles: list("roles")?,
        created_at: from_micros(row.try_get("created_at")?),
        expires_at: time("expires_at")?,
        revoked_at: time("revoked_at")?,
        last_used_at: time("last_used_at")?,
        rotated_to: row.try_get("rotated_to")?,
        session_bound: row.try_get::<i64, _>("session_bound")? != 0,
        digest: KeyDigest::from_hex(&digest).map_err(|_| decode_error("digest"))?,
    })
}

macro_rules! bind_record {
    ($query:expr, $r:expr) => {
        $query
            .bind(&$r.id)
            .bind(&$r.owner)
            .bind(&$r.name)
            .bind(json_list(&$r.scopes))
            .bind(json_list(&$r.roles))
            .bind(micros($r.created_at))
            .bind($r.expires_at.map(micros))
            .bind($r.revoked_at.map(micros))
            .bind($r.last_used_at.map(micros))
            .bind($r.rotated_to.as_deref())
            .bind(i64::from($r.session_bound))
            .bind($r.digest.to_hex())
    };
}

/// How a rotation ended inside its transaction.
enum Rotated {
    Done,
    Refused(StoreErrorKind),
}

impl ApiKeyStore for SqlApiKeyStore {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let inserted: Result<u64, sqlx::Error> = on_pool!(&self.db, |pool, dialect| {
                bind_record!(sqlx::query(INSERT), record)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            });
            match inserted.map_err(backend)? {
                1 => Ok(()),
                _ => Err(StoreError::new(StoreErrorKind::Conflict)),
            }
        })
    }

    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        let db = self.db.clone();
        let id = id.to_owned();
        MaybeReady::pending(async move {
            let found: Result<Option<ApiKeyRecord>, sqlx::Error> =
                on_pool!(&db, |pool, dialect| async {
                    let row = sqlx::query(SELECT_BY_ID)
                        .bind(&id)
                        .fetch_optional(pool)
                        .await?;
                    row.as_ref().map(record_from).transpose()
                }
                .await);
            found.map(|record| record.map(Arc::new)).map_err(backend)
        })
    }

    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let found: Result<Vec<ApiKeyRecord>, sqlx::Error> =
                on_pool!(&self.db, |pool, dialect| async {
                    let rows = sqlx::query(SELECT_BY_OWNER)
                        .bind(owner)
                        .fetch_all(pool)
                        .await?;
                    rows.iter().map(record_from).collect()
                }
                .await);
            found.map_err(backend)
        })
    }

    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let result: Result<Option<bool>, sqlx::Error> =
                on_pool!(&self.db, |pool, dialect| async {
                    let changed = sqlx::query(
                        "UPDATE portcullis_api_keys SET revoked_at = $2 \
                         WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .bind(micros(at))
                    .execute(pool)
                    .await?
                    .rows_affected();
                    if changed == 1 {
                        return Ok(Some(true));
                    }
                    // Not changed: already revoked (revocation is final) or unknown.
                    let exists = sqlx::query("SELECT 1 FROM portcullis_api_keys WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                        .is_some();
                    Ok(exists.then_some(false))
                }
                .await);
            match result.map_err(backend)? {
                Some(newly) => Ok(newly),
                None => Err(StoreError::new(StoreErrorKind::NotFound)),
            }
        })
    }

    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (old_id, replacement) = (rotation.old_id, &rotation.replacement);
            let now = micros(rotation.now);
            let grace = micros(rotation.old_expires_at);
            let result: Result<Rotated, sqlx::Error> = on_pool!(&self.db, |pool, dialect| async {
                let mut tx = pool.begin_with(dialect.begin()).await?;
                let inserted = bind_record!(sqlx::query(INSERT), replacement)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let refusal = if inserted != 1 {
                    Some(StoreErrorKind::Conflict)
                } else {
                    let old = sqlx::query(dialect.pick(SELECT_OLD_PG, SELECT_OLD_LITE))
                        .bind(old_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    match old {
                        None => Some(StoreErrorKind::NotFound),
                        Some(old) => {
                            let revoked: Option<i64> = old.try_get("revoked_at")?;
                            let expires: Option<i64> = old.try_get("expires_at")?;
                            let rotated: Option<String> = old.try_get("rotated_to")?;
                            if revoked.is_some() || expires.is_some_and(|e| now >= e) {
                                Some(StoreErrorKind::Inactive)
                            } else if rotated.is_some() {
                                Some(StoreErrorKind::Conflict)
                            } else {
                                let expires = expires.map_or(grace, |e| e.min(grace));
                                sqlx::query(
                                    "UPDATE portcullis_api_keys \
                                         SET rotated_to = $2, expires_at = $3 WHERE id = $1",
                                )
                                .bind(old_id)
                                .bind(&replacement.id)
                                .bind(expires)
                                .execute(&mut *tx)
                                .await?;
                                None
                            }
                        }
                    }
                };
                match refusal {
                    None => {
                        tx.commit().await?;
                        Ok(Rotated::Done)
                    }
                    Some(kind) => {
                        tx.rollback().await?;
                        Ok(Rotated::Refused(kind))
                    }
                }
            }
            .await);
            match result.map_err(backend)? {
                Rotated::Done => Ok(()),
                Rotated::Refused(kind) => Err(StoreError::new(kind)),
            }
        })
    }

    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        let db = self.db.clone();
        let id = id.to_owned();
        MaybeReady::pending(async move {
            let result: Result<(), sqlx::Error> = on_pool!(&db, |pool, dialect| {
                sqlx::query(
                    "UPDATE portcullis_api_keys SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(&id)
                .bind(micros(at))
                .execute(pool)
                .await
                .map(drop)
            });
            result.map_err(backend)
        })
    }
}

const SELECT_BY_ID: &str = "SELECT id, owner, name, scopes, roles, created_at, expires_at, \
     revoked_at, last_used_at, rotated_to, session_bound, digest FROM portcullis_api_keys \
     WHERE id = $1";

const SELECT_BY_OWNER: &str = "SELECT id, owner, name, scopes, roles, created_at, expires_at, \
     revoked_at, last_used_at, rotated_to, session_bound, digest FROM portcullis_api_keys \
     WHERE owner = $1 ORDER BY created_at, id";

#[cfg(test)]
mod tests {
    const COLUMNS: &str = "id, owner, name, scopes, roles, created_at, expires_at, revoked_at, \
                           last_used_at, rotated_to, session_bound, digest";

    #[test]
    fn selects_name_every_column() {
        for sql in [super::SELECT_BY_ID, super::SELECT_BY_OWNER, super::INSERT] {
            for column in COLUMNS.split(", ") {
                assert!(sql.contains(column.trim()), "{column} missing from {sql}");
            }
        }
    }
}
