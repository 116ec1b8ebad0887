//! [`KeySet`]: the configured keys, selected by `kid`, and JWS signature verification.

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wycheproof;

use std::{collections::HashMap, fmt, sync::RwLock};

use portcullis_core::AuthError;

use crate::{
    compact::{self, Crit, ParseError, Segments},
    error::{KeyError, KeyErrorKind},
    key::{Algorithm, Key, MAX_KID_LEN},
};

/// The default cap on a token's length, checked before any decoding: 8 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The keys a verifier trusts.
///
/// # Key selection
///
/// - A token whose header names a `kid` gets the key configured under that `kid`;
///   a `kid` over [`MAX_KID_LEN`] bytes is refused before any look-up. The `kid` is a
///   map look-up and nothing more: never a path, a URL or a query.
/// - With a single configured key, a token without `kid` uses it; so does a token
///   whose `kid` names nothing, if that single key itself has no `kid`.
/// - With several keys, a token without `kid` uses the one key whose algorithm equals
///   the header's `alg`, when there is exactly one; otherwise it is refused
///   (`missing_kid`). Keys are never tried one after another: one token, at most one
///   signature check.
///
/// Whatever key is selected, the header's `alg` must equal that key's algorithm.
///
/// ```
/// use portcullis_jwt::{Algorithm, Key, KeySet};
///
/// let keys = KeySet::new([
///     Key::hmac(Algorithm::HS256, [1u8; 32])?.with_kid("a")?,
///     Key::hmac(Algorithm::HS512, [2u8; 64])?.with_kid("b")?,
/// ])?;
/// assert_eq!(keys.len(), 2);
/// # Ok::<(), portcullis_jwt::KeyError>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<Box<str>, usize>,
    headers: HeaderMemo,
}

/// Headers of tokens that verified, by their exact encoded segment: what parsing one
/// decided (the key it selected, its `typ`). Tokens from one issuer share a handful of
/// headers, so a new token usually skips decoding and parsing its header. Only headers
/// whose token verified get in, and at most [`HeaderMemo::CAPACITY`] of them.
#[derive(Default)]
struct HeaderMemo(RwLock<Vec<Memo>>);

struct Memo {
    segment: Box<str>,
    key: usize,
    typ: Option<Box<str>>,
}

impl HeaderMemo {
    const CAPACITY: usize = 16;

    /// The key index and `typ` remembered for `segment`.
    fn get<R>(&self, segment: &str, f: impl FnOnce(usize, Option<&str>) -> R) -> Option<R> {
        let memos = self.0.read().unwrap_or_else(|e| e.into_inner());
        let memo = memos.iter().find(|m| *m.segment == *segment)?;
        Some(f(memo.key, memo.typ.as_deref()))
    }

    fn remember(&self, segment: &str, key: usize, typ: Option<Box<str>>) {
        let mut memos = self.0.write().unwrap_or_else(|e| e.into_inner());
        if memos.iter().any(|m| *m.segment == *segment) {
            return;
        }
        if memos.len() >= Self::CAPACITY {
            memos.clear();
        }
        memos.push(Memo {
            segment: segment.into(),
            key,
            typ,
        });
    }
}

impl Clone for HeaderMemo {
    /// A clone starts empty: what it remembers is cheap to learn again.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("keys", &self.keys).finish()
    }
}

/// The `typ` rule a verifier applies to the header
/// ([RFC 7515 §4.1.9](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.9): media
/// types compared case-insensitively, the `application/` prefix optional).
#[derive(Debug, Clone, Default)]
pub(crate) enum TypRule {
    /// `typ` absent (RFC 7519 makes it optional), `JWT`, or `at+jwt`: a token
    /// explicitly typed as anything else (`dpop+jwt`, `logout+jwt`, `secevent+jwt`,
    /// …) is refused.
    #[default]
    Default,
    /// Only these values; a token without `typ` is refused.
    OneOf(Box<[Box<str>]>),
}

impl TypRule {
    pub(crate) fn allows(&self, typ: Option<&str>) -> bool {
        let matches = |allowed: &str, typ: &str| {
            strip_application(allowed).eq_ignore_ascii_case(strip_application(typ))
        };
        match self {
            // Most tokens say exactly `JWT`: no need to fold case for them.
            Self::Default => {
                typ.is_none_or(|typ| typ == "JWT" || matches("JWT", typ) || matches("at+jwt", typ))
            }
            Self::OneOf(allowed) => typ.is_some_and(|typ| allowed.iter().any(|a| matches(a, typ))),
        }
    }
}

fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

pub(crate) fn malformed() -> AuthError {
    AuthError::invalid_token("malformed_token").with_description("the token is malformed")
}

