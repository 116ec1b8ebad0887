//! SQL backends for Portcullis on [`sqlx`]: refresh tokens and API keys that survive
//! restarts and are shared by every instance, in PostgreSQL or SQLite.
//!
//! - [`SqlDatabase`]: a `PgPool` or a `SqlitePool`, and [`migrate`](SqlDatabase::migrate),
//!   which creates or upgrades the tables (no build-time database, no macros);
//! - [`SqlRefreshStore`]: a [`RefreshStore`](portcullis_tokens::RefreshStore) whose
//!   rotation is one transaction (row locks on PostgreSQL, an immediate transaction on
//!   SQLite), so concurrent refreshes with one token give exactly one success;
//! - [`SqlApiKeyStore`]: an [`ApiKeyStore`](portcullis_apikey::ApiKeyStore).
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
//! Refresh tokens and API keys move from memory to PostgreSQL with two lines:
//!
//! ```no_run
//! # use portcullis_apikey::{ApiKeys, KeyFormat, MemoryStore};
//! # use portcullis_sql::{SqlApiKeyStore, SqlDatabase, SqlRefreshStore};
//! # use portcullis_tokens::{MemoryRefreshStore, RefreshTokens};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let format = KeyFormat::new("pk_live_")?;
//! // One instance, state in memory:
//! let refresh = RefreshTokens::new(MemoryRefreshStore::new());
//! let keys = ApiKeys::new(MemoryStore::new(), format.clone());
//! # let _ = (refresh, keys);
//!
//! // Several instances, state in PostgreSQL (or `SqlDatabase::sqlite(pool)`):
//! let db = SqlDatabase::postgres(sqlx::PgPool::connect("postgres://app@db/app").await?);
//! db.migrate().await?;
//! let refresh = RefreshTokens::new(SqlRefreshStore::new(db.clone()));
//! let keys = ApiKeys::new(SqlApiKeyStore::new(db), format);
//! # let _ = (refresh, keys);
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
mod refresh;

pub use crate::{apikey::SqlApiKeyStore, db::SqlDatabase, refresh::SqlRefreshStore};
pub use sqlx;
