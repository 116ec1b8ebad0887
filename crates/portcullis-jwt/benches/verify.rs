//! Verification cost, cold and from the verified-token cache, beside its floor: the
//! raw HMAC / signature check of the same bytes, the base64url decoding, one claims
//! parse, and a SHA-256 plus one map look-up.
//!
//! `cargo bench -p portcullis-jwt --bench verify`

#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use aws_lc_rs::{hmac, signature as sig};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use dashmap::DashMap;
use jsonwebtoken::{DecodingKey, EncodingKey, Validation, crypto};
use portcullis_core::{AuthResult, MaybeReady};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A realistic access token's claims (the token is ~410 bytes with HS256).
fn claims() -> Value {
    json!({
        "iss": "https://auth.example.com/",
        "sub": "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04",
        "aud": "https://api.example.com",
        "exp": NOW + 900,
        "iat": NOW,
        "jti": "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
        "client_id": "web-app",
        "scope": "openid profile orders:read",
        "roles": ["user"],
    })
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Typed {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    client_id: String,
    scope: String,
    roles: Vec<String>,
}

struct Case {
    alg: Algorithm,
    jwt_alg: jsonwebtoken::Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    key: Key,
    raw: Option<sig::ParsedPublicKey>,
}

fn cases() -> Vec<Case> {
    let rsa_pub = read("test-only-rsa2048-public.pem");
    let p256_pub = read("test-only-p256-public.pem");
    let ed_pub = read("test-only-ed25519-public.pem");
    let der = |pem_bytes: &[u8]| pem::parse(pem_bytes).unwrap().into_contents();
    vec![
        Case {
            alg: Algorithm::HS256,
            jwt_alg: jsonwebtoken::Algorithm::HS256,
            encoding: EncodingKey::from_secret(SECRET),
            decoding: DecodingKey::from_secret(SECRET),
            key: Key::hmac(Algorithm::HS256, SECRET).unwrap(),
            raw: None,
        },
        Case {
            alg: Algorithm::RS256,
            jwt_alg: jsonwebtoken::Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(&read("test-only-rsa2048-private.pem")).unwrap(),
            decoding: DecodingKey::from_rsa_pem(&rsa_pub).unwrap(),
            key: Key::from_pem(Algorithm::RS256, &rsa_pub).unwrap(),
            raw: Some(
                sig::ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der(&rsa_pub)).unwrap(),
            ),
        },
        Case {
            alg: Algorithm::ES256,
            jwt_alg: jsonwebtoken::Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(&read("test-only-p256-private.pem")).unwrap(),
            decoding: DecodingKey::from_ec_pem(&p256_pub).unwrap(),
            key: Key::from_pem(Algorithm::ES256, &p256_pub).unwrap(),
            raw: Some(
                sig::ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, der(&p256_pub)).unwrap(),
            ),
        },
        Case {
            alg: Algorithm::EdDSA,
            jwt_alg: jsonwebtoken::Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(&read("test-only-ed25519-private.pem")).unwrap(),
            decoding: DecodingKey::from_ed_pem(&ed_pub).unwrap(),
            key: Key::from_pem(Algorithm::EdDSA, &ed_pub).unwrap(),
            raw: Some(sig::ParsedPublicKey::new(&sig::ED25519, der(&ed_pub)).unwrap()),
        },
    ]
}

fn authenticator(key: Key, cache: bool) -> JwtAuthenticator {
    let b = JwtAuthenticator::builder()
        .key(key)
        .issuer("https://auth.example.com/")
        .audience("https://api.example.com")
        .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(NOW + 1));
    let b = if cache {
        b.cache_symmetric(true)
    } else {
        b.without_cache()
    };
    b.build().unwrap()
}

fn ok(a: MaybeReady<AuthResult>) -> bool {
    matches!(a, MaybeReady::Ready(Ok(Some(_))))
}

