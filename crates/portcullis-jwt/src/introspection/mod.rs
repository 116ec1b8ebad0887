//! Opaque access tokens by [RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)
//! introspection (feature `introspection`).
//!
//! An [`IntrospectionAuthenticator`] asks the authorization server's introspection
//! endpoint about each bearer token it has not seen, and caches the answer. Paired
//! with a [`JwtAuthenticator`](crate::JwtAuthenticator) in a tuple, a JWT-shaped
//! token (with dots) goes to the JWT verifier and any other bearer token to
//! introspection:
//!
//! ```no_run
//! use portcullis_core::AuthLayer;
//! use portcullis_jwt::{JwtAuthenticator, introspection::IntrospectionAuthenticator, jwks::RemoteKeys};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = JwtAuthenticator::builder()
//!     .remote_keys(RemoteKeys::discover("https://id.example.com").await?)
//!     .audience("my-api")
//!     .build()?;
//! let opaque = IntrospectionAuthenticator::builder("https://id.example.com/token/introspection")
//!     .client_secret_basic("my-api", "its-secret")
//!     .issuer("https://id.example.com")
//!     .audience("my-api")
//!     .build()?;
//! let layer = AuthLayer::new((jwt, opaque));
//! # let _ = layer; Ok(())
//! # }
//! ```
//!
//! # What is checked
//!
//! `active` must be `true`; `exp` and `nbf` (with the leeway), `iss` (one of the
//! configured issuers; the first is assumed when the answer names none), `aud`
//! (containing a configured audience), `token_type` (absent, `Bearer` or
//! `access_token`) and the shapes of `scope`, `sub`, `client_id`, `jti` and the
//! mapped role and scope claims. `scope` becomes the principal's scopes. An answer
//! without `sub` (a client-credentials token) takes `client_id` as the subject and
//! a [`PrincipalKind::Service`](portcullis_core::PrincipalKind::Service) principal.
//! The principal carries the answer as typed claims [`Introspected`].
//!
//! # Cache
//!
//! Answers are cached by a keyed hash of the token (SipHash-2-4, 128 bits, under a
//! random key per authenticator), never by the token: active ones until `min(exp, now + max TTL)` (2 min by
//! default), refusals for 10 s; at most 10,000 entries by default. Any number of
//! concurrent requests carrying one unseen token cause one endpoint call; they all
//! wait for its answer. A configured [`Revocation`] is
//! consulted on every answer, cached or not.
//!
//! # Outages
//!
//! The same as for JWKS (see [`crate::jwks`]): connect timeout 5 s and total timeout
//! 5 s, answers over 64 KiB refused, no redirect to another origin, `https` except to
//! loopback. When the endpoint cannot answer, a token with nothing cached gets
//! `503 Service Unavailable` (reason `introspection_unavailable`, the
//! [`IntrospectionError`] as its source); cached tokens keep working.

mod builder;
mod cache;
mod error;
mod response;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use base64::Engine as _;
use http::request::Parts;
use portcullis_core::{
    AuthError, AuthResult, Authenticator, MaybeReady, Principal, Revocation, RevocationQuery,
    credentials::TokenSources, internal::unix_secs,
};
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

pub use self::{
    builder::{
        DEFAULT_INTROSPECTION_MAX_RESPONSE_SIZE, DEFAULT_INTROSPECTION_MAX_TTL,
        DEFAULT_INTROSPECTION_TIMEOUT, DEFAULT_NEGATIVE_TTL, IntrospectionAuthenticatorBuilder,
    },
    error::{IntrospectionError, IntrospectionErrorKind},
};
use self::{
    cache::{Cache, Miss, TokenKey},
    response::{Outcome, Rules},
};
use crate::{clock::Clock, json, jwks::http::Fetcher};

/// The introspection answer a principal was made from (its typed claims:
/// `principal.claims::<Introspected>()`). Tells an introspected principal from one
/// made from a JWT.
#[derive(Debug, Clone)]
pub struct Introspected(pub Arc<Map<String, Value>>);

/// How the resource server authenticates to the introspection endpoint
/// ([RFC 7662 §2.1](https://www.rfc-editor.org/rfc/rfc7662#section-2.1), with the
/// client authentication methods of RFC 6749 §2.3.1).
#[derive(Clone)]
enum ClientAuth {
    /// `Authorization: Basic` (the header value, built once).
    Basic(String),
    /// `client_id` and `client_secret` in the form.
    Post { id: String, secret: String },
}

