//! The rotation transaction of [`SqlRefreshStore`](super::SqlRefreshStore).

use portcullis_core::internal::{from_hex, from_unix_micros, hex, unix_micros};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RotateOutcome, Rotation,
    SealedToken, TokenHash,
};
use sqlx::Row;

use super::store_error;
use crate::{SqlDatabase, db::on_pool};

const SELECT_TOKEN_PG: &str = "SELECT family, expires_at, used, used_at, successor, \
                               sealed_successor FROM portcullis_refresh_tokens \
                               WHERE hash = $1 FOR UPDATE";
const SELECT_TOKEN_LITE: &str = "SELECT family, expires_at, used, used_at, successor, \
                                 sealed_successor FROM portcullis_refresh_tokens \
                                 WHERE hash = $1";
const SELECT_FAMILY_PG: &str = "SELECT subject, client_id, expires_at, revoked \
                                FROM portcullis_refresh_families WHERE family = $1 FOR UPDATE";
const SELECT_FAMILY_LITE: &str = "SELECT subject, client_id, expires_at, revoked \
                                  FROM portcullis_refresh_families WHERE family = $1";
const SELECT_SUCCESSOR: &str = "SELECT issued_at, expires_at FROM portcullis_refresh_tokens \
                                WHERE hash = $1 AND family = $2";
const MARK_USED: &str = "UPDATE portcullis_refresh_tokens \
                         SET used = 1, used_at = $2, successor = $3, sealed_successor = $4 \
                         WHERE hash = $1";
const INSERT_SUCCESSOR: &str = "INSERT INTO portcullis_refresh_tokens \
                                (hash, family, issued_at, expires_at, used) \
                                VALUES ($1, $2, $3, $4, 0) ON CONFLICT (hash) DO NOTHING";

/// What a rotation found, decided inside the transaction.
enum Step {
    Done(RotateOutcome),
    Duplicate,
}

/// The presented token's row.
struct Presented {
    family: String,
    expires_at: i64,
    used: bool,
    used_at: Option<i64>,
    successor: Option<String>,
    sealed_successor: Option<String>,
}

/// The family's row.
struct Family {
    subject: String,
    client_id: String,
    expires_at: i64,
    revoked: bool,
}

fn malformed(column: &'static str) -> sqlx::Error {
    sqlx::Error::Decode(format!("portcullis_refresh_tokens.{column} is malformed").into())
}

