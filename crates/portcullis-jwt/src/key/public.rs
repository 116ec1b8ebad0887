//! Public keys from PEM and DER, parsed by aws-lc-rs when built.

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};

use super::{Algorithm, Family, Key, MIN_RSA_BITS, Material, err, family, rsa};
use crate::error::{KeyError, KeyErrorKind};

impl Key {
    /// A public key from PEM: `PUBLIC KEY` (SubjectPublicKeyInfo) for RSA, EC and
    /// Ed25519, or `RSA PUBLIC KEY` (PKCS#1) for RSA.
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::WrongType`] for an HMAC `alg` or a key of another type;
    /// [`KeyErrorKind::Malformed`] when the PEM or the key does not parse (private
    /// keys and certificates included: give the public key);
    /// [`KeyErrorKind::Weak`] for RSA under 2048 bits.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let block = pem::parse(pem.as_ref())
            .map_err(|_| err(KeyErrorKind::Malformed, "the PEM does not parse"))?;
        match block.tag() {
            "PUBLIC KEY" => Self::from_der(alg, block.contents()),
            "RSA PUBLIC KEY" if family(alg) == Family::Rsa => Self::from_der(alg, block.contents()),
            "RSA PUBLIC KEY" => Err(err(
                KeyErrorKind::WrongType,
                "an RSA key cannot serve this algorithm",
            )),
            _ => Err(err(
                KeyErrorKind::Malformed,
                "expected a PEM PUBLIC KEY or RSA PUBLIC KEY block",
            )),
        }
    }

    /// A public key from DER: SubjectPublicKeyInfo, or PKCS#1 `RSAPublicKey` for RSA,
    /// or the raw public point / 32-byte Ed25519 key.
    ///
    /// # Errors
    ///
    /// As for [`from_pem`](Self::from_pem).
    pub fn from_der(alg: Algorithm, der: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let der = der.as_ref();
        match family(alg) {
            Family::Hmac => Err(err(
                KeyErrorKind::WrongType,
                "an HMAC algorithm needs a shared secret, not a public key",
            )),
            Family::Rsa => {
                let info = rsa::inspect(der)?;
                check_rsa(&info)?;
                Ok(Self::from_material(
                    alg,
                    Material::AwsLc(parse_public(alg, der)?),
                ))
            }
            Family::Ec | Family::Ed => {
                if rsa::inspect(der).is_ok() {
                    return Err(err(
                        KeyErrorKind::WrongType,
                        "an RSA key cannot serve this algorithm",
                    ));
                }
                Self::public(alg, der)
            }
        }
    }

    /// An EC or Ed25519 key from SubjectPublicKeyInfo DER or the raw public key.
    pub(super) fn public(alg: Algorithm, der: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        Ok(Self::from_material(
            alg,
            Material::AwsLc(parse_public(alg, der.as_ref())?),
        ))
    }
}

fn public_algorithm(alg: Algorithm) -> &'static dyn sig::VerificationAlgorithm {
    match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &sig::ECDSA_P521_SHA512_FIXED,
        // HMAC never reaches here; EdDSA is the rest.
        _ => &sig::ED25519,
    }
}

/// Parses a public key with aws-lc-rs once, when the key is built: a check of its
/// encoding, its curve and its point, and what every verification then uses.
fn parse_public(alg: Algorithm, der: &[u8]) -> Result<ParsedPublicKey, KeyError> {
    ParsedPublicKey::new(public_algorithm(alg), der).map_err(|_| {
        err(
            KeyErrorKind::Malformed,
            "the public key does not parse for this algorithm",
        )
    })
}

fn check_rsa(info: &rsa::Info) -> Result<(), KeyError> {
    if info.modulus_bits < MIN_RSA_BITS {
        return Err(err(
            KeyErrorKind::Weak,
            "the RSA modulus is under 2048 bits",
        ));
    }
    if !info.exponent_ok {
        return Err(err(
            KeyErrorKind::Weak,
            "the RSA public exponent is even or 1",
        ));
    }
    Ok(())
}
