//! Reading a JWK Set (RFC 7517 §5) into a [`KeySet`], skipping every key that is not
//! fit to verify signatures.
//!
//! # What is skipped (each with a `WARN` under target `portcullis::jwks`)
//!
//! - `use` other than `sig`; `key_ops` without `verify`;
//! - an unknown `kty`, an `alg` this crate does not verify (`RSA-OAEP`, `ES256K`,
//!   `A256GCM`, …), a curve other than P-256, P-384, P-521 and Ed25519;
//! - symmetric keys (`kty` `oct`): a shared secret published at a URL is no secret;
//! - private key material (`d`);
//! - RSA under 2048 bits, an even public exponent or 1, and moduli carrying the ROCA
//!   fingerprint (CVE-2017-15361);
//! - EC points not on their curve, malformed members;
//! - every key of a `kid` that more than one usable key claims (which one the issuer
//!   meant is unknowable, so neither is trusted);
//! - keys past the 100th.
//!
//! # Algorithm when `alg` is absent
//!
//! `alg` is optional in a JWK, and several providers omit it. It is inferred only
//! where a key admits one algorithm this crate verifies: `EC` with `crv` `P-256` is
//! `ES256`, `P-384` is `ES384` and `P-521` is `ES512`; `OKP` with `Ed25519` is `EdDSA`. An `RSA` key
//! without `alg` is pinned to `RS256`, the algorithm OpenID Connect requires every
//! provider to support and the one such providers sign with; a PS256 token under
//! that key is then refused (`alg_mismatch`), which fails closed. Whatever the
//! inference, the key is pinned to one algorithm and the token's header never
//! chooses another.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::{JwksError, JwksErrorKind};
use crate::{
    json::{self, JsonError},
    key::{Algorithm, Key},
    keyset::KeySet,
};

/// The most keys read from one set.
pub(crate) const MAX_KEYS: usize = 100;

/// How a set is read. Remote sets never carry shared secrets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) allow_symmetric: bool,
}

impl Policy {
    pub(crate) const REMOTE: Self = Self {
        allow_symmetric: false,
    };
}

/// A key set and the digests of its keys (to tell whether a refresh changed it).
#[derive(Debug)]
pub(crate) struct Ingested {
    pub(crate) set: KeySet,
    /// One digest per key (kid, alg and public material), sorted.
    pub(crate) digests: Vec<[u8; 32]>,
    pub(crate) skipped: usize,
}

fn skip(source: &str, kid: Option<&str>, reason: &str) {
    tracing::warn!(
        target: "portcullis::jwks",
        source,
        kid = kid.unwrap_or("-"),
        reason,
        "skipping a key of the JWK Set"
    );
}

/// Reads a JWK Set document.
///
/// # Errors
///
/// [`JwksErrorKind::Malformed`] when the body is not a JSON object with a `keys`
/// array (duplicate members refused), or mixes shared secrets and public keys;
/// [`JwksErrorKind::NoUsableKeys`] when no key survives.
pub(crate) fn ingest(body: &[u8], policy: Policy, source: &str) -> Result<Ingested, JwksError> {
    let malformed = |detail| JwksError::new(JwksErrorKind::Malformed, detail);
    let doc = json::parse_object(body).map_err(|e| match e {
        JsonError::Duplicate => malformed("the JWK Set has duplicate members"),
        JsonError::Malformed => malformed("the JWK Set is not a JSON object"),
    })?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(malformed("the JWK Set has no keys array"));
    };
    if entries.len() > MAX_KEYS {
        tracing::warn!(
            target: "portcullis::jwks",
            source,
            keys = entries.len(),
            "the JWK Set has over {MAX_KEYS} keys; reading the first {MAX_KEYS}"
        );
    }

    let mut usable: Vec<(Key, [u8; 32])> = Vec::new();
    let mut skipped = entries.len().saturating_sub(MAX_KEYS);
    for entry in entries.iter().take(MAX_KEYS) {
        let Some(jwk) = entry.as_object() else {
            skip(source, None, "not a JSON object");
            skipped += 1;
            continue;
        };
        match read_key(jwk, policy) {
            Ok(key) => usable.push((key, digest(jwk))),
            Err(reason) => {
                skip(source, jwk.get("kid").and_then(Value::as_str), reason);
                skipped += 1;
            }
        }
    }

    // A kid is ambiguous when two entries meant for signatures claim it, usable or
    // not: the issuer may have signed with either.
    let mut claims: HashMap<&str, usize> = HashMap::new();
    for jwk in entries.iter().take(MAX_KEYS).filter_map(Value::as_object) {
        if for_signatures(jwk)
            && let Some(kid) = jwk.get("kid").and_then(Value::as_str)
        {
            *claims.entry(kid).or_default() += 1;
        }
    }
    let duplicated: Vec<Box<str>> = claims
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(kid, _)| kid.into())
        .collect();
    if !duplicated.is_empty() {
        usable.retain(|(key, _)| {
            let dup = key
                .kid()
                .is_some_and(|k| duplicated.iter().any(|d| **d == *k));
            if dup {
                skip(source, key.kid(), "several keys share this kid");
                skipped += 1;
            }
            !dup
        });
    }

    if usable.is_empty() {
        return Err(JwksError::new(
            JwksErrorKind::NoUsableKeys,
            "no key of the set can verify signatures",
        ));
    }
    let symmetric = usable.iter().filter(|(k, _)| k.is_symmetric()).count();
    if symmetric != 0 && symmetric != usable.len() {
        return Err(malformed("the set mixes shared secrets and public keys"));
    }
    let mut digests: Vec<[u8; 32]> = usable.iter().map(|(_, d)| *d).collect();
    digests.sort_unstable();
    let set = KeySet::new(usable.into_iter().map(|(k, _)| k))
        .map_err(|_| malformed("the set repeats a kid"))?;
    Ok(Ingested {
        set,
        digests,
        skipped,
    })
}

