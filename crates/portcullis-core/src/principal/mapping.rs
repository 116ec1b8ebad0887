//! [`ClaimMapping`]: where roles and scopes sit in a token's claims, with presets for
//! the identity providers that put them in different places.

use std::fmt;

use serde_json::{Map, Value};

/// The JSON shapes a mapped claim may take. Any other shape makes the token
/// malformed (see [`ClaimMapping::check`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimShape {
    /// A space-separated string (`"scope": "a b"`) or an array of strings
    /// (`"scp": ["a", "b"]`). The default.
    #[default]
    StringOrArray,
    /// A space-separated string only: `scope` as
    /// [RFC 9068 §2.2.3](https://www.rfc-editor.org/rfc/rfc9068#section-2.2.3) and
    /// [RFC 8693 §4.2](https://www.rfc-editor.org/rfc/rfc8693#section-4.2) define it.
    SpaceSeparated,
    /// An array of strings only (`cognito:groups`, Keycloak's `roles`).
    Array,
    /// A comma- or space-separated string, or an array of strings (Better Auth's
    /// `role`, which holds `"admin,user"` for several roles).
    CommaSeparated,
}

/// A path to a claim: `roles`, or `realm_access.roles` for nested objects, and the
/// [`ClaimShape`] its value must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    segments: Box<[Box<str>]>,
    shape: ClaimShape,
}

impl ClaimPath {
    /// Parses a dotted path. Empty segments are ignored. A member name that holds a
    /// dot (`https://example.com/roles`) needs [`from_segments`](Self::from_segments).
    pub fn new(path: &str) -> Self {
        Self::from_segments(path.split('.').filter(|s| !s.is_empty()))
    }

    /// A path from its member names, taken as they are (dots included).
    pub fn from_segments<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        Self {
            segments: segments.into_iter().map(Into::into).collect(),
            shape: ClaimShape::default(),
        }
    }

    /// Requires `shape` of the value at this path.
    #[must_use]
    pub fn with_shape(mut self, shape: ClaimShape) -> Self {
        self.shape = shape;
        self
    }

    /// The shape the value must have.
    pub fn shape(&self) -> ClaimShape {
        self.shape
    }

    /// Finds the value at this path.
    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(&**first)?;
        for segment in rest {
            value = value.as_object()?.get(&**segment)?;
        }
        Some(value)
    }

    /// The first member name, which the claims' top level must hold.
    fn first(&self) -> Option<&str> {
        self.segments.first().map(|s| &**s)
    }

    /// Whether `value`, the claims' member named by the first segment, is well
    /// formed along the rest of this path: every object on the way an object (or the
    /// path ends early, absent), and the value at its end of this path's shape.
    fn check_value(&self, mut value: &Value) -> bool {
        for segment in self.segments.iter().skip(1) {
            let Some(object) = value.as_object() else {
                return false;
            };
            match object.get(&**segment) {
                Some(next) => value = next,
                None => return true,
            }
        }
        let strings = |items: &[Value]| items.iter().all(Value::is_string);
        match (self.shape, value) {
            (ClaimShape::Array, Value::Array(items)) => strings(items),
            (ClaimShape::Array, _) => false,
            (ClaimShape::SpaceSeparated, value) => value.is_string(),
            (_, Value::String(_)) => true,
            (_, Value::Array(items)) => strings(items),
            _ => false,
        }
    }

    fn display(&self) -> String {
        self.segments.join(".")
    }
}

impl From<&str> for ClaimPath {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

/// A mapped claim of the wrong shape (see [`ClaimMapping::check`]).
#[derive(Debug, Clone)]
pub struct ClaimShapeError {
    path: String,
}

impl ClaimShapeError {
    /// The dotted path of the offending claim.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for ClaimShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the claim `{}` does not have the expected shape",
            self.path
        )
    }
}

impl std::error::Error for ClaimShapeError {}