impl ClientAuth {
    fn basic(id: &str, secret: &str) -> Self {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(id), enc(secret));
        Self::Basic(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

struct Inner {
    endpoint: Url,
    fetcher: Fetcher,
    auth: ClientAuth,
    rules: Rules,
    cache: Cache,
    clock: Arc<dyn Clock>,
    max_token_len: usize,
    max_ttl: i64,
    negative_ttl: i64,
    timeout: std::time::Duration,
    sources: TokenSources,
    revocation: Option<Arc<dyn Revocation>>,
    calls: Semaphore,
    called: AtomicU64,
}

/// Verifies opaque bearer tokens with an RFC 7662 introspection endpoint. Built with
/// [`IntrospectionAuthenticator::builder`]; cheap to clone (shared state and cache).
/// See the [module docs](self).
#[derive(Clone)]
pub struct IntrospectionAuthenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("IntrospectionAuthenticator")
            .field("endpoint", &i.endpoint.as_str())
            .field("client", &"<redacted>")
            .field("issuers", &i.rules.issuers)
            .field("audiences", &i.rules.audiences)
            .field("cached", &i.cache.len())
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl IntrospectionAuthenticator {
    /// Starts a configuration for the introspection endpoint at `endpoint`.
    pub fn builder(endpoint: impl Into<String>) -> IntrospectionAuthenticatorBuilder {
        IntrospectionAuthenticatorBuilder::new(endpoint.into())
    }

    /// How many calls the endpoint has received from this authenticator.
    pub fn calls(&self) -> u64 {
        self.inner.called.load(Ordering::Relaxed)
    }

    /// How many answers the cache holds.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }

    /// Checks one token (already taken out of the request): from the cache, or by
    /// one call to the endpoint shared with every request carrying the same token.
    pub fn introspect(&self, token: &str) -> MaybeReady<AuthResult> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_len {
            return MaybeReady::Ready(Err(AuthError::invalid_token("token_too_large")
                .with_description("the token is too large")));
        }
        let key = inner.cache.key_of(token);
        let now = unix_secs(inner.clock.now());
        let cached = inner.cache.get(&key, now);
        portcullis_core::internal::metrics::introspection_cache_lookup(cached.is_some());
        if let Some(outcome) = cached {
            return self.decide(Ok(outcome));
        }
        let rx = match inner.cache.miss(key) {
            Miss::Wait(rx) => rx,
            Miss::Call(tx) => {
                let rx = tx.subscribe();
                let call = call(Arc::clone(&self.inner), token.to_owned(), key, tx);
                match tokio::runtime::Handle::try_current() {
                    // Spawned: a caller that goes away does not strand the others.
                    Ok(runtime) => drop(runtime.spawn(call)),
                    Err(_) => {
                        let this = self.clone();
                        return MaybeReady::pending(async move {
                            let answer = call.await;
                            this.decide(answer).await
                        });
                    }
                }
                rx
            }
        };
        let this = self.clone();
        MaybeReady::pending(async move {
            let answer = cache::wait(rx).await.unwrap_or_else(|| {
                Err(IntrospectionError::new(
                    IntrospectionErrorKind::Unreachable,
                    "the call was abandoned",
                ))
            });
            this.decide(answer).await
        })
    }

    fn decide(&self, answer: cache::Answer) -> MaybeReady<AuthResult> {
        match answer {
            Ok(Outcome::Active { principal, .. }) => self.check_revocation(principal),
            Ok(Outcome::Refused(reason)) => MaybeReady::Ready(Err(Outcome::error(reason))),
            Err(e) => MaybeReady::Ready(Err(AuthError::unavailable("introspection_unavailable")
                .with_description("the token cannot be checked right now")
                .with_source(e))),
        }
    }

    fn check_revocation(&self, principal: Principal) -> MaybeReady<AuthResult> {
        let Some(revocation) = &self.inner.revocation else {
            return MaybeReady::Ready(Ok(Some(principal)));
        };
        let query = RevocationQuery {
            issuer: principal.issuer(),
            subject: principal.subject(),
            token_id: principal.token_id(),
            issued_at: principal.issued_at(),
        };
        match revocation.check(&query) {
            MaybeReady::Ready(result) => MaybeReady::Ready(result.map(|()| Some(principal))),
            MaybeReady::Pending(check) => {
                MaybeReady::pending(async move { check.await.map(|()| Some(principal)) })
            }
        }
    }
}

/// One endpoint call: its answer goes to the cache and to every waiter.
async fn call(
    inner: Arc<Inner>,
    token: String,
    key: TokenKey,
    tx: tokio::sync::watch::Sender<Option<cache::Answer>>,
) -> cache::Answer {
    let fetched = match tokio::time::timeout(inner.timeout, inner.calls.acquire()).await {
        Ok(Ok(_permit)) => {
            inner.called.fetch_add(1, Ordering::Relaxed);
            let mut form = vec![
                ("token", token.as_str()),
                ("token_type_hint", "access_token"),
            ];
            let basic = match &inner.auth {
                ClientAuth::Basic(header) => Some(header.as_str()),
                ClientAuth::Post { id, secret } => {
                    form.push(("client_id", id));
                    form.push(("client_secret", secret));
                    None
                }
            };
            inner
                .fetcher
                .post_form(&inner.endpoint, &form, basic)
                .await
                .map_err(IntrospectionError::from)
        }
        _ => Err(IntrospectionError::new(
            IntrospectionErrorKind::Timeout,
            "too many introspection calls in flight",
        )),
    };
    drop(token);
    let now = unix_secs(inner.clock.now());
    let (answer, until) = match fetched.and_then(|body| {
        json::parse_object(&body).map_err(|_| {
            IntrospectionError::new(IntrospectionErrorKind::Malformed, "malformed answer")
        })
    }) {
        Err(e) => {
            #[cfg(feature = "jwks")]
            tracing::warn!(target: "portcullis::introspection", error = %e, "introspection failed");
            (Err(e), None)
        }
        Ok(claims) => {
            let outcome = response::check(&inner.rules, claims, now);
            let until = match &outcome {
                Outcome::Active { exp, .. } => exp
                    .unwrap_or(i64::MAX)
                    .min(now.saturating_add(inner.max_ttl)),
                Outcome::Refused(_) => now.saturating_add(inner.negative_ttl),
            };
            (Ok(outcome), Some(until))
        }
    };
    inner.cache.finish(key, &tx, answer.clone(), until, now);
    answer
}

impl Authenticator for IntrospectionAuthenticator {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        match self.inner.sources.find(parts) {
            Ok(Some(token)) => self.introspect(token),
            Ok(None) => MaybeReady::Ready(Ok(None)),
            Err(e) => MaybeReady::Ready(Err(e)),
        }
    }
}
