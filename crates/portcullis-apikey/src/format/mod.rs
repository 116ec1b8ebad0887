//! The key format: `{prefix}{id}_{secret}{checksum}`.
//!
//! | part | length | alphabet | what |
//! |---|---|---|---|
//! | prefix | 2–32 | `[a-z0-9_]`, starts with a letter, ends with `_` | configured, e.g. `pk_live_` |
//! | id | 10 | base62 | public, random (~59 bits): display and store lookup |
//! | `_` | 1 | | separator |
//! | secret | 43 | base62 | 256 bits from the OS CSPRNG |
//! | checksum | 6 | base62 | CRC-32 (IEEE) of everything before it |
//!
//! Stores keep the SHA-256 (or HMAC-SHA256) of `{id}_{secret}`: see
//! [`KeyHasher::digest`](crate::KeyHasher::digest).
//!
//! A `pk_live_` key is 68 characters, for example
//! `pk_live_4QbZ0sX9aL_1kq…(43)…Zx04Qh`. The exact regular expression, for secret
//! scanners, is [`KeyFormat::regex`]; for the prefix `pk_live_`:
//!
//! ```text
//! \bpk_live_[0-9A-Za-z]{10}_[0-9A-Za-z]{49}\b
//! ```
//!
//! # Why base62
//!
//! Alphanumerics only: a double click selects the whole key, it needs no escaping in
//! URLs, headers, JSON, shells or YAML, and the `_` separators stay unambiguous (base64url
//! would put `-` and `_` inside the secret). It is denser than base32 (43 characters
//! for 256 bits instead of 52).
//!
//! # Why CRC-32
//!
//! The checksum is not a security measure (the secret is); it is there so that a
//! mistyped, truncated or corrupted key is refused before any store lookup, and so that
//! scanners can tell a real key from a look-alike string with few false positives.
//! CRC-32 *guarantees* detection of every error burst up to 32 bits: any single changed
//! character and any swap of two adjacent characters. A truncated SHA-256 would only
//! detect them with high probability, at a higher cost.

use std::fmt;

use rand::{TryRngCore, rngs::OsRng};
use zeroize::{Zeroize, Zeroizing};

use crate::ApiKeyConfigError;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the public key id, in base62 characters.
pub const ID_LEN: usize = 10;
/// Length of the encoded 256-bit secret, in base62 characters.
pub const SECRET_LEN: usize = 43;
/// Length of the encoded checksum, in base62 characters.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a key after its prefix: id, separator, secret, checksum.
pub const BODY_LEN: usize = ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const MAX_PREFIX_LEN: usize = 32;

/// How keys look: the configured prefix and the fixed layout described in the
/// [module docs](self). Generates keys and validates their shape and checksum.
///
/// ```
/// use portcullis_apikey::KeyFormat;
///
/// let format = KeyFormat::new("pk_live_").unwrap();
/// let key = format.generate().unwrap();
/// let parsed = format.parse(key.expose_secret()).unwrap();
/// assert_eq!(parsed.id(), key.id());
/// assert!(format.parse("pk_live_not-a-key").is_err());
/// assert!(KeyFormat::new("Bad Prefix").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFormat {
    prefix: Box<str>,
}

