//! SQL backends for Portcullis on [`sqlx`]: the state of accounts' sessions that must
//! survive restarts and be shared by every instance, in PostgreSQL or SQLite.
//!
//! - [`SqlDatabase`]: a `PgPool` or a `SqlitePool`; [`migrate`](SqlDatabase::migrate)
//!   creates or upgrades the tables (no build-time database, no macros), and
//!   [`spawn_purger`](SqlDatabase::spawn_purger) deletes expired rows in bounded
//!   batches;
//! - [`SqlRefreshStore`]: a [`RefreshStore`](portcullis_tokens::RefreshStore) with
//!   session stamps. Rotation is one transaction (row locks on PostgreSQL, an
//!   immediate transaction on SQLite), so concurrent refreshes with one token give
//!   one rotation; a login opens a family only if no one ended the subject's sessions
//!   since it began;
//! - [`SqlApiKeyStore`]: an [`ApiKeyStore`](portcullis_apikey::ApiKeyStore);
//! - [`SqlResetStore`]: a [`ResetStore`](portcullis_password::ResetStore) for
//!   single-use password-reset and e-mail verification tokens, hashed at rest;
//! - [`SqlRevocation`]: access-token revocations persisted in the database and checked
//!   in memory (a [`Revocation`](portcullis_core::Revocation) for the JWT verifier and
//!   a [`RevocationStore`](portcullis_tokens::RevocationStore) for the token service);
//!   [`fresh`](SqlRevocation::fresh) gives the rare check that must see every
//!   instance's latest revocations.
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_apikey::{ApiKeys, KeyFormat, NewApiKey};
//! use portcullis_core::{AuthLayer, Principal};
//! use portcullis_sql::{SqlApiKeyStore, SqlDatabase};
//! use sqlx::sqlite::SqlitePoolOptions;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production: a file (or PostgreSQL), so keys survive restarts.
//! let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
//! let db = SqlDatabase::sqlite(pool);
//! db.migrate().await?;
//!
//! let keys = ApiKeys::new(SqlApiKeyStore::new(db), KeyFormat::new("pk_live_")?);
//! let issued = keys.issue(NewApiKey::owned_by("svc-billing").name("exporter")).await?;
//!
//! let app = Router::new()
//!     .route("/whoami", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(keys.authenticator()));
//! let request = Request::get("/whoami")
//!     .header("x-api-key", issued.key().to_header_value())
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(request).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! ```
//!
//! # Running several instances
//!
//! Each store replaces its in-memory counterpart with one line:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use portcullis_apikey::{ApiKeys, KeyFormat, MemoryStore};
//! # use portcullis_password::{MemoryResetStore, ResetTokens};
//! # use portcullis_sql::{SqlApiKeyStore, SqlDatabase, SqlRefreshStore, SqlResetStore, SqlRevocation};
//! # use portcullis_tokens::{MemoryRefreshStore, MemoryRevocation, RefreshTokens};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let format = KeyFormat::new("pk_live_")?;
//! // One instance, state in memory:
//! let refresh = RefreshTokens::new(MemoryRefreshStore::new());
//! let keys = ApiKeys::new(MemoryStore::new(), format.clone());
//! let resets = ResetTokens::new(MemoryResetStore::new());
//! let revocation = MemoryRevocation::new();
//! # let _ = (refresh, keys, resets, revocation);
//!
//! // Several instances, state in PostgreSQL (or `SqlDatabase::sqlite(pool)`):
//! let db = SqlDatabase::postgres(sqlx::PgPool::connect("postgres://app@db/app").await?);
//! db.migrate().await?;
//! let refresh = RefreshTokens::new(SqlRefreshStore::new(db.clone()));
//! let keys = ApiKeys::new(SqlApiKeyStore::new(db.clone()), format);
//! let resets = ResetTokens::new(SqlResetStore::new(db.clone()));
//! let revocation = SqlRevocation::load(db.clone()).await?;
//! // Other instances' revocations apply here within 5 s; expired rows go every 10 min.
//! let _sync = revocation.spawn_sync(Duration::from_secs(5));
//! let _purger = db.spawn_purger(Duration::from_secs(600));
//! # let _ = (refresh, keys, resets, revocation);
//! # Ok(()) }
//! ```
//!
//! # Choosing
//!
//! SQLite (a file) is the embedded durable default for one machine; PostgreSQL
//! carries several instances. Both use the same schema: times in microseconds since
//! the Unix epoch (`BIGINT`), digests and token hashes as hex text.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod apikey;
mod db;
mod one_time;
mod purge;
mod refresh;
mod revocation;

pub use crate::{
    apikey::SqlApiKeyStore,
    db::{DEFAULT_DEADLINE, SqlDatabase},
    one_time::SqlResetStore,
    purge::{PURGE_BATCH_SIZE, PURGE_MAX_BATCHES},
    refresh::SqlRefreshStore,
    revocation::{FreshRevocation, SqlRevocation, SqlRevocationBuilder},
};
pub use sqlx;
