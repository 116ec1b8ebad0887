//! [`Principal`]: who made the request, whatever authenticated it.
//!
//! Every authenticator produces a `Principal` and every guard reads one. It is a
//! reference-counted value: cloning it (for a cache hit, for an extractor) costs one
//! atomic increment.

use std::{
    any::Any,
    fmt,
    ops::Deref,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

mod mapping;

pub use self::mapping::{ClaimMapping, ClaimPath, ClaimShape, ClaimShapeError};

/// What kind of party a [`Principal`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, typically from a user access token.
    User,
    /// A machine client (client-credentials tokens and the like).
    Service,
    /// The holder of an API key.
    ApiKey,
}

impl PrincipalKind {
    /// A short lowercase name (`user`, `service`, `api_key`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
            Self::ApiKey => "api_key",
        }
    }
}

/// Typed claims, put into request extensions beside the [`Principal`] by the JWT layer.
///
/// Cheap to clone (an `Arc`), and derefs to `C`. With the `axum` extractors it is read
/// as `Claims<MyClaims>` in a handler's arguments.
pub struct Claims<C>(pub Arc<C>);

impl<C> Claims<C> {
    /// Wraps claims.
    pub fn new(claims: C) -> Self {
        Self(Arc::new(claims))
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&self.0).finish()
    }
}

/// Typed claims stored inside a principal without naming their type.
trait ErasedClaims: Send + Sync {
    fn insert_into(&self, extensions: &mut http::Extensions);
    fn as_any(&self) -> &dyn Any;
}

impl<C: Send + Sync + 'static> ErasedClaims for Claims<C> {
    fn insert_into(&self, extensions: &mut http::Extensions) {
        extensions.insert(self.clone());
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Inner {
    /// The subject, then the issuer, client id and token id that are set, one after
    /// another in one allocation: a principal is built on every cold verification.
    /// Kept as built, with its spare capacity: shrinking would cost a reallocation.
    text: String,
    /// Where each of those ends in `text` (the subject starts at 0, each of the
    /// others where the one before it ends); `None` for a field not set.
    ends: Ends,
    kind: PrincipalKind,
    // Set by the builder, or read from `claims` through `mapping` on first use.
    roles: OnceLock<Box<[Box<str>]>>,
    scopes: OnceLock<Box<[Box<str>]>>,
    mapping: Option<Arc<ClaimMapping>>,
    issued_at: Option<SystemTime>,
    expires_at: Option<SystemTime>,
    claims: Option<Claims<Map<String, Value>>>,
    typed: Typed,
}

/// The end offsets of the fields kept in [`Inner::text`].
#[derive(Clone, Copy)]
struct Ends {
    subject: usize,
    optional: [Option<usize>; 3],
}

impl Ends {
    /// `field` in `text`, if set: it starts where the last field set before it ends.
    fn field<'a>(&self, text: &'a str, field: Field) -> Option<&'a str> {
        let i = field as usize;
        let end = self.optional[i]?;
        let start = self.optional[..i]
            .iter()
            .rev()
            .find_map(|e| *e)
            .unwrap_or(self.subject);
        text.get(start..end)
    }
}

/// The optional text fields, in the order they follow the subject in [`Inner::text`].
#[derive(Clone, Copy)]
enum Field {
    Issuer = 0,
    ClientId = 1,
    TokenId = 2,
}

/// The typed claims a principal carries.
enum Typed {
    None,
    /// The raw claims themselves (the JWT layer's default claims type): nothing more
    /// is stored.
    Raw,
    Other(Box<dyn ErasedClaims>),
}

impl Inner {
    fn field(&self, field: Field) -> Option<&str> {
        self.ends.field(&self.text, field)
    }

    fn roles(&self) -> &[Box<str>] {
        self.roles.get_or_init(|| self.mapped(ClaimMapping::roles))
    }

    fn scopes(&self) -> &[Box<str>] {
        self.scopes
            .get_or_init(|| self.mapped(ClaimMapping::scopes))
    }

    fn mapped(
        &self,
        read: fn(&ClaimMapping, &Map<String, Value>) -> Vec<Box<str>>,
    ) -> Box<[Box<str>]> {
        match (&self.mapping, &self.claims) {
            (Some(mapping), Some(claims)) => read(mapping, claims).into(),
            _ => Box::default(),
        }
    }

    fn typed(&self) -> Option<&dyn Any> {
        match &self.typed {
            Typed::None => None,
            Typed::Raw => self.claims.as_ref().map(|c| c as &dyn Any),
            Typed::Other(typed) => Some(typed.as_any()),
        }
    }
}

/// The authenticated party: subject, kind, issuer, roles, scopes, token id, expiry and
/// the raw claims.
///
/// Built with [`Principal::builder`]; read in handlers through the extractor (a
/// request without one is refused) or `Option<Principal>` on public routes.
///
/// ```
/// use portcullis_core::{Principal, PrincipalKind};
///
/// let p = Principal::builder("alice", PrincipalKind::User)
///     .roles(["admin", "editor"])
///     .scopes(["data:read"])
///     .build();
/// assert!(p.has_role("admin"));
/// assert!(p.has_scope("data:read"));
/// assert!(!p.has_scope("data:write"));
/// ```
#[derive(Clone)]
pub struct Principal(Arc<Inner>);