/// Whether the entry declares itself fit for signatures: `use` absent or `sig`,
/// `key_ops` absent or holding `verify`.
fn for_signatures(jwk: &Map<String, Value>) -> bool {
    use_is_sig(jwk).is_ok()
}

fn use_is_sig(jwk: &Map<String, Value>) -> Result<(), &'static str> {
    if let Some(key_use) = jwk.get("use")
        && key_use != "sig"
    {
        return Err("use is not sig");
    }
    if let Some(ops) = jwk.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"))
    {
        return Err("key_ops lacks verify");
    }
    Ok(())
}

fn read_key(jwk: &Map<String, Value>, policy: Policy) -> Result<Key, &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    use_is_sig(jwk)?;
    let kty = text("kty").ok_or("no kty")?;
    match kty {
        "RSA" | "EC" | "OKP" => {}
        "oct" if policy.allow_symmetric => {}
        "oct" => return Err("a shared secret (oct) in a remote set"),
        _ => return Err("unknown kty"),
    }
    if ["d", "p", "q", "dp", "dq", "qi", "oth"]
        .iter()
        .any(|m| jwk.contains_key(*m))
    {
        return Err("private key material");
    }
    let alg = match jwk.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name).ok_or("unsupported alg")?,
        Some(_) => return Err("alg is not a string"),
        None => infer_alg(kty, text("crv")).ok_or("no alg, and none can be inferred")?,
    };
    if kty == "RSA" {
        let n = text("n")
            .and_then(|n| crate::compact::B64.decode(n).ok())
            .ok_or("malformed modulus")?;
        if roca::fingerprinted(&n) {
            return Err("RSA modulus with the ROCA fingerprint (CVE-2017-15361)");
        }
    }
    Key::from_jwk_value(&Value::Object(jwk.clone()), Some(alg)).map_err(|e| match e.kind() {
        crate::KeyErrorKind::Weak => {
            "weak key (RSA under 2048 bits, exponent 1 or even, short secret)"
        }
        crate::KeyErrorKind::Malformed => "malformed key (or an EC point off its curve)",
        crate::KeyErrorKind::WrongType => "kty or crv does not fit alg",
        crate::KeyErrorKind::WrongUse => "not for signature verification",
        crate::KeyErrorKind::PrivateKeyMaterial => "private key material",
        crate::KeyErrorKind::InvalidKid => "kid empty or too long",
        _ => "unusable key",
    })
}

/// The algorithm a JWK without `alg` is pinned to; see the module docs.
pub(crate) fn infer_alg(kty: &str, crv: Option<&str>) -> Option<Algorithm> {
    match (kty, crv) {
        ("EC", Some("P-256")) => Some(Algorithm::ES256),
        ("EC", Some("P-384")) => Some(Algorithm::ES384),
        ("EC", Some("P-521")) => Some(Algorithm::ES512),
        ("OKP", Some("Ed25519")) => Some(Algorithm::EdDSA),
        ("RSA", _) => Some(Algorithm::RS256),
        _ => None,
    }
}

/// A digest of what makes the key: `kty`, `alg`, `kid`, `crv` and the public
/// members. Two fetches holding equal digests hold equal keys.
fn digest(jwk: &Map<String, Value>) -> [u8; 32] {
    let mut h = Sha256::new();
    for name in ["kty", "alg", "kid", "crv", "n", "e", "x", "y", "k"] {
        let value = jwk.get(name).and_then(Value::as_str).unwrap_or("");
        h.update((value.len() as u64).to_be_bytes());
        h.update(value.as_bytes());
    }
    h.finalize().into()
}

