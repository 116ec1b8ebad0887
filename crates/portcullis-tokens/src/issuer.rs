//! [`TokenIssuer`]: signs RFC 9068 access tokens, rotates keys, publishes the JWK Set.

use std::{
    fmt,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use jsonwebtoken::{Header, encode};
use portcullis_core::{AuthEvent, Events, internal::unix_secs};
use portcullis_jwt::Key;
use serde::Serialize;
use serde_json::{Value, json};

pub use crate::grant::Grant;
use crate::{Clock, Error, ErrorKind, SigningKey, SystemClock, random};

/// The default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How long past a token's `exp` a retired key stays published, to cover verifiers'
/// clock leeway (they default to 60 s).
pub const RETIREMENT_GRACE: Duration = Duration::from_secs(120);

/// A signed access token and what the issuer knows about it.
///
/// `Debug` redacts the token.
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    jti: String,
    kid: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
    dpop_bound: bool,
}

impl AccessToken {
    /// The OAuth `token_type` to hand it out with: `DPoP` for a token bound to a DPoP
    /// key ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)), else
    /// `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.dpop_bound { "DPoP" } else { "Bearer" }
    }

    /// The compact JWT, for the `Authorization: Bearer` header. A secret.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// Takes the compact JWT.
    pub fn into_string(self) -> String {
        self.token
    }

    /// The token id (`jti`): 128 random bits, base64url.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The `kid` of the key that signed it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `iat`.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// `exp`.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
}

/// `cnf` (RFC 7800) with the DPoP key's thumbprint (RFC 9449 §6.1).
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

struct Retired {
    key: Arc<SigningKey>,
    until: SystemTime,
}

struct KeyRing {
    active: Arc<SigningKey>,
    retired: Vec<Retired>,
}

struct Inner {
    issuer: String,
    audience: String,
    lifetime: Duration,
    jwks_max_age: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
    ring: RwLock<KeyRing>,
}

/// Signs access tokens (RFC 9068 `at+jwt`) with one active key and publishes the
/// public keys, retired ones included until their tokens have expired.
///
/// Cheap to clone; clones share keys.
///
/// Each token carries `iss sub aud exp iat jti client_id`, `roles` (when any) and
/// `scope` (when any), and its header carries `typ: at+jwt`, `alg` and `kid`.
///
/// # Verifying
///
/// Other services verify through the JWK Set ([`jwks`](Self::jwks), served by
/// [`jwks_response`](Self::jwks_response)). A verifier in the same process takes the
/// keys directly: [`verification_keys`](Self::verification_keys) goes to
/// [`JwtAuthenticatorBuilder::keys`](portcullis_jwt::JwtAuthenticatorBuilder::keys)
/// (see the [crate example](crate)).
///
/// # Key rotation
///
/// [`rotate`](Self::rotate) makes a new key active at once; the previous one stays in
/// [`jwks`](Self::jwks) and [`verification_keys`](Self::verification_keys) until every
/// token it signed has expired (lifetime plus [`RETIREMENT_GRACE`]). Verifiers that
/// fetch the JWK Set refetch on an unknown `kid`, so new tokens verify as soon as they
/// appear; a verifier given the keys directly holds what it was given, so hand it the
/// new set after rotating
/// ([`JwtAuthenticator::set_keys`](portcullis_jwt::JwtAuthenticator::set_keys)).
///
/// ```
/// use portcullis_tokens::{Grant, SigningAlgorithm, SigningKey, TokenIssuer};
///
/// let issuer = TokenIssuer::builder(
///     "https://auth.example.com",
///     "https://api.example.com",
///     SigningKey::generate(SigningAlgorithm::EdDsa)?,
/// )
/// .build();
/// let token = issuer.issue(&Grant::new("alice", "web").scopes(["read"]))?;
/// assert_eq!(token.as_str().split('.').count(), 3);
/// let old_kid = token.kid().to_owned();
///
/// issuer.rotate(SigningKey::generate(SigningAlgorithm::EdDsa)?);
/// let kids: Vec<_> = issuer.verification_keys().iter()
///     .filter_map(|key| key.kid().map(str::to_owned)).collect();
/// assert_eq!(kids.len(), 2);
/// assert!(kids.contains(&old_kid));
/// # Ok::<(), portcullis_tokens::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenIssuer {
    inner: Arc<Inner>,
}

/// Builds a [`TokenIssuer`].
#[must_use]
pub struct TokenIssuerBuilder {
    issuer: String,
    audience: String,
    key: SigningKey,
    lifetime: Duration,
    jwks_max_age: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
}