impl Principal {
    /// Starts a principal for `subject`.
    #[inline]
    pub fn builder(subject: impl AsRef<str>, kind: PrincipalKind) -> PrincipalBuilder {
        let subject = subject.as_ref();
        // Room for an issuer, a client id and a token id of common lengths.
        let mut text = String::with_capacity(subject.len() + 96);
        text.push_str(subject);
        PrincipalBuilder(Box::new(Inner {
            text,
            ends: Ends {
                subject: subject.len(),
                optional: [None; 3],
            },
            kind,
            roles: OnceLock::new(),
            scopes: OnceLock::new(),
            mapping: None,
            issued_at: None,
            expires_at: None,
            claims: None,
            typed: Typed::None,
        }))
    }

    /// The subject (`sub`, or the API key's owner).
    pub fn subject(&self) -> &str {
        &self.0.text[..self.0.ends.subject]
    }

    /// What kind of party this is.
    pub fn kind(&self) -> PrincipalKind {
        self.0.kind
    }

    /// The issuer (`iss`), for tokens.
    pub fn issuer(&self) -> Option<&str> {
        self.0.field(Field::Issuer)
    }

    /// The OAuth client (`client_id` / `azp`), when known.
    pub fn client_id(&self) -> Option<&str> {
        self.0.field(Field::ClientId)
    }

    /// The credential's identifier: `jti` for tokens, the public key id for API keys.
    pub fn token_id(&self) -> Option<&str> {
        self.0.field(Field::TokenId)
    }

    /// Roles, as granted (no hierarchy applied).
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.roles().iter().map(|r| &**r)
    }

    /// Scopes, as granted.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.scopes().iter().map(|s| &**s)
    }

    /// Whether `role` was granted (exactly; hierarchies are the guards' business).
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles().iter().any(|r| &**r == role)
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes().iter().any(|s| &**s == scope)
    }

    /// When the credential was issued (`iat`), if known.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.0.issued_at
    }

    /// When the credential expires (`exp`), if it does.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// The raw claims of a token, for whatever the typed fields do not cover.
    pub fn raw_claims(&self) -> Option<&Map<String, Value>> {
        self.0.claims.as_deref()
    }

    /// The JWK SHA-256 thumbprint ([RFC 7638]) of the key the token is bound to, its
    /// `cnf.jkt` claim ([RFC 9449 §6.1]); `None` for a token that is not DPoP-bound.
    ///
    /// The JWT authenticator with DPoP on admits a bound token only with a proof
    /// signed by that key, and never as a plain bearer token, so a principal it made
    /// that carries a thumbprint was authenticated by proof of possession. Other
    /// authenticators (introspection) report the claim as the issuer stated it,
    /// without checking a proof.
    ///
    /// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
    /// [RFC 9449 §6.1]: https://www.rfc-editor.org/rfc/rfc9449#section-6.1
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.raw_claims()?.get("cnf")?.get("jkt")?.as_str()
    }

    /// The typed claims, when the authenticator produced claims of type `C`.
    pub fn claims<C: Send + Sync + 'static>(&self) -> Option<&Claims<C>> {
        self.0.typed()?.downcast_ref::<Claims<C>>()
    }

    /// Puts this principal (and its typed claims, if any) into `extensions`.
    pub fn insert_into(&self, extensions: &mut http::Extensions) {
        self.clone().move_into(extensions);
    }

    /// [`insert_into`](Self::insert_into) for an owned principal: no extra clone.
    pub(crate) fn move_into(self, extensions: &mut http::Extensions) {
        match (&self.0.typed, &self.0.claims) {
            (Typed::Other(typed), _) => typed.insert_into(extensions),
            (Typed::Raw, Some(raw)) => raw.insert_into(extensions),
            _ => {}
        }
        extensions.insert(self);
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims may hold personal data; show their names only.
        let claim_names: Option<Vec<&String>> = self.0.claims.as_ref().map(|c| c.keys().collect());
        f.debug_struct("Principal")
            .field("subject", &self.subject())
            .field("kind", &self.0.kind)
            .field("issuer", &self.issuer())
            .field("client_id", &self.client_id())
            .field("token_id", &self.token_id())
            .field("roles", &self.0.roles())
            .field("scopes", &self.0.scopes())
            .field("expires_at", &self.0.expires_at)
            .field("claim_names", &claim_names)
            .finish()
    }
}

/// Builds a [`Principal`]. Obtained from [`Principal::builder`].
#[must_use]
// The principal itself, boxed until `build` moves it into its `Arc`: a setter writes
// in place (with no atomic uniqueness check, as `Arc::get_mut` would make on every
// call), and passing the builder along moves one pointer.
pub struct PrincipalBuilder(Box<Inner>);

