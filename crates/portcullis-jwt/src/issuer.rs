//! [`Issuer`]: one trusted issuer with its own keys and rules, and the routing of a
//! token to it by `iss`.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use portcullis_core::{AuthError, ClaimMapping};
use serde_json::Value;

use crate::{
    authenticator::registered_read_by,
    error::{ConfigError, ConfigErrorKind},
    key::{Algorithm, Key},
    keyset::{KeySet, TypRule},
};

/// One issuer a [`JwtAuthenticator`](crate::JwtAuthenticator) trusts: its identifier
/// (compared exactly with `iss`), its keys (static, or remote with feature `jwks`)
/// and the rules for its tokens. Rules left unset take the authenticator's
/// (audience, leeway, `typ` rule, claim mapping).
///
/// A token is routed by its `iss` to that issuer's keys alone: a key of one issuer
/// never verifies a token of another, and `iss` is trusted only once that issuer's
/// key has verified the signature.
///
/// ```
/// use portcullis_core::ClaimMapping;
/// use portcullis_jwt::{Algorithm, Issuer, JwtAuthenticator, Key};
///
/// let staff = Issuer::new("https://staff.example")
///     .key(Key::hmac(Algorithm::HS256, [1u8; 32])?)
///     .claim_mapping(ClaimMapping::keycloak());
/// let customers = Issuer::new("https://customers.example")
///     .key(Key::hmac(Algorithm::HS256, [2u8; 32])?)
///     .audience("shop-api")
///     .require_access_token_typ();
/// let jwt = JwtAuthenticator::builder()
///     .trust(staff)
///     .trust(customers)
///     .audience("staff-api")
///     .build()?;
/// # let _ = jwt;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct Issuer {
    pub(crate) id: Box<str>,
    pub(crate) keys: Vec<Key>,
    #[cfg(feature = "jwks")]
    pub(crate) remote: Option<crate::jwks::RemoteKeys>,
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) any_audience: bool,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    pub(crate) leeway: Option<Duration>,
    pub(crate) typ: Option<TypRule>,
    pub(crate) mapping: Option<ClaimMapping>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("id", &self.id)
            .field("keys", &self.keys)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer identified by `id`, exactly as its tokens' `iss` (a trailing slash
    /// makes another issuer). Give it keys with [`key`](Self::key).
    pub fn new(id: impl Into<Box<str>>) -> Self {
        Self {
            id: id.into(),
            keys: Vec::new(),
            #[cfg(feature = "jwks")]
            remote: None,
            audiences: Vec::new(),
            any_audience: false,
            algorithms: None,
            leeway: None,
            typ: None,
            mapping: None,
        }
    }

    /// The issuer of `keys`, verifying with them (feature `jwks`: a JWKS URL or
    /// discovery).
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn remote(keys: crate::jwks::RemoteKeys) -> Self {
        let mut issuer = Self::new(keys.issuer());
        issuer.remote = Some(keys);
        issuer
    }

    /// The identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a static verification key of this issuer.
    pub fn key(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds several static keys of this issuer.
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Adds an accepted audience for this issuer's tokens (replacing the
    /// authenticator's for them).
    pub fn audience(mut self, audience: impl Into<Box<str>>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Skips the audience check for this issuer's tokens.
    ///
    /// # Security
    ///
    /// As for [`JwtAuthenticatorBuilder::danger_accept_any_audience`](crate::JwtAuthenticatorBuilder::danger_accept_any_audience).
    pub fn danger_accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Accepts only these algorithms from this issuer (`alg_not_allowed` otherwise),
    /// whatever keys it publishes.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The clock skew tolerated for this issuer's tokens.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Accepts only RFC 9068 access tokens (`typ` `at+jwt`) from this issuer; see
    /// [`JwtAuthenticatorBuilder::require_access_token_typ`](crate::JwtAuthenticatorBuilder::require_access_token_typ).
    pub fn require_access_token_typ(mut self) -> Self {
        self.typ = Some(TypRule::OneOf(vec!["at+jwt".into()].into()));
        self
    }

    /// Where roles and scopes sit in this issuer's tokens.
    pub fn claim_mapping(mut self, mapping: ClaimMapping) -> Self {
        self.mapping = Some(mapping);
        self
    }
}

/// Where a trusted issuer's keys come from.
pub(crate) enum TrustedKeys {
    Static(RwLock<Arc<KeySet>>),
    #[cfg(feature = "jwks")]
    Remote(crate::jwks::RemoteKeys),
}

/// A trusted issuer, resolved: every rule set.
pub(crate) struct Trusted {
    /// Its place among the trusted issuers (set by [`Issuers::new`]): what a cached
    /// verification remembers of its issuer.
    pub(crate) index: usize,
    pub(crate) id: Box<str>,
    pub(crate) keys: TrustedKeys,
    pub(crate) audiences: Option<Box<[Box<str>]>>,
    pub(crate) algorithms: Option<Box<[Algorithm]>>,
    pub(crate) leeway: i64,
    pub(crate) typ: TypRule,
    pub(crate) mapping: Arc<ClaimMapping>,
}

impl fmt::Debug for Trusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Issuer");
        d.field("id", &self.id);
        match &self.keys {
            TrustedKeys::Static(keys) => {
                d.field("keys", &*keys.read().unwrap_or_else(|e| e.into_inner()))
            }
            #[cfg(feature = "jwks")]
            TrustedKeys::Remote(remote) => d.field("remote", remote),
        };
        d.field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("leeway_secs", &self.leeway)
            .field("typ", &self.typ)
            .field("mapping", &self.mapping)
            .finish()
    }
}