/// Where roles and scopes come from in a token's claims.
///
/// Each path's value must have its [`ClaimShape`] (by default a space-separated
/// string, as RFC 8693 and 9068 use for `scope`, or an array of strings); several
/// paths are merged. Verifiers refuse a token whose mapped claims have another shape
/// ([`check`](Self::check)): `roles: [["admin"]]` is a malformed token, never a token
/// without roles. Defaults: roles from `roles`; scopes from `scope` and `scp`.
///
/// # Presets
///
/// | Preset | Name | Roles from | Scopes from |
/// |---|---|---|---|
/// | [`default`](Self::default) | `default` | `roles` | `scope`, `scp` |
/// | [`rfc9068`](Self::rfc9068) | `rfc9068` | `roles` (array) | `scope` (string only) |
/// | [`keycloak`](Self::keycloak) | `keycloak` | `realm_access.roles`, `roles` (+ `resource_access.<client>.roles` with [`keycloak_client`](Self::keycloak_client)) | `scope` |
/// | [`auth0`](Self::auth0) | `auth0` | `roles` | `scope`, `permissions` |
/// | [`okta`](Self::okta) | `okta` | `groups` | `scp` (array), `scope` |
/// | [`entra_id`](Self::entra_id) | `entra-id` | `roles` (app roles), `groups` | `scp` (string) |
/// | [`cognito`](Self::cognito) | `cognito` | `cognito:groups` | `scope` |
/// | [`better_auth`](Self::better_auth) | `better-auth` | `role` (comma-separated) | `scope` |
///
/// Custom paths: [`with_roles`](Self::with_roles) and
/// [`with_scopes`](Self::with_scopes) (a namespaced Auth0 claim such as
/// `https://example.com/roles` via [`ClaimPath::from_segments`]).
///
/// ```
/// use portcullis_core::ClaimMapping;
/// use serde_json::json;
///
/// let mapping = ClaimMapping::keycloak().keycloak_client("my-api");
/// let claims = json!({
///     "realm_access": {"roles": ["admin"]},
///     "resource_access": {"my-api": {"roles": ["editor"]}, "other": {"roles": ["root"]}},
///     "scope": "read write",
/// });
/// let claims = claims.as_object().unwrap();
/// assert!(mapping.check(claims).is_ok());
/// assert_eq!(mapping.roles(claims), vec!["admin".into(), "editor".into()] as Vec<Box<str>>);
/// assert_eq!(mapping.scopes(claims).len(), 2);
///
/// let wrong = json!({"realm_access": {"roles": [["admin"]]}});
/// assert!(mapping.check(wrong.as_object().unwrap()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    roles: Vec<ClaimPath>,
    scopes: Vec<ClaimPath>,
    /// A bit per [`tag`] of the paths' first member names: most claims' names miss
    /// it, so [`check`](Self::check) passes them with one test.
    filter: u64,
}

/// A cheap 6-bit summary of a member name (its length and first byte).
fn tag(name: &str) -> u64 {
    let first = name.as_bytes().first().copied().unwrap_or(0) as usize;
    1 << ((name.len().wrapping_mul(31) ^ first) & 63)
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            roles: vec![ClaimPath::new("roles")],
            scopes: vec![ClaimPath::new("scope"), ClaimPath::new("scp")],
            filter: 0,
        }
        .refiltered()
    }
}