impl fmt::Debug for PrincipalBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalBuilder")
            .field("subject", &&self.0.text[..self.0.ends.subject])
            .field("kind", &self.0.kind)
            .finish_non_exhaustive()
    }
}

impl PrincipalBuilder {
    /// Sets the issuer.
    #[inline]
    pub fn issuer(mut self, issuer: impl AsRef<str>) -> Self {
        self.0.set_text(Field::Issuer, issuer.as_ref());
        self
    }

    /// Sets the OAuth client id.
    #[inline]
    pub fn client_id(mut self, client_id: impl AsRef<str>) -> Self {
        self.0.set_text(Field::ClientId, client_id.as_ref());
        self
    }

    /// Sets the credential id (`jti`, API key id).
    #[inline]
    pub fn token_id(mut self, token_id: impl AsRef<str>) -> Self {
        self.0.set_text(Field::TokenId, token_id.as_ref());
        self
    }

    /// Sets the roles.
    pub fn roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<Box<str>>,
    {
        self.0.roles = OnceLock::from(roles.into_iter().map(Into::into).collect::<Box<_>>());
        self
    }

    /// Sets the scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        self.0.scopes = OnceLock::from(scopes.into_iter().map(Into::into).collect::<Box<_>>());
        self
    }

    /// Roles and scopes not set with [`roles`](Self::roles) or
    /// [`scopes`](Self::scopes) are read from the [raw claims](Self::raw_claims)
    /// through `mapping`, the first time anything asks for them. A principal that is
    /// only looked up (a cache hit, a route without guards) never pays for it.
    #[inline]
    pub fn claim_mapping(mut self, mapping: Arc<ClaimMapping>) -> Self {
        self.0.mapping = Some(mapping);
        self
    }

    /// Sets the issue time.
    #[inline]
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.0.issued_at = Some(at);
        self
    }

    /// Sets the expiry.
    #[inline]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.0.expires_at = Some(at);
        self
    }

    /// Attaches the raw claims.
    #[inline]
    pub fn raw_claims(mut self, claims: Arc<Map<String, Value>>) -> Self {
        self.0.claims = Some(Claims(claims));
        self
    }

    /// Attaches typed claims; the auth layer also puts them into request extensions.
    #[inline]
    pub fn typed_claims<C: Send + Sync + 'static>(mut self, claims: Claims<C>) -> Self {
        let inner = &mut *self.0;
        inner.typed = if inner.is_raw(&claims) {
            Typed::Raw
        } else {
            Typed::Other(Box::new(claims))
        };
        self
    }

    /// Finishes the principal.
    #[inline]
    pub fn build(mut self) -> Principal {
        // Typed claims attached before the raw claims they share.
        let inner = &mut *self.0;
        if let Typed::Other(typed) = &inner.typed
            && let Some(typed) = typed.as_any().downcast_ref::<Claims<Map<String, Value>>>()
            && inner.is_raw(typed)
        {
            inner.typed = Typed::Raw;
        }
        Principal(Arc::from(self.0))
    }
}

impl Inner {
    /// Sets one of the optional text fields. They live in `text` in [`Field`]'s
    /// order, so the usual single call per field, in that order, appends.
    #[inline]
    fn set_text(&mut self, field: Field, value: &str) {
        let i = field as usize;
        if self.ends.optional[i..].iter().all(Option::is_none) {
            self.text.push_str(value);
            self.ends.optional[i] = Some(self.text.len());
        } else {
            self.relayout(field, value);
        }
    }

    /// Sets a field again, or out of order: lays the text out afresh.
    #[cold]
    #[inline(never)]
    fn relayout(&mut self, field: Field, value: &str) {
        let mut text = String::with_capacity(self.text.len() + value.len());
        text.push_str(&self.text[..self.ends.subject]);
        let mut ends = Ends {
            subject: self.ends.subject,
            optional: [None; 3],
        };
        for (j, other) in [Field::Issuer, Field::ClientId, Field::TokenId]
            .into_iter()
            .enumerate()
        {
            let value = if j == field as usize {
                Some(value)
            } else {
                self.ends.field(&self.text, other)
            };
            if let Some(value) = value {
                text.push_str(value);
                ends.optional[j] = Some(text.len());
            }
        }
        self.text = text;
        self.ends = ends;
    }

    /// Whether `claims` are the raw claims already attached (the JWT layer's default
    /// claims type), which then need no storage of their own.
    fn is_raw<C: Send + Sync + 'static>(&self, claims: &Claims<C>) -> bool {
        let typed: &dyn Any = claims;
        match (
            typed.downcast_ref::<Claims<Map<String, Value>>>(),
            &self.claims,
        ) {
            (Some(typed), Some(raw)) => Arc::ptr_eq(&typed.0, &raw.0),
            _ => false,
        }
    }
}

/// Converts NumericDate seconds (RFC 7519 §2) to a `SystemTime`, if representable.
pub fn numeric_date(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
}

#[cfg(test)]
mod tests;