impl TokenIssuer {
    /// Starts building an issuer that signs for `audience` as `issuer` with `key`.
    pub fn builder(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        key: SigningKey,
    ) -> TokenIssuerBuilder {
        TokenIssuerBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            key,
            lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            jwks_max_age: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
            events: Events::default(),
        }
    }

    /// Signs an access token for `grant`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Signing`] if the crypto library refuses to sign.
    pub fn issue(&self, grant: &Grant) -> Result<AccessToken, Error> {
        self.issue_at(grant, self.inner.clock.now())
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// Signs with `iat = now`, a time taken before a store decided to grant it.
    pub(crate) fn issue_at(&self, grant: &Grant, now: SystemTime) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        let key = self.active_key();
        // Before 1970 only with a broken clock: stamp 0 rather than a negative time.
        let iat = u64::try_from(unix_secs(now)).unwrap_or(0);
        let exp = iat + inner.lifetime.as_secs();
        let jti = random::b64::<16>();
        let claims = Claims {
            iss: &inner.issuer,
            sub: &grant.subject,
            aud: &inner.audience,
            exp,
            iat,
            jti: &jti,
            client_id: &grant.client_id,
            roles: &grant.roles,
            scope: grant.scopes.join(" "),
            cnf: grant.dpop_jkt.as_deref().map(|jkt| Confirmation { jkt }),
        };
        let mut header = Header::new(key.algorithm().to_jsonwebtoken());
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key.kid().to_owned());
        let token = encode(&header, &claims, key.encoding_key())
            .map_err(|e| Error::new(ErrorKind::Signing, "signing failed").with_source(e))?;
        portcullis_core::internal::metrics::token_issued("access");
        Ok(AccessToken {
            token,
            jti,
            kid: key.kid().to_owned(),
            issued_at: SystemTime::UNIX_EPOCH + Duration::from_secs(iat),
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(exp),
            dpop_bound: grant.dpop_jkt.is_some(),
        })
    }

    /// Makes `key` the active signing key. The previous active key keeps verifying
    /// (stays in [`jwks`](Self::jwks) and [`verification_keys`](Self::verification_keys))
    /// until the last token it signed has expired.
    pub fn rotate(&self, key: SigningKey) {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let count = {
            let mut ring = inner.ring.write().unwrap_or_else(|e| e.into_inner());
            let previous = std::mem::replace(&mut ring.active, Arc::new(key));
            ring.retired.push(Retired {
                key: previous,
                until: now + inner.lifetime + RETIREMENT_GRACE,
            });
            ring.retired.retain(|r| r.until > now);
            ring.retired.len() + 1
        };
        inner.events.emit(&AuthEvent::KeysRotated {
            source: &inner.issuer,
            keys: count,
        });
    }

    /// The keys that verify this issuer's live tokens, the active one first and each
    /// retired one until its last token has expired, pinned to their algorithm and
    /// named by their `kid`: for a verifier in the same process,
    /// `JwtAuthenticator::builder().keys(issuer.verification_keys())`.
    ///
    /// A snapshot: after [`rotate`](Self::rotate), hand the verifier the new set.
    ///
    /// # Security
    ///
    /// HMAC keys are included (unlike in [`jwks`](Self::jwks)), with their shared
    /// secret: keep them in the process.
    pub fn verification_keys(&self) -> Vec<Key> {
        self.live_keys()
            .iter()
            .map(|key| key.verification_key())
            .collect()
    }

    /// The active key and every retired key whose tokens may still be live.
    fn live_keys(&self) -> Vec<Arc<SigningKey>> {
        let now = self.inner.clock.now();
        let ring = self.inner.ring.read().unwrap_or_else(|e| e.into_inner());
        std::iter::once(ring.active.clone())
            .chain(
                ring.retired
                    .iter()
                    .filter(|r| r.until > now)
                    .map(|r| r.key.clone()),
            )
            .collect()
    }

    /// The public JWK Set (RFC 7517 §5): `{"keys": [...]}`, each key with `use: sig`,
    /// `alg` and `kid`. HMAC keys are never included.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .live_keys()
            .iter()
            .filter_map(|k| k.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// The `kid` of the active key.
    pub fn active_kid(&self) -> String {
        self.active_key().kid().to_owned()
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The `aud` value.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The access-token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The JWK Set response: `200`, `content-type: application/jwk-set+json` and
    /// `cache-control: public, max-age=N` (see
    /// [`TokenIssuerBuilder::jwks_max_age`]).
    pub fn jwks_response(&self) -> http::Response<String> {
        let body = self.jwks().to_string();
        let mut response = http::Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/jwk-set+json"),
        );
        let cache = format!("public, max-age={}", self.inner.jwks_max_age.as_secs());
        if let Ok(value) = http::HeaderValue::from_str(&cache) {
            headers.insert(http::header::CACHE_CONTROL, value);
        }
        response
    }

    /// An axum handler serving [`jwks_response`](Self::jwks_response):
    /// `.route("/.well-known/jwks.json", get(issuer.jwks_handler()))`.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn jwks_handler(
        &self,
    ) -> impl Fn() -> std::future::Ready<axum_core::response::Response> + Clone + Send + Sync + 'static
    {
        let issuer = self.clone();
        move || {
            let (parts, body) = issuer.jwks_response().into_parts();
            std::future::ready(axum_core::response::Response::from_parts(
                parts,
                axum_core::body::Body::from(body),
            ))
        }
    }

    fn active_key(&self) -> Arc<SigningKey> {
        self.inner
            .ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .active
            .clone()
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("lifetime", &self.inner.lifetime)
            .field("active_kid", &self.active_kid())
            .finish_non_exhaustive()
    }
}

impl TokenIssuerBuilder {
    /// The access-token lifetime (default 15 minutes).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for lifetimes under one second or over one day.
    pub fn lifetime(mut self, lifetime: Duration) -> Result<Self, Error> {
        if lifetime < Duration::from_secs(1) || lifetime > Duration::from_secs(86_400) {
            return Err(Error::new(
                ErrorKind::Config,
                "access-token lifetime must be between 1 s and 1 day",
            ));
        }
        self.lifetime = lifetime;
        Ok(self)
    }

    /// The `max-age` of the JWK Set response (default 300 s).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// The clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where [`AuthEvent::KeysRotated`] goes (default: `tracing`).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Builds the issuer.
    pub fn build(self) -> TokenIssuer {
        TokenIssuer {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audience: self.audience,
                lifetime: self.lifetime,
                jwks_max_age: self.jwks_max_age,
                clock: self.clock,
                events: self.events,
                ring: RwLock::new(KeyRing {
                    active: Arc::new(self.key),
                    retired: Vec::new(),
                }),
            }),
        }
    }
}

impl fmt::Debug for TokenIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuerBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("key", &self.key)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}
