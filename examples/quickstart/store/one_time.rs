//! Password-reset and e-mail-verification tokens: the `ResetStore` of
//! `portcullis-password` on the example's own table.

use std::time::SystemTime;

use portcullis_password::{ResetError, ResetRecord, ResetStore};
use portcullis_sql::sqlx;

use super::{Db, from_micros, micros};

/// Password-reset and e-mail-verification tokens in SQL (hashed; single use through
/// `DELETE … RETURNING`).
#[derive(Clone, Debug)]
pub(crate) struct SqlOneTimeTokens {
    db: Db,
}

impl SqlOneTimeTokens {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Drops expired tokens.
    pub(crate) async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM quickstart_one_time_tokens WHERE expires_at <= $1")
                .bind(micros(SystemTime::now()))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn store_error(e: sqlx::Error) -> ResetError {
    tracing::error!(target: "quickstart::store", error = %e, "one-time token store failed");
    ResetError::store("one-time token store failed")
}

impl ResetStore for SqlOneTimeTokens {
    async fn insert(&self, record: ResetRecord) -> Result<(), ResetError> {
        let result: Result<(), sqlx::Error> = on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_one_time_tokens (hash, subject, purpose, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hex(&record.hash))
            .bind(&record.subject)
            .bind(&record.purpose)
            .bind(micros(record.expires_at))
            .execute(pool)
            .await
            .map(drop)
        });
        result.map_err(store_error)
    }

    async fn take(&self, hash: &[u8; 32]) -> Result<Option<ResetRecord>, ResetError> {
        let row: Result<Option<(String, String, String, i64)>, sqlx::Error> =
            on_db!(&self.db, |pool| {
                sqlx::query_as(
                    "DELETE FROM quickstart_one_time_tokens WHERE hash = $1 \
                     RETURNING hash, subject, purpose, expires_at",
                )
                .bind(hex(hash))
                .fetch_optional(pool)
                .await
            });
        Ok(row
            .map_err(store_error)?
            .and_then(|(h, subject, purpose, exp)| {
                Some(ResetRecord {
                    hash: unhex32(&h)?,
                    subject,
                    purpose,
                    expires_at: from_micros(exp),
                })
            }))
    }

    async fn remove_subject(&self, subject: &str) -> Result<usize, ResetError> {
        let result: Result<u64, sqlx::Error> = on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM quickstart_one_time_tokens WHERE subject = $1")
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
