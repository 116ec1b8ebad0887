use super::*;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}{name}")).unwrap()
}

#[test]
fn hmac_secret_shorter_than_hash_is_weak() {
    for (alg, len) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let e = Key::hmac(alg, vec![1; len - 1]).unwrap_err();
        assert_eq!(e.kind(), KeyErrorKind::Weak);
        assert!(Key::hmac(alg, vec![1; len]).is_ok());
    }
}

#[test]
fn rsa_1024_is_weak() {
    let e = Key::from_pem(Algorithm::RS256, read("test-only-rsa1024-public.pem")).unwrap_err();
    assert_eq!(e.kind(), KeyErrorKind::Weak);
}

#[test]
fn rsa_2048_parses_from_spki_pem_pkcs1_pem_and_der() {
    for alg in [Algorithm::RS256, Algorithm::PS512] {
        Key::from_pem(alg, read("test-only-rsa2048-public.pem")).unwrap();
        Key::from_pem(alg, read("test-only-rsa2048-public-pkcs1.pem")).unwrap();
        Key::from_der(alg, read("test-only-rsa2048-public.der")).unwrap();
    }
}

#[test]
fn rsa_modulus_is_measured_from_der() {
    let der = read("test-only-rsa2048-public.der");
    let info = rsa::inspect(&der).unwrap();
    assert_eq!(info.modulus_bits, 2048);
    assert!(info.exponent_ok);
}

#[test]
fn jwk_rsa_components_round_trip_through_der() {
    let der = rsa::encode_public_key(&[0xc5; 256], &[1, 0, 1]);
    let info = rsa::inspect(&der).unwrap();
    assert_eq!(info.modulus_bits, 2048);
    let small = rsa::encode_public_key(&[0xc5; 128], &[1, 0, 1]);
    assert_eq!(rsa::inspect(&small).unwrap().modulus_bits, 1024);
    let e1 = rsa::encode_public_key(&[0xc5; 256], &[1]);
    assert!(!rsa::inspect(&e1).unwrap().exponent_ok);
}

#[test]
fn ec_and_ed_keys_parse_and_pin_their_curve() {
    Key::from_pem(Algorithm::ES256, read("test-only-p256-public.pem")).unwrap();
    Key::from_der(Algorithm::ES256, read("test-only-p256-public.der")).unwrap();
    Key::from_pem(Algorithm::ES384, read("test-only-p384-public.pem")).unwrap();
    Key::from_pem(Algorithm::EdDSA, read("test-only-ed25519-public.pem")).unwrap();
    Key::from_der(Algorithm::EdDSA, read("test-only-ed25519-public.der")).unwrap();
    // A P-384 key cannot serve ES256, nor an RSA key EdDSA.
    assert!(Key::from_pem(Algorithm::ES256, read("test-only-p384-public.pem")).is_err());
    assert_eq!(
        Key::from_pem(Algorithm::EdDSA, read("test-only-rsa2048-public.pem"))
            .unwrap_err()
            .kind(),
        KeyErrorKind::WrongType
    );
}

#[test]
fn ec_point_off_the_curve_is_malformed() {
    let mut point = vec![4u8];
    point.extend_from_slice(&[1; 64]);
    let e = Key::from_der(Algorithm::ES256, point).unwrap_err();
    assert_eq!(e.kind(), KeyErrorKind::Malformed);
}

#[test]
fn private_key_pem_is_refused() {
    let e = Key::from_pem(Algorithm::ES256, read("test-only-p256-private.pem")).unwrap_err();
    assert_eq!(e.kind(), KeyErrorKind::Malformed);
}

#[test]
fn public_key_never_serves_hmac_and_secret_never_serves_rsa() {
    assert_eq!(
        Key::from_pem(Algorithm::HS256, read("test-only-rsa2048-public.pem"))
            .unwrap_err()
            .kind(),
        KeyErrorKind::WrongType
    );
    assert_eq!(
        Key::hmac(Algorithm::RS256, [0u8; 64]).unwrap_err().kind(),
        KeyErrorKind::WrongType
    );
}