/// The defaults an [`Issuer`]'s unset rules take.
pub(crate) struct Defaults<'a> {
    pub(crate) audiences: &'a [Box<str>],
    pub(crate) any_audience: bool,
    pub(crate) leeway: Duration,
    pub(crate) typ: &'a TypRule,
    pub(crate) mapping: &'a Arc<ClaimMapping>,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Issuer {
    pub(crate) fn resolve(self, defaults: &Defaults<'_>) -> Result<Trusted, ConfigError> {
        if self.id.is_empty() || self.audiences.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::new(ConfigErrorKind::EmptyValue));
        }
        #[cfg(feature = "jwks")]
        let keys = match (self.remote, self.keys.is_empty()) {
            (Some(remote), true) => TrustedKeys::Remote(remote),
            (Some(_), false) => return Err(ConfigError::new(ConfigErrorKind::AmbiguousKeys)),
            (None, _) => static_keys(self.keys)?,
        };
        #[cfg(not(feature = "jwks"))]
        let keys = static_keys(self.keys)?;
        let audiences = if self.any_audience {
            None
        } else if !self.audiences.is_empty() {
            Some(self.audiences.into())
        } else if !defaults.audiences.is_empty() {
            Some(defaults.audiences.into())
        } else if defaults.any_audience {
            None
        } else {
            return Err(ConfigError::new(ConfigErrorKind::NoAudience));
        };
        Ok(Trusted {
            index: 0,
            id: self.id,
            keys,
            audiences,
            algorithms: self.algorithms.map(Into::into),
            leeway: secs(self.leeway.unwrap_or(defaults.leeway)),
            typ: self.typ.unwrap_or_else(|| defaults.typ.clone()),
            mapping: self
                .mapping
                .map_or_else(|| Arc::clone(defaults.mapping), Arc::new),
        })
    }
}

fn static_keys(keys: Vec<Key>) -> Result<TrustedKeys, ConfigError> {
    if keys.is_empty() {
        return Err(ConfigError::new(ConfigErrorKind::NoKeys));
    }
    Ok(TrustedKeys::Static(RwLock::new(Arc::new(KeySet::new(
        keys,
    )?))))
}

/// Up to this many issuers, routing compares `iss` with each.
const LINEAR: usize = 4;

/// How a token's `iss` finds its issuer among more than [`LINEAR`].
enum Index {
    /// A byte position where every issuer identifier holds a different byte: that
    /// byte picks the one candidate (`table`, index + 1; 0 for none), which must
    /// then equal `iss` whole. One load and one comparison.
    Byte { at: usize, table: Box<[u8; 256]> },
    /// Otherwise, a hash map.
    Map(HashMap<Box<str>, usize, foldhash::fast::RandomState>),
}

/// The trusted issuers, found by `iss`.
pub(crate) struct Issuers {
    list: Box<[Trusted]>,
    index: Option<Index>,
    /// When every issuer has the same claim mapping (always, with one issuer): the
    /// registered claims it reads (see [`registered_read_by`]).
    shared_mapping: Option<u16>,
}

impl Issuers {
    pub(crate) fn new(mut list: Vec<Trusted>) -> Result<Self, ConfigError> {
        let mut map = HashMap::with_capacity_and_hasher(list.len(), Default::default());
        for (i, t) in list.iter_mut().enumerate() {
            if map.insert(t.id.clone(), i).is_some() {
                return Err(ConfigError::new(ConfigErrorKind::DuplicateIssuer));
            }
            t.index = i;
        }
        let index = (list.len() > LINEAR).then(|| {
            discriminating_byte(&list)
                .map_or(Index::Map(map), |(at, table)| Index::Byte { at, table })
        });
        let shared_mapping = list
            .windows(2)
            .all(|w| Arc::ptr_eq(&w[0].mapping, &w[1].mapping))
            .then(|| list.first().map(|t| registered_read_by(&t.mapping)))
            .flatten();
        Ok(Self {
            index,
            list: list.into(),
            shared_mapping,
        })
    }