impl fmt::Debug for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFormat")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl KeyFormat {
    /// A format with `prefix`.
    ///
    /// # Errors
    ///
    /// The prefix must be 2 to 32 characters of `[a-z0-9_]`, start with a letter and
    /// end with `_` (`pk_live_`, `acme_`). That keeps keys recognisable, keeps the
    /// scanner regex free of escapes, and separates the prefix from the id.
    pub fn new(prefix: &str) -> Result<Self, ApiKeyConfigError> {
        let bytes = prefix.as_bytes();
        let ok = (2..=MAX_PREFIX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.last() == Some(&b'_')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ApiKeyConfigError::new(
                "api key prefix must be 2 to 32 characters of [a-z0-9_], start with a letter and end with '_'",
            ));
        }
        Ok(Self {
            prefix: prefix.into(),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The total length of a key in this format.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + BODY_LEN
    }

    /// The regular expression that matches exactly the keys of this format (with word
    /// boundaries), for secret scanners. The prefix needs no escaping by construction.
    ///
    /// ```
    /// let format = portcullis_apikey::KeyFormat::new("pk_live_").unwrap();
    /// assert_eq!(format.regex(), r"\bpk_live_[0-9A-Za-z]{10}_[0-9A-Za-z]{49}\b");
    /// ```
    pub fn regex(&self) -> String {
        format!(
            r"\b{}[0-9A-Za-z]{{{ID_LEN}}}_[0-9A-Za-z]{{{}}}\b",
            self.prefix,
            SECRET_LEN + CHECKSUM_LEN
        )
    }

    /// A short, non-secret rendering of key `id` for display: `pk_live_4QbZ0sX9aL_…`.
    pub fn display_hint(&self, id: &str) -> String {
        format!("{}{id}_…", self.prefix)
    }

    /// Generates a fresh key: a random id, 256 bits from the OS CSPRNG, and the
    /// checksum.
    ///
    /// # Errors
    ///
    /// When the operating system's random source fails.
    pub fn generate(&self) -> Result<SecretKey, RandomnessError> {
        let mut id = [0u8; ID_LEN];
        random_base62(&mut id)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(secret.as_mut())
            .map_err(|_| RandomnessError(()))?;
        let mut encoded = Zeroizing::new([0u8; SECRET_LEN]);
        encode_256(&secret, &mut encoded);

        let mut key = Zeroizing::new(String::with_capacity(self.key_len()));
        key.push_str(&self.prefix);
        // Both are ASCII from ALPHABET.
        key.extend(id.iter().map(|&b| b as char));
        key.push('_');
        key.extend(encoded.iter().map(|&b| b as char));
        let crc = crc32fast::hash(key.as_bytes());
        key.extend(encode_checksum(crc).iter().map(|&b| b as char));
        debug_assert_eq!(key.len(), self.key_len());
        Ok(SecretKey { key })
    }

    /// Checks the shape and checksum of `key` without touching any store.
    ///
    /// # Errors
    ///
    /// [`MalformedKey`] for a wrong prefix, length or alphabet, a missing separator or a
    /// checksum mismatch. The error never contains the key.
    pub fn parse<'a>(&self, key: &'a str) -> Result<ParsedKey<'a>, MalformedKey> {
        self.parse_bytes(key.as_bytes())
    }

    /// [`parse`](Self::parse) for a key as raw bytes, such as a header value: any
    /// byte outside the format's ASCII alphabet makes it malformed.
    ///
    /// # Errors
    ///
    /// As for [`parse`](Self::parse).
    pub fn parse_bytes<'a>(&self, key: &'a [u8]) -> Result<ParsedKey<'a>, MalformedKey> {
        let body = key
            .strip_prefix(self.prefix.as_bytes())
            .ok_or(MalformedKey(()))?;
        let body: &[u8; BODY_LEN] = body.try_into().map_err(|_| MalformedKey(()))?;
        if body[ID_LEN] != b'_' {
            return Err(MalformedKey(()));
        }
        // Every byte but the separator is ASCII alphanumeric. One pass over a fixed
        // length with no early exit: it compiles to a few vector compares.
        let mut bad = false;
        for (i, b) in body.iter().enumerate() {
            bad |= !b.is_ascii_alphanumeric() & (i != ID_LEN);
        }
        if bad {
            return Err(MalformedKey(()));
        }
        let (id, rest) = body.split_at(ID_LEN);
        let checksum = &rest[1 + SECRET_LEN..];
        let expected = crc32fast::hash(&key[..key.len() - CHECKSUM_LEN]);
        if decode_checksum(checksum) != Some(u64::from(expected)) {
            return Err(MalformedKey(()));
        }
        // Alphanumeric, so this cannot fail; the rest of the key stays bytes until
        // someone asks for it as text.
        let id = std::str::from_utf8(id).map_err(|_| MalformedKey(()))?;
        Ok(ParsedKey {
            key,
            id,
            material: &body[..ID_LEN + 1 + SECRET_LEN],
        })
    }

    /// Whether `value` starts with this format's prefix (it may still be malformed).
    pub fn has_prefix(&self, value: &str) -> bool {
        value.starts_with(&*self.prefix)
    }
}