/// The ROCA test (Nemec et al., CCS 2017): moduli made by the vulnerable Infineon
/// library are, modulo each small prime `p`, a power of 65537. A random modulus
/// passes that for every prime below 170 with negligible probability.
pub(crate) mod roca {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];

    fn rem(n: &[u8], p: u32) -> u32 {
        n.iter()
            .fold(0u32, |acc, &b| ((acc << 8) | u32::from(b)) % p)
    }

    /// Whether `r` is in the subgroup of `(Z/p)*` generated by 65537.
    fn in_subgroup(r: u32, p: u32) -> bool {
        let g = 65537 % p;
        let mut x = 1u32;
        loop {
            if x == r {
                return true;
            }
            x = x * g % p;
            if x == 1 {
                return false;
            }
        }
    }

    pub(crate) fn fingerprinted(modulus: &[u8]) -> bool {
        modulus.iter().any(|&b| b != 0) && PRIMES.iter().all(|&p| in_subgroup(rem(modulus, p), p))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn random_moduli_are_not_fingerprinted() {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..2000 {
                let n: Vec<u8> = (0..256)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                assert!(!super::fingerprinted(&n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &str = r#"{"kty":"EC","crv":"P-256","kid":"a",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn set(keys: &[&str]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    #[test]
    fn ec_key_without_alg_is_pinned_to_es256() {
        let got = ingest(&set(&[P256]), Policy::REMOTE, "t").unwrap();
        assert_eq!(got.set.keys()[0].algorithm(), Algorithm::ES256);
    }

    #[test]
    fn unusable_keys_are_skipped_and_counted() {
        let enc = P256.replace(r#""kid":"a""#, r#""kid":"b","use":"enc""#);
        let ops = P256.replace(r#""kid":"a""#, r#""kid":"c","key_ops":["sign"]"#);
        let oct = r#"{"kty":"oct","alg":"HS256","kid":"d","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        let unknown = r#"{"kty":"XYZ","kid":"e"}"#;
        let p521 = P256
            .replace("P-256", "P-521")
            .replace(r#""kid":"a""#, r#""kid":"f""#);
        let got = ingest(
            &set(&[P256, &enc, &ops, oct, unknown, &p521, "42"]),
            Policy::REMOTE,
            "t",
        )
        .unwrap();
        assert_eq!(got.set.len(), 1);
        assert_eq!(got.skipped, 6);
    }

    #[test]
    fn duplicate_kid_drops_every_claimant() {
        // A broken twin makes the kid ambiguous too; an `enc` twin does not.
        let broken = P256.replace("f83OJ3D2", "AAAA");
        let enc_twin = P256.replace(r#""kid":"a""#, r#""kid":"z","use":"enc""#);
        let other = P256.replace(r#""kid":"a""#, r#""kid":"z""#);
        let got = ingest(
            &set(&[P256, &broken, &other, &enc_twin]),
            Policy::REMOTE,
            "t",
        )
        .unwrap();
        assert_eq!(got.set.len(), 1);
        assert_eq!(got.set.keys()[0].kid(), Some("z"));
    }

    #[test]
    fn a_set_of_nothing_usable_is_an_error() {
        let enc = P256.replace(r#""kid":"a""#, r#""kid":"b","use":"enc""#);
        assert_eq!(
            ingest(&set(&[&enc]), Policy::REMOTE, "t")
                .unwrap_err()
                .kind(),
            JwksErrorKind::NoUsableKeys
        );
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"keys\":{}}",
            b"{\"keys\":[],\"keys\":[]}",
            b"nope",
        ] {
            assert_eq!(
                ingest(bad, Policy::REMOTE, "t").unwrap_err().kind(),
                JwksErrorKind::Malformed
            );
        }
    }

    #[test]
    fn digest_ignores_member_order_and_extras() {
        let reordered = r#"{"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"a","crv":"P-256","kty":"EC",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","x5t":"whatever"}"#;
        let a = ingest(&set(&[P256]), Policy::REMOTE, "t").unwrap();
        let b = ingest(&set(&[reordered]), Policy::REMOTE, "t").unwrap();
        assert_eq!(a.digests, b.digests);
    }

    #[test]
    fn infers_only_unambiguous_algorithms() {
        assert_eq!(infer_alg("EC", Some("P-384")), Some(Algorithm::ES384));
        assert_eq!(infer_alg("OKP", Some("Ed25519")), Some(Algorithm::EdDSA));
        assert_eq!(infer_alg("OKP", Some("X25519")), None);
        assert_eq!(infer_alg("EC", Some("P-521")), Some(Algorithm::ES512));
        assert_eq!(infer_alg("EC", Some("secp256k1")), None);
        assert_eq!(infer_alg("RSA", None), Some(Algorithm::RS256));
        assert_eq!(infer_alg("oct", None), None);
    }
}
