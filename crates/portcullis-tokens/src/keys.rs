//! Signing keys: generation, PKCS#8 PEM persistence, `kid`s and public JWKs.

use std::fmt;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use portcullis_jwt::Key;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, ErrorKind, random};

/// The algorithms an issuer signs with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// Ed25519 (`EdDSA`, RFC 8037). The default: small keys, fast, deterministic.
    EdDsa,
    /// ECDSA over P-256 with SHA-256 (`ES256`, RFC 7518 §3.4).
    Es256,
    /// HMAC-SHA-256 (`HS256`) with a shared secret of at least 32 bytes. Symmetric
    /// keys are never published in the JWK Set, so only services holding the secret
    /// can verify.
    Hs256,
}

impl SigningAlgorithm {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }

    /// The matching `jsonwebtoken` algorithm.
    pub fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Hs256 => Algorithm::HS256,
        }
    }

    /// The matching [`portcullis_jwt::Algorithm`], which a verifier pins the key to.
    pub(crate) fn to_jwt(self) -> portcullis_jwt::Algorithm {
        match self {
            Self::EdDsa => portcullis_jwt::Algorithm::EdDSA,
            Self::Es256 => portcullis_jwt::Algorithm::ES256,
            Self::Hs256 => portcullis_jwt::Algorithm::HS256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The smallest HMAC secret accepted: the output size of SHA-256 (RFC 7518 §3.2).
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// A private signing key with its `kid`.
///
/// Asymmetric keys get an RFC 7638 JWK thumbprint as `kid` (stable across restarts
/// when the key is persisted); HMAC keys get a random `kid`, because a thumbprint of a
/// symmetric key is a hash of the secret. [`with_kid`](Self::with_kid) overrides it.
///
/// [`verification_key`](Self::verification_key) is the matching
/// [`portcullis_jwt::Key`], for a verifier in the same process.
///
/// `Debug` never prints key material.
///
/// ```
/// use portcullis_tokens::{SigningAlgorithm, SigningKey};
///
/// let key = SigningKey::generate(SigningAlgorithm::EdDsa)?;
/// let pem = key.to_pkcs8_pem()?; // persist this (it is a secret)
/// let again = SigningKey::from_pkcs8_pem(pem.as_bytes())?;
/// assert_eq!(key.kid(), again.kid());
/// assert!(!format!("{key:?}").contains(pem.as_str()));
/// # Ok::<(), portcullis_tokens::Error>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    alg: SigningAlgorithm,
    kid: Box<str>,
    /// PKCS#8 DER for asymmetric keys, the secret for HMAC.
    material: Zeroizing<Vec<u8>>,
    encoding: EncodingKey,
    /// The public JWK members (`kty`, `crv`, `x`, `y`) for asymmetric keys.
    public: Option<Map<String, Value>>,
    /// What verifies this key's signatures, with the same `kid`.
    verification: Key,
}

impl SigningKey {
    /// Generates a new key with the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if the crypto library fails to generate a key.
    pub fn generate(alg: SigningAlgorithm) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        match alg {
            SigningAlgorithm::EdDsa => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| Error::new(ErrorKind::Key, "ed25519 key generation failed"))?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            SigningAlgorithm::Es256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| Error::new(ErrorKind::Key, "p-256 key generation failed"))?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            SigningAlgorithm::Hs256 => Self::hs256(&random::bytes::<32>()),
        }
    }

    /// An `HS256` key from a shared secret.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if the secret is shorter than [`MIN_HMAC_SECRET_LEN`] bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(Error::new(
                ErrorKind::Key,
                "hmac secret shorter than 32 bytes",
            ));
        }
        let kid: Box<str> = random::b64::<16>().into();
        let verification = Key::hmac(portcullis_jwt::Algorithm::HS256, secret)
            .and_then(|key| key.with_kid(&kid))
            .map_err(|e| Error::new(ErrorKind::Key, "invalid hmac secret").with_source(e))?;
        Ok(Self {
            alg: SigningAlgorithm::Hs256,
            kid,
            material: Zeroizing::new(secret.to_vec()),
            encoding: EncodingKey::from_secret(secret),
            public: None,
            verification,
        })
    }

    /// Loads an Ed25519 or P-256 private key from PKCS#8 DER (v1 or v2). The algorithm
    /// follows from the key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if the bytes are not an Ed25519 or P-256 PKCS#8 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            // Re-encode as v2 so the signer sees a uniform, checked document.
            let v2 = pair
                .to_pkcs8()
                .map_err(|_| Error::new(ErrorKind::Key, "ed25519 key encoding failed"))?;
            let mut public = Map::new();
            public.insert("kty".into(), "OKP".into());
            public.insert("crv".into(), "Ed25519".into());
            public.insert(
                "x".into(),
                URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()).into(),
            );
            return Self::asymmetric(SigningAlgorithm::EdDsa, v2.as_ref(), public);
        }
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            let point = pair.public_key().as_ref();
            // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
            if point.len() != 65 || point[0] != 4 {
                return Err(Error::new(
                    ErrorKind::Key,
                    "unexpected p-256 public key form",
                ));
            }
            let mut public = Map::new();
            public.insert("kty".into(), "EC".into());
            public.insert("crv".into(), "P-256".into());
            public.insert("x".into(), URL_SAFE_NO_PAD.encode(&point[1..33]).into());
            public.insert("y".into(), URL_SAFE_NO_PAD.encode(&point[33..]).into());
            return Self::asymmetric(SigningAlgorithm::Es256, der, public);
        }
        Err(Error::new(
            ErrorKind::Key,
            "not an ed25519 or p-256 pkcs#8 private key",
        ))
    }

    /// Loads an Ed25519 or P-256 private key from a PEM `PRIVATE KEY` (PKCS#8) block.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if the input is not a single PKCS#8 PEM block holding such a key.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, Error> {
        let block = pem::parse(pem)
            .map_err(|e| Error::new(ErrorKind::Key, "invalid pem").with_source(e))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(Error::new(
                ErrorKind::Key,
                "pem block is not a pkcs#8 private key",
            ));
        }
        let der = Zeroizing::new(block.into_contents());
        Self::from_pkcs8_der(&der)
    }

    /// The key as a PKCS#8 PEM `PRIVATE KEY` block, to persist. This is a secret.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] for HMAC keys, which have no PKCS#8 form (store the secret).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        if self.alg == SigningAlgorithm::Hs256 {
            return Err(Error::new(ErrorKind::Key, "hmac keys have no pkcs#8 form"));
        }
        let block = pem::Pem::new("PRIVATE KEY", self.material.to_vec());
        Ok(Zeroizing::new(pem::encode(&block)))
    }

    fn asymmetric(
        alg: SigningAlgorithm,
        der: &[u8],
        public: Map<String, Value>,
    ) -> Result<Self, Error> {
        let encoding = match alg {
            SigningAlgorithm::EdDsa => EncodingKey::from_ed_der(der),
            _ => EncodingKey::from_ec_der(der),
        };
        let kid: Box<str> = thumbprint(&public).into();
        // The verifier reads the public half the way a remote one reads the JWK Set.
        let verification = Key::from_jwk_value(&Value::Object(public.clone()), Some(alg.to_jwt()))
            .and_then(|key| key.with_kid(&kid))
            .map_err(|e| Error::new(ErrorKind::Key, "invalid public key").with_source(e))?;
        Ok(Self {
            alg,
            kid,
            material: Zeroizing::new(der.to_vec()),
            encoding,
            public: Some(public),
            verification,
        })
    }

    /// Replaces the `kid`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if `kid` is empty or longer than 128 bytes (verifiers cap it).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Result<Self, Error> {
        let kid = kid.into();
        if kid.is_empty() || kid.len() > 128 {
            return Err(Error::new(ErrorKind::Key, "kid must be 1 to 128 bytes"));
        }
        self.verification = self
            .verification
            .with_kid(&kid)
            .map_err(|e| Error::new(ErrorKind::Key, "invalid kid").with_source(e))?;
        self.kid = kid.into();
        Ok(self)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The public JWK (RFC 7517) with `use: sig`, `alg` and `kid`, or `None` for HMAC
    /// keys, which are never published.
    pub fn public_jwk(&self) -> Option<Value> {
        let mut jwk = self.public.clone()?;
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), self.alg.as_str().into());
        jwk.insert("kid".into(), self.kid.as_ref().into());
        Some(Value::Object(jwk))
    }

    /// The key that verifies this key's signatures, pinned to its algorithm and named
    /// by its `kid`: give it to
    /// [`JwtAuthenticatorBuilder::key`](portcullis_jwt::JwtAuthenticatorBuilder::key).
    ///
    /// # Security
    ///
    /// For an HMAC key this holds the shared secret: keep it in the process.
    pub fn verification_key(&self) -> Key {
        self.verification.clone()
    }

    /// A `jsonwebtoken` key that verifies this key's signatures (the public key, or the
    /// HMAC secret).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] if the public components cannot be loaded.
    pub fn decoding_key(&self) -> Result<DecodingKey, Error> {
        let component = |name: &str| {
            self.public
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let key = match self.alg {
            SigningAlgorithm::EdDsa => DecodingKey::from_ed_components(component("x")),
            SigningAlgorithm::Es256 => {
                DecodingKey::from_ec_components(component("x"), component("y"))
            }
            SigningAlgorithm::Hs256 => Ok(DecodingKey::from_secret(&self.material)),
        };
        key.map_err(|e| Error::new(ErrorKind::Key, "invalid public key").with_source(e))
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("material", &"<redacted>")
            .finish()
    }
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order,
/// no whitespace, base64url.
fn thumbprint(public: &Map<String, Value>) -> String {
    // serde_json's Map is a BTreeMap here (no preserve_order), so keys come out sorted;
    // only the required members are present.
    let canonical = json!(public).to_string();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
        let mut public = Map::new();
        public.insert("crv".into(), "Ed25519".into());
        public.insert("kty".into(), "OKP".into());
        public.insert(
            "x".into(),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        );
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn short_hmac_secret_is_refused() {
        let err = SigningKey::hs256(&[7u8; 31]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Key);
        assert!(SigningKey::hs256(&[7u8; 32]).is_ok());
    }

    #[test]
    fn pem_round_trip_keeps_kid_for_both_curves() {
        for alg in [SigningAlgorithm::EdDsa, SigningAlgorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let again = SigningKey::from_pkcs8_pem(pem.as_bytes()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.kid(), key.kid());
            assert_eq!(again.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn garbage_pem_is_a_key_error() {
        for input in [
            &b"not pem"[..],
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert_eq!(
                SigningKey::from_pkcs8_pem(input).unwrap_err().kind(),
                ErrorKind::Key
            );
        }
    }

    #[test]
    fn verification_key_carries_kid_and_algorithm() {
        for alg in [
            SigningAlgorithm::EdDsa,
            SigningAlgorithm::Es256,
            SigningAlgorithm::Hs256,
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let verifier = key.verification_key();
            assert_eq!(verifier.kid(), Some(key.kid()));
            assert_eq!(verifier.algorithm(), alg.to_jwt());
            assert_eq!(verifier.is_symmetric(), alg == SigningAlgorithm::Hs256);

            let renamed = key.with_kid("k-2").unwrap();
            assert_eq!(renamed.verification_key().kid(), Some("k-2"));
        }
    }

    #[test]
    fn debug_redacts_material() {
        let key = SigningKey::hs256(b"0123456789abcdef0123456789abcdef").unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("0123456789abcdef"));
        assert!(key.to_pkcs8_pem().is_err());
        assert!(key.public_jwk().is_none());
    }
}
