//! [`Grant`]: what one access token says.

/// What to put into one access token: who, for which client, with which roles and
/// scopes.
///
/// ```
/// use portcullis_tokens::Grant;
///
/// let grant = Grant::new("user-42", "web").roles(["editor"]).scopes(["read", "write"]);
/// assert_eq!(grant.subject(), "user-42");
/// ```
#[derive(Debug, Clone)]
pub struct Grant {
    pub(crate) subject: String,
    pub(crate) client_id: String,
    pub(crate) roles: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) dpop_jkt: Option<String>,
}

impl Grant {
    /// A grant for `subject` (`sub`) through `client_id` (`client_id`).
    pub fn new(subject: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            client_id: client_id.into(),
            roles: Vec::new(),
            scopes: Vec::new(),
            dpop_jkt: None,
        }
    }

    /// Sets the `roles` claim (an array; omitted when empty).
    pub fn roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the `scope` claim (RFC 9068 §2.2.3: one space-separated string; omitted when
    /// empty).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Binds the token to the client's DPoP key ([RFC 9449 §6.1]): `jkt` is the RFC
    /// 7638 thumbprint of the key that signed the request's verified proof, and goes
    /// into the `cnf.jkt` claim. A resource server with DPoP on then admits the token
    /// only with proofs signed by that key; [`TokenService`](crate::TokenService)
    /// also binds the refresh family to it.
    ///
    /// [RFC 9449 §6.1]: https://www.rfc-editor.org/rfc/rfc9449#section-6.1
    pub fn dpop_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.dpop_jkt = Some(jkt.into());
        self
    }

    /// The DPoP key thumbprint the token is bound to, if any.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop_jkt.as_deref()
    }

    /// The client identity the grant's refresh family is stored under: the client,
    /// and for a DPoP-bound grant the key's thumbprint too (see
    /// [`dpop_client_id`](crate::dpop_client_id)).
    pub(crate) fn refresh_client_id(&self) -> std::borrow::Cow<'_, str> {
        crate::dpop_client_id(&self.client_id, self.dpop_jkt.as_deref())
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// The client identity a refresh family is stored under: `client_id` itself, or for a
/// family bound to a DPoP key, `client_id` and the key's thumbprint together.
///
/// Stores check the presented client atomically as they rotate, changing nothing on a
/// mismatch, so a bound refresh token presented without a proof, or with a proof of
/// another key, is refused and does not rotate; an unbound one presented with a proof
/// is refused alike. Rotate with the identity of the request's verified proof:
///
/// ```
/// use portcullis_tokens::dpop_client_id;
///
/// assert_eq!(dpop_client_id("web", None), "web");
/// assert_ne!(dpop_client_id("web", Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")), "web");
/// ```
pub fn dpop_client_id<'a>(client_id: &'a str, jkt: Option<&str>) -> std::borrow::Cow<'a, str> {
    match jkt {
        // A space never occurs in a thumbprint (base64url), so no two pairs collide.
        Some(jkt) => format!("{client_id} dpop:{jkt}").into(),
        None => client_id.into(),
    }
}
