//! Password handling for Portcullis.
//!
//! - [`PasswordHasher`]: argon2id (m=19456 KiB, t=2, p=1 by default), PHC strings, a
//!   random salt per hash, an optional pepper; hashing runs in `spawn_blocking` behind
//!   a semaphore at lowered thread priority, so a login flood cannot starve other
//!   routes; [`verify`](PasswordHasher::verify) reports when a rehash is due;
//!   [`verify_dummy`](PasswordHasher::verify_dummy) makes unknown accounts cost the
//!   same as known ones;
//! - [`PasswordPolicy`]: NIST SP 800-63B rules with typed errors naming the rule;
//! - [`ResetTokens`]: single-use, hashed-at-rest, short-lived tokens for password
//!   resets and e-mail verification.
//!
//! A login handler, unknown accounts included:
//!
//! ```
//! use std::collections::HashMap;
//! use axum::{body::Body, extract::State, http::{Request, StatusCode}, routing::post, Json, Router};
//! use portcullis_password::{HashParams, Password, PasswordHasher};
//! use tower::ServiceExt;
//!
//! #[derive(serde::Deserialize)]
//! struct Login { username: String, password: String }
//!
//! #[derive(Clone)]
//! struct App { hasher: PasswordHasher, users: HashMap<String, String> }
//!
//! async fn login(State(app): State<App>, Json(body): Json<Login>) -> StatusCode {
//!     let password = Password::new(body.password);
//!     let ok = match app.users.get(&body.username) {
//!         Some(hash) => app.hasher.verify(&password, hash).await.is_ok_and(|v| v.is_valid()),
//!         None => app.hasher.verify_dummy(&password).await.unwrap_or(false),
//!     };
//!     if ok { StatusCode::NO_CONTENT } else { StatusCode::UNAUTHORIZED }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fast = HashParams { memory_kib: 256, iterations: 1, parallelism: 1 };
//! let hasher = PasswordHasher::builder()
//! #   .params(fast)
//!     .build()?;
//! let hash = hasher.hash(&Password::new("correct horse battery staple")).await?;
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .with_state(App { hasher, users: HashMap::from([("alice".to_owned(), hash)]) });
//!
//! let attempt = |user: &str, password: &str| {
//!     Request::post("/login")
//!         .header("content-type", "application/json")
//!         .body(Body::from(format!(r#"{{"username":"{user}","password":"{password}"}}"#)))
//!         .unwrap()
//! };
//! let ok = app.clone().oneshot(attempt("alice", "correct horse battery staple")).await?;
//! assert_eq!(ok.status(), StatusCode::NO_CONTENT);
//! let wrong = app.clone().oneshot(attempt("alice", "guess")).await?;
//! assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
//! let unknown = app.oneshot(attempt("mallory", "guess")).await?;
//! assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod hasher;
mod memory;
mod policy;
mod queue;
mod reset;
mod secret;

pub use crate::{
    hasher::{
        HashError, HashErrorKind, HashParams, PasswordHasher, PasswordHasherBuilder, Verification,
    },
    policy::{
        COMMON_PASSWORDS, MAX_INPUT_BYTES, NIST_MIN_CHARS, NIST_MIN_MAX_CHARS, PasswordPolicy,
        PolicyConfigError, PolicyError, PolicyRule, RECOMMENDED_MIN_CHARS,
    },
    reset::{
        Clock, DEFAULT_RESET_LIFETIME, MemoryResetStore, ResetError, ResetErrorKind, ResetRecord,
        ResetStore, ResetToken, ResetTokens,
    },
    secret::Password,
};