#[test]
fn jwk_rules() {
    let ok = r#"{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"a"}"#;
    assert_eq!(Key::from_jwk(ok).unwrap().kid(), Some("a"));
    let no_alg = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert_eq!(
        Key::from_jwk(no_alg).unwrap_err().kind(),
        KeyErrorKind::AlgorithmMismatch
    );
    let enc = r#"{"kty":"oct","alg":"HS256","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert_eq!(
        Key::from_jwk(enc).unwrap_err().kind(),
        KeyErrorKind::WrongUse
    );
    let short = r#"{"kty":"oct","alg":"HS256","k":"AAAA"}"#;
    assert_eq!(Key::from_jwk(short).unwrap_err().kind(), KeyErrorKind::Weak);
    let none = r#"{"kty":"oct","alg":"none","k":"AAAA"}"#;
    assert_eq!(
        Key::from_jwk(none).unwrap_err().kind(),
        KeyErrorKind::UnsupportedAlgorithm
    );
    let confused =
        r#"{"kty":"oct","alg":"RS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert_eq!(
        Key::from_jwk(confused).unwrap_err().kind(),
        KeyErrorKind::WrongType
    );
}

#[test]
fn kid_is_length_capped() {
    let key = Key::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
    assert!(key.clone().with_kid("x".repeat(MAX_KID_LEN)).is_ok());
    assert_eq!(
        key.clone()
            .with_kid("x".repeat(MAX_KID_LEN + 1))
            .unwrap_err()
            .kind(),
        KeyErrorKind::InvalidKid
    );
    assert!(key.with_kid("").is_err());
}

#[test]
fn building_a_key_selects_the_aws_lc_provider() {
    Key::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
    let installed =
        CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER)
            .unwrap_err();
    assert!(std::ptr::eq(
        installed,
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
    ));
}

/// Signs `message` with jsonwebtoken (an independent signer) using `private`.
fn signed(alg: jsonwebtoken::Algorithm, private: &str, message: &[u8]) -> Vec<u8> {
    use jsonwebtoken::crypto::sign;
    let pem = read(private);
    let key = match alg {
        jsonwebtoken::Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384 => {
            jsonwebtoken::EncodingKey::from_ec_pem(&pem)
        }
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let b64 = sign(message, &key, alg).unwrap();
    base64::Engine::decode(&crate::compact::B64, b64).unwrap()
}

#[test]
fn every_form_of_a_public_key_is_parsed_once_and_verifies() {
    let message = b"header.payload";
    let point = {
        let spki = read("test-only-p256-public.der");
        spki[spki.len() - 65..].to_vec()
    };
    let ed_raw = {
        let spki = read("test-only-ed25519-public.der");
        spki[spki.len() - 32..].to_vec()
    };
    let pem = |alg, name| Key::from_pem(alg, read(name)).unwrap();
    let der = |alg, der: &[u8]| Key::from_der(alg, der).unwrap();
    let rsa = "test-only-rsa2048-private.pem";
    let cases = [
        (
            Algorithm::RS256,
            rsa,
            vec![
                pem(Algorithm::RS256, "test-only-rsa2048-public.pem"),
                pem(Algorithm::RS256, "test-only-rsa2048-public-pkcs1.pem"),
                der(Algorithm::RS256, &read("test-only-rsa2048-public.der")),
            ],
        ),
        (
            Algorithm::PS384,
            rsa,
            vec![pem(Algorithm::PS384, "test-only-rsa2048-public.pem")],
        ),
        (
            Algorithm::ES256,
            "test-only-p256-private.pem",
            vec![
                pem(Algorithm::ES256, "test-only-p256-public.pem"),
                der(Algorithm::ES256, &point),
            ],
        ),
        (
            Algorithm::ES384,
            "test-only-p384-private.pem",
            vec![pem(Algorithm::ES384, "test-only-p384-public.pem")],
        ),
        (
            Algorithm::EdDSA,
            "test-only-ed25519-private.pem",
            vec![
                pem(Algorithm::EdDSA, "test-only-ed25519-public.pem"),
                der(Algorithm::EdDSA, &ed_raw),
            ],
        ),
    ];
    for (alg, private, keys) in cases {
        let signature = signed(jsonwebtoken_algorithm(alg).unwrap(), private, message);
        let mut tampered = signature.clone();
        tampered[7] ^= 1;
        for key in keys {
            // Parsed by aws-lc-rs when built, not again for every token.
            assert!(matches!(&*key.material, Material::AwsLc(_)), "{alg:?}");
            assert!(key.verify(message, &signature), "{alg:?}");
            assert!(!key.verify(message, &tampered), "{alg:?}");
            assert!(!key.verify(b"header.payloaD", &signature), "{alg:?}");
        }
    }
}

#[test]
fn es512_is_verified_by_aws_lc_and_refuses_tampering() {
    use aws_lc_rs::{rand::SystemRandom, signature};
    let private = pem::parse(read("test-only-p521-private.pem")).unwrap();
    let signer = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        private.contents(),
    )
    .unwrap();
    let key = Key::from_pem(Algorithm::ES512, read("test-only-p521-public.pem")).unwrap();
    assert!(matches!(&*key.material, Material::AwsLc(_)));
    let message = b"header.payload";
    let signature = signer
        .sign(&SystemRandom::new(), message)
        .unwrap()
        .as_ref()
        .to_vec();
    assert_eq!(signature.len(), 132);
    assert!(key.verify(message, &signature));
    assert!(!key.verify(b"header.payloaD", &signature));
    let mut other = signature.clone();
    other[131] ^= 1;
    assert!(!key.verify(message, &other));
    assert!(!key.verify(message, &signature[..131].to_vec()));
    assert!(!key.verify(message, &Vec::new()));
}