impl KeySet {
    /// A key set.
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::DuplicateKid`] when two keys share a `kid`.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<Self, KeyError> {
        let keys: Vec<Key> = keys.into_iter().collect();
        let mut by_kid = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = key.kid()
                && by_kid.insert(kid.into(), i).is_some()
            {
                return Err(KeyError::new(
                    KeyErrorKind::DuplicateKid,
                    "each kid may name one key",
                ));
            }
        }
        Ok(Self {
            keys,
            by_kid,
            headers: HeaderMemo::default(),
        })
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    fn select_index(&self, kid: Option<&str>, alg: &str) -> Result<usize, AuthError> {
        portcullis_core::internal::trace_kid(kid);
        match kid {
            Some(kid) => {
                if kid.len() > MAX_KID_LEN {
                    return Err(AuthError::invalid_token("kid_too_long"));
                }
                if let Some(&i) = self.by_kid.get(kid) {
                    return Ok(i);
                }
                match self.keys.as_slice() {
                    [only] if only.kid().is_none() => Ok(0),
                    _ => Err(AuthError::invalid_token("unknown_kid")
                        .with_description("the token's key is unknown")),
                }
            }
            None => match self.keys.as_slice() {
                [_] => Ok(0),
                keys => {
                    let mut candidates = keys
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| k.algorithm().name() == alg);
                    match (candidates.next(), candidates.next()) {
                        (Some((i, _)), None) => Ok(i),
                        _ => Err(AuthError::invalid_token("missing_kid")
                            .with_description("the token does not name its key")),
                    }
                }
            },
        }
    }

    /// [`verify_jws_with`](Self::verify_jws_with) without a `typ` rule.
    #[cfg(test)]
    pub(crate) fn verify_jws(&self, token: &str, max_len: usize) -> Result<(), AuthError> {
        self.verify_jws_with(token, max_len, &TypRule::Default)
    }

    /// Decodes and checks a header segment: the index of the key it selects, and its
    /// `typ`.
    fn check_header(
        &self,
        segment: &str,
        typ: &TypRule,
    ) -> Result<(usize, Option<Box<str>>), AuthError> {
        let header_bytes = compact::decode(segment).map_err(|_| malformed())?;
        let header = compact::parse_header(&header_bytes).map_err(|e| match e {
            ParseError::DuplicateMember => AuthError::invalid_token("duplicate_header_member")
                .with_description("the token is malformed"),
            ParseError::Malformed => malformed(),
        })?;
        let alg = header.alg.as_deref().ok_or_else(malformed)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::invalid_token("alg_none")
                .with_description("unsigned tokens are not accepted"));
        }
        if header.crit != Crit::Absent {
            return Err(AuthError::invalid_token("crit_unsupported")
                .with_description("the token requires an unsupported extension"));
        }
        if header.b64 {
            return Err(AuthError::invalid_token("b64_unsupported")
                .with_description("the token requires an unsupported extension"));
        }
        if !typ.allows(header.typ.as_deref()) {
            return Err(AuthError::invalid_token("typ_mismatch")
                .with_description("the token is not of the expected type"));
        }
        let index = self.select_index(header.kid.as_deref(), alg)?;
        if alg != self.keys[index].algorithm().name() {
            return Err(AuthError::invalid_token("alg_mismatch")
                .with_description("the token's algorithm is not the key's"));
        }
        Ok((index, header.typ.map(|t| t.into_owned().into_boxed_str())))
    }

    /// Verifies a compact JWS: length cap, strict parsing, header rules, key
    /// selection and the signature. Claims are not looked at (see
    /// [`JwtAuthenticator`](crate::JwtAuthenticator) for those).
    ///
    /// # Errors
    ///
    /// `invalid_token` with a precise reason: `token_too_large`, `malformed_token`,
    /// `duplicate_header_member`, `alg_none`, `alg_mismatch`, `unknown_kid`,
    /// `missing_kid`, `kid_too_long`, `crit_unsupported`, `b64_unsupported`,
    /// `typ_mismatch`, `bad_signature`.
    #[cfg(test)]
    pub(crate) fn verify_jws_with(
        &self,
        token: &str,
        max_len: usize,
        typ: &TypRule,
    ) -> Result<(), AuthError> {
        if token.len() > max_len {
            return Err(AuthError::invalid_token("token_too_large")
                .with_description("the token is too large"));
        }
        let segments = compact::split(token).map_err(|_| malformed())?;
        self.verify_segments(&segments, typ, None)?;
        compact::decode(segments.payload).map_err(|_| malformed())?;
        Ok(())
    }

    /// Checks the header (under `typ` and, when given, an issuer's `algorithms`),
    /// selects the key and verifies the signature of a split token. Returns whether
    /// the key was a shared secret.
    pub(crate) fn verify_segments(
        &self,
        segments: &Segments<'_>,
        typ: &TypRule,
        algorithms: Option<&[Algorithm]>,
    ) -> Result<bool, AuthError> {
        let remembered = self.headers.get(segments.header, |key, header_typ| {
            typ.allows(header_typ).then_some(key)
        });
        let (key_index, fresh) = match remembered {
            Some(Some(key)) => (key, None),
            // A remembered header whose `typ` this verifier refuses: the full path
            // says why.
            Some(None) | None => {
                let (key, header_typ) = self.check_header(segments.header, typ)?;
                (key, Some(header_typ))
            }
        };
        let key = &self.keys[key_index];
        if algorithms.is_some_and(|allowed| !allowed.contains(&key.algorithm())) {
            return Err(AuthError::invalid_token("alg_not_allowed")
                .with_description("the token's algorithm is not accepted from its issuer"));
        }
        let verified = compact::with_decoded(segments.signature, |signature| {
            key.verify(segments.signing_input.as_bytes(), signature)
        })
        .map_err(|_| malformed())?;
        if !verified {
            return Err(AuthError::invalid_token("bad_signature")
                .with_description("the token's signature is invalid"));
        }
        if let Some(header_typ) = fresh {
            self.headers
                .remember(segments.header, key_index, header_typ);
        }
        Ok(key.is_symmetric())
    }
}