    /// The claim mapping of every issuer, when they all have the same one, and the
    /// registered claims it reads: then a token's claims can be checked against it
    /// before its issuer is known.
    pub(crate) fn shared_mapping(&self) -> Option<(&ClaimMapping, u16)> {
        let reads = self.shared_mapping?;
        self.list.first().map(|t| (&*t.mapping, reads))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Trusted> {
        self.list.iter()
    }

    /// The issuer at `index` (see [`Trusted::index`]).
    #[cfg(feature = "jwks")]
    pub(crate) fn get(&self, index: usize) -> Option<&Trusted> {
        self.list.get(index)
    }

    /// The issuer named by the claims' `iss`. The claims are not verified yet: the
    /// answer only chooses whose keys verify the signature.
    pub(crate) fn route(&self, iss: Option<&Value>) -> Result<&Trusted, AuthError> {
        let iss = match iss {
            Some(Value::String(iss)) => iss.as_str(),
            None => return Err(AuthError::invalid_token("missing_iss")),
            Some(_) => {
                return Err(AuthError::invalid_token("invalid_iss")
                    .with_description("the token is malformed"));
            }
        };
        self.find(iss).ok_or_else(|| {
            AuthError::invalid_token("wrong_issuer")
                .with_description("the token's issuer is not trusted")
        })
    }

    /// The trusted issuer identified by exactly `iss`.
    pub(crate) fn find(&self, iss: &str) -> Option<&Trusted> {
        match &self.index {
            None => self.list.iter().find(|t| *t.id == *iss),
            Some(Index::Byte { at, table }) => iss
                .as_bytes()
                .get(*at)
                .and_then(|&b| table[usize::from(b)].checked_sub(1))
                .map(|i| &self.list[usize::from(i)])
                .filter(|t| *t.id == *iss),
            Some(Index::Map(map)) => map.get(iss).map(|&i| &self.list[i]),
        }
    }
}

/// A byte position where every identifier has a byte and no two share it, and the
/// table from that byte to the identifier's index + 1 (at most 255 issuers).
fn discriminating_byte(list: &[Trusted]) -> Option<(usize, Box<[u8; 256]>)> {
    if list.len() > 255 {
        return None;
    }
    let shortest = list.iter().map(|t| t.id.len()).min()?;
    (0..shortest).find_map(|at| {
        let mut table = Box::new([0u8; 256]);
        for (i, t) in list.iter().enumerate() {
            let slot = &mut table[usize::from(t.id.as_bytes()[at])];
            if *slot != 0 {
                return None;
            }
            *slot = u8::try_from(i + 1).ok()?;
        }
        Some((at, table))
    })
}

impl fmt::Debug for Issuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuers(ids: &[&str]) -> Issuers {
        let mapping = Arc::new(ClaimMapping::default());
        let defaults = Defaults {
            audiences: &["api".into()],
            any_audience: false,
            leeway: Duration::ZERO,
            typ: &TypRule::Default,
            mapping: &mapping,
        };
        let key = Key::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
        let list = ids
            .iter()
            .map(|id| {
                Issuer::new(*id)
                    .key(key.clone())
                    .resolve(&defaults)
                    .unwrap()
            })
            .collect();
        Issuers::new(list).unwrap()
    }

    #[test]
    fn issuers_differing_in_one_byte_route_by_that_byte_and_compare_whole() {
        let ids: Vec<String> = (0..10).map(|i| format!("https://t{i}.example")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let set = issuers(&ids);
        assert!(matches!(set.index, Some(Index::Byte { at: 9, .. })));
        for id in &ids {
            assert_eq!(set.find(id).map(|t| &*t.id), Some(*id));
        }
        // The right byte at the right place is not enough.
        assert!(set.find("https://t3.example.evil").is_none());
        assert!(set.find("https://t3").is_none());
        assert!(set.find("").is_none());
    }

    #[test]
    fn identifiers_differing_in_any_one_byte_are_different_issuers() {
        let id = "https://tenant-9.auth.example.com/";
        let set = issuers(&[id]);
        assert!(set.find(id).is_some());
        for i in 0..id.len() {
            let mut other = id.as_bytes().to_vec();
            other[i] ^= 0x01;
            let other = String::from_utf8(other).unwrap();
            assert!(set.find(&other).is_none(), "byte {i}");
        }
        assert!(set.find(&id[..id.len() - 1]).is_none());
        assert!(set.find(&format!("{id}x")).is_none());
    }

    #[test]
    fn issuers_without_a_distinct_byte_use_a_map() {
        let ids = [
            "https://a/",
            "https://a/1",
            "https://a/2",
            "https://a/3",
            "https://a/4",
        ];
        let set = issuers(&ids);
        assert!(matches!(set.index, Some(Index::Map(_))));
        for id in ids {
            assert_eq!(set.find(id).map(|t| &*t.id), Some(id));
        }
        assert!(set.find("https://a/5").is_none());
    }
}