impl ClaimMapping {
    /// The preset named `name` (the *Name* column of the [table](Self)), if any.
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "default" => Self::default(),
            "rfc9068" => Self::rfc9068(),
            "keycloak" => Self::keycloak(),
            "auth0" => Self::auth0(),
            "okta" => Self::okta(),
            "entra-id" => Self::entra_id(),
            "cognito" => Self::cognito(),
            "better-auth" => Self::better_auth(),
            _ => return None,
        })
    }

    /// The names [`preset`](Self::preset) knows.
    pub const PRESETS: &'static [&'static str] = &[
        "default",
        "rfc9068",
        "keycloak",
        "auth0",
        "okta",
        "entra-id",
        "cognito",
        "better-auth",
    ];

    /// RFC 9068 access tokens: scopes from `scope`, a space-separated string only;
    /// roles from `roles`, an array of strings (§7.2.1.1, after SCIM).
    pub fn rfc9068() -> Self {
        Self::default()
            .with_roles([ClaimPath::new("roles").with_shape(ClaimShape::Array)])
            .with_scopes([ClaimPath::new("scope").with_shape(ClaimShape::SpaceSeparated)])
    }

    /// Keycloak's layout: roles from `realm_access.roles` and `roles`; scopes from
    /// `scope`. Client roles come in with [`keycloak_client`](Self::keycloak_client).
    pub fn keycloak() -> Self {
        Self::default()
            .with_roles(["realm_access.roles", "roles"])
            .with_scopes(["scope"])
    }

    /// Adds Keycloak's client roles of `client` (`resource_access.<client>.roles`).
    /// Only that client's: roles another client holds grant nothing here.
    #[must_use]
    pub fn keycloak_client(mut self, client: &str) -> Self {
        self.roles.push(ClaimPath::from_segments([
            "resource_access",
            client,
            "roles",
        ]));
        self.refiltered()
    }

    /// Auth0's layout: RBAC `permissions` count as scopes, beside `scope`. Auth0 puts
    /// roles only in a namespaced claim you choose: add it with
    /// [`with_roles`](Self::with_roles).
    pub fn auth0() -> Self {
        Self::default().with_scopes(["scope", "permissions"])
    }

    /// Okta's layout: scopes from `scp` (an array) and `scope`; roles from `groups`.
    pub fn okta() -> Self {
        Self::default()
            .with_roles(["groups"])
            .with_scopes(["scp", "scope"])
    }

    /// Microsoft Entra ID's layout: delegated scopes from `scp` (a space-separated
    /// string); app roles from `roles`, then `groups`.
    pub fn entra_id() -> Self {
        Self::default()
            .with_roles(["roles", "groups"])
            .with_scopes([ClaimPath::new("scp").with_shape(ClaimShape::SpaceSeparated)])
    }

    /// Amazon Cognito's layout: roles from `cognito:groups` (an array); scopes from
    /// `scope`.
    pub fn cognito() -> Self {
        Self::default()
            .with_roles([ClaimPath::new("cognito:groups").with_shape(ClaimShape::Array)])
            .with_scopes(["scope"])
    }

    /// Better Auth's JWT plugin (with its admin plugin): roles from `role`, a comma-
    /// separated string such as `"admin,user"`; scopes from `scope`.
    pub fn better_auth() -> Self {
        Self::default()
            .with_roles([ClaimPath::new("role").with_shape(ClaimShape::CommaSeparated)])
            .with_scopes(["scope"])
    }

    /// Replaces the role paths.
    #[must_use]
    pub fn with_roles<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<ClaimPath>,
    {
        self.roles = paths.into_iter().map(Into::into).collect();
        self.refiltered()
    }

    /// Replaces the scope paths.
    #[must_use]
    pub fn with_scopes<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<ClaimPath>,
    {
        self.scopes = paths.into_iter().map(Into::into).collect();
        self.refiltered()
    }

    fn refiltered(mut self) -> Self {
        self.filter = self
            .paths()
            .filter_map(ClaimPath::first)
            .fold(0, |bits, name| bits | tag(name));
        self
    }

    fn paths(&self) -> impl Iterator<Item = &ClaimPath> {
        self.roles.iter().chain(&self.scopes)
    }

    /// Checks that every mapped claim present in `claims` has its path's shape, and
    /// that every object on the way to it is an object.
    ///
    /// # Errors
    ///
    /// The first claim of the wrong shape. Verifiers refuse the token then: a
    /// mistyped claim is never read as "no roles" nor coerced.
    pub fn check(&self, claims: &Map<String, Value>) -> Result<(), ClaimShapeError> {
        // One pass over the claims rather than a look-up per path: verifiers call
        // this for every token they verify.
        claims
            .iter()
            .try_for_each(|(name, value)| self.check_member(name, value))
    }

    /// [`check`](Self::check) for one top-level member of the claims. Most names
    /// cost one bit test.
    #[inline]
    pub(crate) fn check_member(&self, name: &str, value: &Value) -> Result<(), ClaimShapeError> {
        if self.filter & tag(name) == 0 {
            return Ok(());
        }
        match self
            .paths()
            .find(|p| p.first() == Some(name) && !p.check_value(value))
        {
            None => Ok(()),
            Some(path) => Err(ClaimShapeError {
                path: path.display(),
            }),
        }
    }

    /// The roles in `claims`, deduplicated, in order of appearance. Values of the
    /// wrong shape are skipped here; [`check`](Self::check) refuses them.
    pub fn roles(&self, claims: &Map<String, Value>) -> Vec<Box<str>> {
        collect(&self.roles, claims)
    }

    /// The scopes in `claims`, deduplicated, in order of appearance.
    pub fn scopes(&self, claims: &Map<String, Value>) -> Vec<Box<str>> {
        collect(&self.scopes, claims)
    }
}

fn split(shape: ClaimShape, s: &str) -> impl Iterator<Item = &str> {
    let comma = shape == ClaimShape::CommaSeparated;
    s.split(move |c: char| c.is_ascii_whitespace() || (comma && c == ','))
        .filter(|s| !s.is_empty())
}

fn collect(paths: &[ClaimPath], claims: &Map<String, Value>) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for path in paths {
        let Some(value) = path.lookup(claims) else {
            continue;
        };
        // Grown exactly, so the list usually becomes a boxed slice without a copy.
        match value {
            Value::String(s) => out.reserve_exact(split(path.shape, s).count()),
            Value::Array(items) => out.reserve_exact(items.len()),
            _ => continue,
        }
        let mut push = |s: &str| {
            if !s.is_empty() && !out.iter().any(|o| &**o == s) {
                out.push(s.into());
            }
        };
        match value {
            Value::String(s) => split(path.shape, s).for_each(&mut push),
            Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(&mut push),
            _ => {}
        }
    }
    out
}