fn bench(c: &mut Criterion) {
    let claims = claims();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let hs_token =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
    eprintln!("HS256 token: {} bytes", hs_token.len());
    let (input, sig_b64) = hs_token.rsplit_once('.').unwrap();
    let payload_b64 = input.split_once('.').unwrap().1;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).unwrap();
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);

    let mut g = c.benchmark_group("floor");
    g.bench_function("hmac_sha256_signing_input", |b| {
        b.iter(|| hmac::sign(&hmac_key, black_box(input.as_bytes())))
    });
    g.bench_function("base64url_payload_and_sig", |b| {
        b.iter(|| {
            let p = URL_SAFE_NO_PAD.decode(black_box(payload_b64)).unwrap();
            let s = URL_SAFE_NO_PAD.decode(black_box(sig_b64)).unwrap();
            (p, s)
        })
    });
    g.bench_function("claims_parse_map", |b| {
        b.iter(|| serde_json::from_slice::<Map<String, Value>>(black_box(&payload)).unwrap())
    });
    g.bench_function("claims_parse_struct", |b| {
        b.iter(|| serde_json::from_slice::<Typed>(black_box(&payload)).unwrap())
    });
    let map: Map<String, Value> = serde_json::from_slice(&payload).unwrap();
    g.bench_function("map_to_struct", |b| {
        b.iter(|| Typed::deserialize(black_box(&map)).unwrap())
    });
    g.bench_function("hs256_floor_total", |b| {
        b.iter(|| {
            let s = URL_SAFE_NO_PAD.decode(black_box(sig_b64)).unwrap();
            let ok = hmac::verify(&hmac_key, black_box(input.as_bytes()), &s).is_ok();
            let p = URL_SAFE_NO_PAD.decode(black_box(payload_b64)).unwrap();
            let m = serde_json::from_slice::<Map<String, Value>>(&p).unwrap();
            (ok, m)
        })
    });
    let dash: DashMap<[u8; 32], u64> = DashMap::new();
    for i in 0..1000u64 {
        dash.insert(Sha256::digest(i.to_le_bytes()).into(), i);
    }
    dash.insert(Sha256::digest(hs_token.as_bytes()).into(), 7);
    g.bench_function("sha256_token_and_dashmap_hit", |b| {
        b.iter(|| {
            let fp: [u8; 32] = Sha256::digest(black_box(hs_token.as_bytes())).into();
            *dash.get(&fp).unwrap()
        })
    });
    g.finish();

    for case in cases() {
        let name = case.alg.name();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(case.jwt_alg),
            &claims,
            &case.encoding,
        )
        .unwrap();
        let (input, sig_b64) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();

        let mut g = c.benchmark_group(format!("floor/{name}"));
        if let Some(raw) = &case.raw {
            g.bench_function("raw_signature_verify", |b| {
                b.iter(|| {
                    raw.verify_sig(black_box(input.as_bytes()), black_box(&signature))
                        .is_ok()
                })
            });
        }
        g.bench_function("jsonwebtoken_crypto_verify", |b| {
            b.iter(|| {
                crypto::verify(
                    black_box(sig_b64),
                    black_box(input.as_bytes()),
                    &case.decoding,
                    case.jwt_alg,
                )
                .unwrap()
            })
        });
        let mut validation = Validation::new(case.jwt_alg);
        validation.set_audience(&["https://api.example.com"]);
        validation.set_issuer(&["https://auth.example.com/"]);
        validation.validate_exp = false;
        g.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&token),
                    &case.decoding,
                    &validation,
                )
                .unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("ours/{name}"));
        let cold = authenticator(case.key.clone(), false);
        assert!(ok(cold.verify(&token)));
        g.bench_function("cold", |b| b.iter(|| ok(cold.verify(black_box(&token)))));
        let cached = authenticator(case.key.clone(), true);
        assert!(ok(cached.verify(&token)));
        assert_eq!(cached.cached_tokens(), 1);
        g.bench_function("cache_hit", |b| {
            b.iter(|| ok(cached.verify(black_box(&token))))
        });
        if case.alg == Algorithm::HS256 {
            let typed = JwtAuthenticator::builder()
                .claims::<Typed>()
                .key(case.key.clone())
                .issuer("https://auth.example.com/")
                .audience("https://api.example.com")
                .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(NOW + 1))
                .without_cache()
                .build()
                .unwrap();
            assert!(ok(typed.verify(&token)));
            g.bench_function("cold_typed_claims", |b| {
                b.iter(|| ok(typed.verify(black_box(&token))))
            });
            // Cold, and every header one the key set has not remembered: 64 tokens
            // whose headers differ by an ignored member, taken in turn, so the key
            // set's memory of verified headers (16) never holds the next one.
            let unseen: Vec<String> = (0..64)
                .map(|i| {
                    let mut header = jsonwebtoken::Header::new(case.jwt_alg);
                    header.cty = Some(format!("n{i}"));
                    jsonwebtoken::encode(&header, &claims, &case.encoding).unwrap()
                })
                .collect();
            assert!(unseen.iter().all(|t| ok(cold.verify(t))));
            let mut next = unseen.iter().cycle();
            g.bench_function("cold_unseen_header", |b| {
                b.iter(|| ok(cold.verify(black_box(next.next().unwrap()))))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // The macro's generated function carries no docs.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
