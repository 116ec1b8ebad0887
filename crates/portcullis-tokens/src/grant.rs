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
}

impl Grant {
    /// A grant for `subject` (`sub`) through `client_id` (`client_id`).
    pub fn new(subject: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            client_id: client_id.into(),
            roles: Vec::new(),
            scopes: Vec::new(),
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

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}
