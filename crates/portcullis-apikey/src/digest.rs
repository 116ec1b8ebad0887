//! What the store keeps instead of the key: a [`KeyDigest`], made by a [`KeyHasher`].

use std::fmt;

use hmac::{Hmac, Mac};
use portcullis_core::internal::{from_hex, hex};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiKeyConfigError, ParsedKey};

/// The SHA-256 (or HMAC-SHA256) digest of a whole key, as stored.
///
/// Compared in constant time with [`ct_eq`](Self::ct_eq); `PartialEq` does the same.
/// Serialized as 64 lowercase hex digits. Its `Debug` does not print the bytes.
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// Wraps raw digest bytes (for backends reading them back).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (for backends storing them).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality (through [`subtle`]).
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        // Compared as four 64-bit words: `subtle` puts an optimisation barrier on every
        // element it compares, so four words cost far less than 32 bytes.
        self.words()[..].ct_eq(&other.words()[..]).into()
    }

    fn words(&self) -> [u64; 4] {
        std::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(word)
        })
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    ///
    /// # Errors
    ///
    /// When `text` is not exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, InvalidDigest> {
        from_hex(text).map(Self).ok_or(InvalidDigest(()))
    }
}

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for KeyDigest {}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

impl Serialize for KeyDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&hex).map_err(de::Error::custom)
    }
}

/// A digest was not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidDigest(pub(crate) ());

impl fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("api key digest must be 64 hex digits")
    }
}

impl std::error::Error for InvalidDigest {}

/// Turns keys into [`KeyDigest`]s: plain SHA-256 by default, or HMAC-SHA256 keyed with
/// a server-side pepper.
///
/// A pepper means a stolen copy of the store alone does not let anyone check guesses;
/// since keys carry 256 random bits, plain SHA-256 is already safe against brute force,
/// so the pepper is defence in depth. Changing (or adding) the pepper invalidates every
/// stored key.
///
/// ```
/// use portcullis_apikey::{KeyFormat, KeyHasher};
///
/// let format = KeyFormat::new("pk_live_").unwrap();
/// let key = format.generate().unwrap();
/// let plain = KeyHasher::sha256();
/// let peppered = KeyHasher::hmac_sha256(&[7u8; 32]).unwrap();
/// assert_ne!(plain.digest(&key.parsed()), peppered.digest(&key.parsed()));
/// assert!(KeyHasher::hmac_sha256(b"short").is_err());
/// ```
#[derive(Clone)]
pub struct KeyHasher(Kind);

#[derive(Clone)]
enum Kind {
    Sha256,
    // A keyed MAC whose state is cloned per digest: no allocation, key schedule once.
    Hmac(Box<Hmac<Sha256>>),
}

impl KeyHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self(Kind::Sha256)
    }

    /// HMAC-SHA256 with `pepper`, a server-side secret kept out of the store.
    ///
    /// # Errors
    ///
    /// When the pepper is shorter than 32 bytes.
    pub fn hmac_sha256(pepper: &[u8]) -> Result<Self, ApiKeyConfigError> {
        if pepper.len() < 32 {
            return Err(ApiKeyConfigError::new(
                "api key pepper must be at least 32 bytes",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(pepper)
            .map_err(|_| ApiKeyConfigError::new("api key pepper was refused by HMAC"))?;
        Ok(Self(Kind::Hmac(Box::new(mac))))
    }

    /// Whether a pepper is configured.
    pub fn is_peppered(&self) -> bool {
        matches!(self.0, Kind::Hmac(_))
    }

    /// The digest of a key: of its id, separator and secret (`{id}_{secret}`, 54
    /// bytes, one SHA-256 block). The prefix is configuration and the checksum is
    /// derived from the rest, so neither adds anything but cost.
    pub fn digest(&self, key: &ParsedKey<'_>) -> KeyDigest {
        self.digest_bytes(key.material())
    }

    fn digest_bytes(&self, bytes: &[u8]) -> KeyDigest {
        match &self.0 {
            Kind::Sha256 => KeyDigest(Sha256::digest(bytes).into()),
            Kind::Hmac(mac) => {
                let mut mac = (**mac).clone();
                mac.update(bytes);
                KeyDigest(mac.finalize().into_bytes().into())
            }
        }
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::sha256()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Kind::Sha256 => "KeyHasher(sha256)",
            Kind::Hmac(_) => "KeyHasher(hmac-sha256, pepper: <redacted>)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let d = KeyHasher::sha256().digest_bytes(b"abc");
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(KeyDigest::from_hex(&d.to_hex()).unwrap(), d);
        assert!(KeyDigest::from_hex("zz").is_err());
        assert!(KeyDigest::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn hmac_matches_rfc_4231_case_6() {
        // RFC 4231 test case 6 uses a 131-byte key of 0xaa.
        let h = KeyHasher::hmac_sha256(&[0xaa; 131]).unwrap();
        assert_eq!(
            h.digest_bytes(b"Test Using Larger Than Block-Size Key - Hash Key First")
                .to_hex(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(h.is_peppered());
        assert!(!format!("{h:?}").contains("aa"));
    }

    #[test]
    fn digest_covers_the_id_and_secret() {
        let format = crate::KeyFormat::new("pk_live_").unwrap();
        let key = format.generate().unwrap();
        let k = key.expose_secret();
        let material = &k.as_bytes()[8..8 + 54];
        assert_eq!(material[10], b'_');
        let expected: [u8; 32] = Sha256::digest(material).into();
        let hasher = KeyHasher::sha256();
        assert_eq!(
            hasher.digest(&format.parse(k).unwrap()).as_bytes(),
            &expected
        );
        assert_eq!(hasher.digest(&key.parsed()).as_bytes(), &expected);
    }

    #[test]
    fn serde_uses_hex() {
        let d = KeyHasher::sha256().digest_bytes(b"abc");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", d.to_hex()));
        let back: KeyDigest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<KeyDigest>("\"00\"").is_err());
    }
}
