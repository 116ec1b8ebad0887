//! Access-token revocation, behind one seam: in this process (mirrored to the SQL
//! database so a logout survives a restart), or in Redis, shared by every instance.

use std::{fmt, time::SystemTime};

use portcullis::{AuthError, MaybeReady, Revocation, RevocationQuery};
use portcullis_redis::RedisRevocation;
use portcullis_tokens::{
    DEFAULT_CUTOFF_RETENTION, Error as TokenError, MemoryRevocation, RevocationStore, RevokedToken,
};

use crate::store::{RevocationTable, StoredRevocation};

/// Where revocations live.
#[derive(Clone)]
pub(crate) enum Revocations {
    /// Checked in memory (no I/O on the request path); written to SQL first.
    Local {
        memory: MemoryRevocation,
        table: RevocationTable,
    },
    /// Checked and written in Redis (one round trip per check).
    Redis(RedisRevocation),
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Revocations {
    /// In memory, loaded from (and written through to) `table`.
    pub(crate) async fn local(table: RevocationTable) -> Result<Self, String> {
        let memory = MemoryRevocation::new();
        let live = table
            .load_live()
            .await
            .map_err(|e| format!("cannot load revocations: {e}"))?;
        for entry in live {
            let result = match &entry {
                StoredRevocation::Token {
                    issuer,
                    token_id,
                    subject,
                    keep_until,
                } => {
                    memory
                        .revoke_token(RevokedToken {
                            issuer: issuer.as_deref(),
                            token_id,
                            subject,
                            expires_at: *keep_until,
                        })
                        .await
                }
                StoredRevocation::Subject { subject, cutoff } => {
                    memory.revoke_subject(subject, *cutoff).await
                }
            };
            result.map_err(|e| format!("cannot load revocations: {e}"))?;
        }
        Ok(Self::Local { memory, table })
    }

    /// What this is, for the start-up banner.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Local { .. } => "in-process (persisted in the database)",
            Self::Redis(_) => "redis",
        }
    }
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> TokenError {
    TokenError::store(e)
}

impl Revocation for Revocations {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        match self {
            Self::Local { memory, .. } => memory.check(query),
            Self::Redis(redis) => redis.check(query),
        }
    }
}

impl RevocationStore for Revocations {
    async fn revoke_token(&self, token: RevokedToken<'_>) -> Result<(), TokenError> {
        match self {
            Self::Local { memory, table } => {
                table
                    .insert_token(
                        token.issuer,
                        token.token_id,
                        token.subject,
                        token.expires_at,
                    )
                    .await
                    .map_err(store_error)?;
                memory.revoke_token(token).await
            }
            Self::Redis(redis) => redis.revoke_token(token).await,
        }
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), TokenError> {
        match self {
            Self::Local { memory, table } => {
                let keep_until = cutoff + DEFAULT_CUTOFF_RETENTION;
                table
                    .upsert_cutoff(subject, cutoff, keep_until)
                    .await
                    .map_err(store_error)?;
                memory.revoke_subject(subject, cutoff).await
            }
            Self::Redis(redis) => redis.revoke_subject(subject, cutoff).await,
        }
    }
}