/// Rotates in one transaction, following the [`RefreshStore`] contract step by step.
///
/// [`RefreshStore`]: portcullis_tokens::RefreshStore
pub(super) async fn rotate(
    db: &SqlDatabase,
    rotation: &Rotation<'_>,
) -> Result<RotateOutcome, TokenError> {
    let presented_hash = hex(&rotation.presented.0);
    let result: Result<Step, sqlx::Error> = on_pool!(db, |pool, dialect| {
        async {
            let mut tx = pool.begin_with(dialect.begin()).await?;
            let Some(row) = sqlx::query(dialect.pick(SELECT_TOKEN_PG, SELECT_TOKEN_LITE))
                .bind(&presented_hash)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(Step::Done(RotateOutcome::Unknown));
            };
            let presented = Presented {
                family: row.try_get("family")?,
                expires_at: row.try_get("expires_at")?,
                used: row.try_get::<i64, _>("used")? != 0,
                used_at: row.try_get("used_at")?,
                successor: row.try_get("successor")?,
                sealed_successor: row.try_get("sealed_successor")?,
            };
            let Some(row) = sqlx::query(dialect.pick(SELECT_FAMILY_PG, SELECT_FAMILY_LITE))
                .bind(&presented.family)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(Step::Done(RotateOutcome::Unknown));
            };
            let family = Family {
                subject: row.try_get("subject")?,
                client_id: row.try_get("client_id")?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get::<i64, _>("revoked")? != 0,
            };
            let now = unix_micros(rotation.now);
            let step = if family.revoked {
                Step::Done(RotateOutcome::FamilyRevoked)
            } else if presented.used {
                if let Some((successor, sealed)) = repeat_of(&presented, &family, rotation)?
                    && let Some(row) = sqlx::query(SELECT_SUCCESSOR)
                        .bind(hex(&successor.0))
                        .bind(&presented.family)
                        .fetch_optional(&mut *tx)
                        .await?
                {
                    // Nothing changes: the successor comes back as it is stored now.
                    Step::Done(RotateOutcome::Repeated {
                        successor: RefreshRecord {
                            hash: successor,
                            family: presented.family,
                            subject: family.subject,
                            client_id: family.client_id,
                            issued_at: from_unix_micros(row.try_get("issued_at")?),
                            expires_at: from_unix_micros(row.try_get("expires_at")?),
                            family_expires_at: from_unix_micros(family.expires_at),
                        },
                        sealed,
                    })
                } else {
                    sqlx::query(
                        "UPDATE portcullis_refresh_families SET revoked = 1 WHERE family = $1",
                    )
                    .bind(&presented.family)
                    .execute(&mut *tx)
                    .await?;
                    Step::Done(RotateOutcome::Reused {
                        subject: family.subject,
                        family: presented.family,
                    })
                }
            } else if family.client_id != rotation.client_id {
                Step::Done(RotateOutcome::ClientMismatch)
            } else if now >= presented.expires_at || now >= family.expires_at {
                Step::Done(RotateOutcome::Expired)
            } else {
                let successor = hex(&rotation.successor.0);
                let idle = i64::try_from(rotation.idle_timeout.as_micros()).unwrap_or(i64::MAX);
                let expires = now.saturating_add(idle).min(family.expires_at);
                sqlx::query(MARK_USED)
                    .bind(&presented_hash)
                    .bind(now)
                    .bind(&successor)
                    .bind(hex(&rotation.sealed_successor.0))
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(INSERT_SUCCESSOR)
                    .bind(&successor)
                    .bind(&presented.family)
                    .bind(now)
                    .bind(expires)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    // Exact times for the caller; the row keeps microseconds.
                    let family_expires_at = from_unix_micros(family.expires_at);
                    Step::Done(RotateOutcome::Rotated(RefreshRecord {
                        hash: *rotation.successor,
                        family: presented.family,
                        subject: family.subject,
                        client_id: family.client_id,
                        issued_at: rotation.now,
                        expires_at: (rotation.now + rotation.idle_timeout).min(family_expires_at),
                        family_expires_at,
                    }))
                } else {
                    Step::Duplicate
                }
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

/// The successor (hash and sealed token) a used token hands back when it is presented
/// again within the reuse interval by its own client; `None` when the repeat is reuse
/// (too late, another client, or a token used before the successor was kept).
fn repeat_of(
    presented: &Presented,
    family: &Family,
    rotation: &Rotation<'_>,
) -> Result<Option<(TokenHash, SealedToken)>, sqlx::Error> {
    let (Some(used_at), Some(successor), Some(sealed)) = (
        presented.used_at,
        presented.successor.as_deref(),
        presented.sealed_successor.as_deref(),
    ) else {
        return Ok(None);
    };
    // A zero interval is off, even for a concurrent rotation whose `now` was read
    // before the winner's (then `now < used_at` would hold).
    let within = !rotation.reuse_interval.is_zero()
        && from_unix_micros(used_at)
            .checked_add(rotation.reuse_interval)
            .is_none_or(|end| rotation.now < end);
    if !within || family.client_id != rotation.client_id {
        return Ok(None);
    }
    let successor = from_hex::<32>(successor).ok_or_else(|| malformed("successor"))?;
    let sealed = from_hex::<32>(sealed).ok_or_else(|| malformed("sealed_successor"))?;
    Ok(Some((TokenHash(successor), SealedToken(sealed))))
}
