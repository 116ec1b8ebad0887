//! Persisted access-token revocations: denylisted tokens and per-subject cut-offs.

use std::time::SystemTime;

use portcullis_sql::sqlx;

use super::{Db, from_micros, micros};

/// One persisted revocation.
#[derive(Debug)]
pub(crate) enum StoredRevocation {
    /// One access token, until `keep_until` (its `exp`).
    Token {
        issuer: Option<String>,
        token_id: String,
        subject: String,
        keep_until: SystemTime,
    },
    /// Every token of `subject` issued at or before `cutoff`.
    Subject { subject: String, cutoff: SystemTime },
}

/// The `quickstart_revocations` table.
#[derive(Clone, Debug)]
pub(crate) struct RevocationTable {
    db: Db,
}

impl RevocationTable {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a denylisted token.
    pub(crate) async fn insert_token(
        &self,
        issuer: Option<&str>,
        token_id: &str,
        subject: &str,
        keep_until: SystemTime,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_revocations (id, subject, issuer, token_id, cutoff, keep_until) \
                 VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(format!("jti:{token_id}"))
            .bind(subject)
            .bind(issuer)
            .bind(token_id)
            .bind(micros(keep_until))
            .execute(pool)
            .await
            .map(drop)
        })
    }

    /// Records (or moves forward) a subject's cut-off.
    pub(crate) async fn upsert_cutoff(
        &self,
        subject: &str,
        cutoff: SystemTime,
        keep_until: SystemTime,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_revocations (id, subject, issuer, token_id, cutoff, keep_until) \
                 VALUES ($1, $2, NULL, NULL, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET \
                   cutoff = CASE WHEN excluded.cutoff > quickstart_revocations.cutoff \
                                 THEN excluded.cutoff ELSE quickstart_revocations.cutoff END, \
                   keep_until = CASE WHEN excluded.keep_until > quickstart_revocations.keep_until \
                                 THEN excluded.keep_until ELSE quickstart_revocations.keep_until END",
            )
            .bind(format!("sub:{subject}"))
            .bind(subject)
            .bind(micros(cutoff))
            .bind(micros(keep_until))
            .execute(pool)
            .await
            .map(drop)
        })
    }

    /// Drops entries past their keep-until time and returns the rest.
    pub(crate) async fn load_live(&self) -> Result<Vec<StoredRevocation>, sqlx::Error> {
        let now = micros(SystemTime::now());
        type RevocationRow = (String, Option<String>, Option<String>, Option<i64>, i64);
        let rows: Vec<RevocationRow> = on_db!(&self.db, |pool| async {
            sqlx::query("DELETE FROM quickstart_revocations WHERE keep_until <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query_as(
                "SELECT subject, issuer, token_id, cutoff, keep_until FROM quickstart_revocations",
            )
            .fetch_all(pool)
            .await
        }
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(subject, issuer, token_id, cutoff, keep_until)| {
                match (token_id, cutoff) {
                    (Some(token_id), _) => Some(StoredRevocation::Token {
                        issuer,
                        token_id,
                        subject,
                        keep_until: from_micros(keep_until),
                    }),
                    (None, Some(cutoff)) => Some(StoredRevocation::Subject {
                        subject,
                        cutoff: from_micros(cutoff),
                    }),
                    (None, None) => None,
                }
            })
            .collect())
    }
}