/// A key whose shape and checksum are valid; not yet known to be genuine.
///
/// Its `Debug` shows the id only.
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    // Prefix and ASCII alphanumerics only (checked by `parse_bytes`).
    key: &'a [u8],
    id: &'a str,
    material: &'a [u8],
}

impl<'a> ParsedKey<'a> {
    /// The public key id.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The whole key (secret!).
    pub fn expose_secret(&self) -> &'a str {
        // The prefix is `[a-z0-9_]` and the rest alphanumeric: always UTF-8.
        std::str::from_utf8(self.key).expect("a parsed key is ASCII")
    }

    /// `{id}_{secret}`: what [`KeyHasher`](crate::KeyHasher) digests (secret!).
    pub(crate) fn material(&self) -> &'a [u8] {
        self.material
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A full API key, secret included. Handed out once, when the key is made.
///
/// It has no `Display`, its `Debug` prints only the public id, and its memory is
/// zeroed on drop. Read it with [`expose_secret`](Self::expose_secret) to show it to
/// its owner, once.
#[derive(Clone)]
pub struct SecretKey {
    key: Zeroizing<String>,
}

impl SecretKey {
    /// The full key. Show it to its owner once; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.key
    }

    /// The key, split into its parts (for [`KeyHasher::digest`](crate::KeyHasher::digest)).
    pub fn parsed(&self) -> ParsedKey<'_> {
        let start = self.key.len() - BODY_LEN;
        ParsedKey {
            key: self.key.as_bytes(),
            id: &self.key[start..start + ID_LEN],
            material: &self.key.as_bytes()[start..start + ID_LEN + 1 + SECRET_LEN],
        }
    }

    /// The public id inside the key.
    pub fn id(&self) -> &str {
        // Generated keys always have the layout; the id sits just before the
        // separator that precedes the secret.
        let start = self.key.len() - BODY_LEN;
        &self.key[start..start + ID_LEN]
    }

    /// The key as an `X-API-Key` (or similar) header value, marked sensitive so that
    /// HTTP/2 never indexes it in HPACK tables and debug output hides it.
    pub fn to_header_value(&self) -> http::HeaderValue {
        let mut value =
            http::HeaderValue::from_str(&self.key).expect("generated keys are visible ASCII");
        value.set_sensitive(true);
        value
    }

    /// `Bearer <key>` as an `Authorization` header value, marked sensitive.
    pub fn to_bearer_header_value(&self) -> http::HeaderValue {
        let mut text = Zeroizing::new(String::with_capacity(7 + self.key.len()));
        text.push_str("Bearer ");
        text.push_str(&self.key);
        let mut value =
            http::HeaderValue::from_str(&text).expect("generated keys are visible ASCII");
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A key failed the format check (prefix, length, alphabet or checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedKey(pub(crate) ());

impl fmt::Display for MalformedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed api key")
    }
}

impl std::error::Error for MalformedKey {}

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomnessError(pub(crate) ());

impl fmt::Display for RandomnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random source failed")
    }
}

impl std::error::Error for RandomnessError {}

/// Fills `out` with uniformly random base62 characters (rejection sampling).
fn random_base62(out: &mut [u8]) -> Result<(), RandomnessError> {
    let mut buf = [0u8; 32];
    let mut filled = 0;
    while filled < out.len() {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|_| RandomnessError(()))?;
        for &b in &buf {
            // 248 = 4 * 62: accepting only b < 248 keeps `b % 62` uniform.
            if b < 248 {
                out[filled] = ALPHABET[usize::from(b % 62)];
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Encodes a 256-bit big-endian number as exactly 43 base62 digits (62^43 > 2^256).
fn encode_256(bytes: &[u8; 32], out: &mut [u8; SECRET_LEN]) {
    let mut num = *bytes;
    for slot in out.iter_mut().rev() {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    num.zeroize();
}

fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

fn digit(b: u8) -> Option<u64> {
    Some(u64::from(match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'Z' => b - b'A' + 10,
        b'a'..=b'z' => b - b'a' + 36,
        _ => return None,
    }))
}

fn decode_checksum(chars: &[u8]) -> Option<u64> {
    // Six digits stay below 62^6 < 2^36: no overflow.
    chars
        .iter()
        .try_fold(0u64, |acc, &b| Some(acc * 62 + digit(b)?))
}

#[cfg(test)]
mod tests;