#[test]
fn verify_goes_through_jsonwebtoken_and_refuses_tampering() {
    use jsonwebtoken::{EncodingKey, crypto::sign};
    let message = b"header.payload";
    let cases = [
        (
            Key::hmac(Algorithm::HS384, [7u8; 48]).unwrap(),
            EncodingKey::from_secret(&[7u8; 48]),
        ),
        (
            Key::from_pem(Algorithm::PS256, read("test-only-rsa2048-public.pem")).unwrap(),
            EncodingKey::from_rsa_pem(&read("test-only-rsa2048-private.pem")).unwrap(),
        ),
        (
            Key::from_pem(Algorithm::ES256, read("test-only-p256-public.pem")).unwrap(),
            EncodingKey::from_ec_pem(&read("test-only-p256-private.pem")).unwrap(),
        ),
        (
            Key::from_pem(Algorithm::EdDSA, read("test-only-ed25519-public.pem")).unwrap(),
            EncodingKey::from_ed_pem(&read("test-only-ed25519-private.pem")).unwrap(),
        ),
    ];
    for (key, signing) in cases {
        let signature_b64 = sign(
            message,
            &signing,
            jsonwebtoken_algorithm(key.algorithm()).unwrap(),
        )
        .unwrap();
        let signature = crate::compact::decode(&signature_b64).unwrap();
        assert!(key.verify(message, &signature), "{:?}", key.algorithm());
        assert!(!key.verify(b"header.payloaD", &signature));
        let mut other = signature.clone();
        other[0] ^= 1;
        assert!(!key.verify(message, &other));
        // Truncated or empty: refused, not a panic.
        assert!(!key.verify(message, &signature[..signature.len() - 1].to_vec()));
        assert!(!key.verify(message, &Vec::new()));
    }
}

#[test]
fn each_thread_builds_a_keys_verifier_once_and_forgets_dead_keys() {
    std::thread::spawn(|| {
        let key = Key::hmac(Algorithm::HS256, [9u8; 32]).unwrap();
        let signing = jsonwebtoken::EncodingKey::from_secret(&[9u8; 32]);
        let signature_b64 =
            jsonwebtoken::crypto::sign(b"m", &signing, jsonwebtoken::Algorithm::HS256).unwrap();
        let signature = crate::compact::decode(&signature_b64).unwrap();
        for _ in 0..3 {
            assert!(key.verify(b"m", &signature));
        }
        assert_eq!(super::verifiers::cached(), 1, "one verifier for one key");
        // A different key with the same secret is another entry, never the first's.
        let twin = Key::hmac(Algorithm::HS256, [9u8; 32]).unwrap();
        assert!(twin.verify(b"m", &signature));
        assert_eq!(super::verifiers::cached(), 2);
        drop((key, twin));
        // Many short-lived keys: the thread's list stays bounded.
        for i in 0..200u8 {
            let k = Key::hmac(Algorithm::HS256, [i; 32]).unwrap();
            assert!(!k.verify(b"m", &signature) || i == 9);
            assert!(super::verifiers::cached() <= 32);
        }
        // A key whose secret differs refuses even when built at a reused address.
        let other = Key::hmac(Algorithm::HS256, [8u8; 32]).unwrap();
        assert!(!other.verify(b"m", &signature));
    })
    .join()
    .unwrap();
}

#[test]
fn debug_redacts_material() {
    let key = Key::hmac(Algorithm::HS256, b"super-secret-super-secret-123456").unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("super-secret"), "{shown}");
}
