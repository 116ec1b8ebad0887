//! A DPoP request (ES256 proof, access token from the verified-token cache) against a
//! bearer request with a cached token, in one run, rounds alternated; beside them the
//! parts of a proof check: the ES256 signature check alone, the proof key built from
//! its JWK, and the proof's header and claims parsed.
//!
//! `cargo bench -p portcullis-jwt --bench dpop`

#![allow(missing_docs)]

use std::{
    hint::black_box,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use http::{Request, request::Parts};
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis_core::{AuthResult, Authenticator, MaybeReady};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key, dpop::Dpop};
use serde_json::{Map, Value, json};

#[path = "../tests/common/dpop_client.rs"]
mod dpop_client;
use dpop_client::DpopClient;

const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";
const URL: &str = "https://api.example.com/orders";
const ROUNDS: usize = 9;
const PER_ROUND: usize = 3_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({
        "iss": "https://auth.example.com/",
        "sub": "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04",
        "aud": "https://api.example.com",
        "exp": now() + 3600,
        "iat": now(),
        "jti": "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
        "client_id": "web-app",
        "scope": "openid profile orders:read",
        "roles": ["user"],
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn authenticator(dpop: Option<Dpop>) -> JwtAuthenticator {
    let mut builder = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://auth.example.com/")
        .audience("https://api.example.com");
    if let Some(dpop) = dpop {
        builder = builder.dpop(dpop);
    }
    builder.build().unwrap()
}

fn parts(scheme: &str, token: &str, proof: Option<&str>) -> Parts {
    let mut req = Request::get("/orders").header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    req.body(()).unwrap().into_parts().0
}

fn ok(answer: MaybeReady<AuthResult>) {
    match answer {
        MaybeReady::Ready(Ok(Some(_))) => {}
        other => panic!("refused: {other:?}"),
    }
}

/// Nanoseconds per call of `f` over `requests`.
fn time<T>(requests: &[T], mut f: impl FnMut(&T)) -> f64 {
    let start = Instant::now();
    for r in requests {
        f(black_box(r));
    }
    start.elapsed().as_nanos() as f64 / requests.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let client = DpopClient::new();
    let bound = token(Some(&client.jkt()));
    let unbound = token(None);
    let bearer_jwt = authenticator(None);
    let dpop_jwt = authenticator(Some(
        Dpop::new().public_url("https://api.example.com").unwrap(),
    ));
    let bearer_request = parts("Bearer", &unbound, None);
    // Warm both caches with the token.
    ok(bearer_jwt.authenticate(&bearer_request));
    ok(dpop_jwt.authenticate(&parts(
        "DPoP",
        &bound,
        Some(&client.proof("GET", URL, Some(&bound))),
    )));
    ok(dpop_jwt.authenticate(&bearer_request));

    let (mut bearer, mut bearer_dpop_on, mut dpop, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut sig_only, mut key_only, mut parse_only) = (Vec::new(), Vec::new(), Vec::new());
    let public = client.public_key().to_vec();
    for _ in 0..ROUNDS {
        // Every DPoP request carries a new proof (a fresh `jti`), made before timing.
        let requests: Vec<Parts> = (0..PER_ROUND)
            .map(|_| {
                parts(
                    "DPoP",
                    &bound,
                    Some(&client.proof("GET", URL, Some(&bound))),
                )
            })
            .collect();
        let same = vec![&bearer_request; PER_ROUND];
        let b = time(&same, |p| ok(bearer_jwt.authenticate(p)));
        let d = time(&requests, |p| ok(dpop_jwt.authenticate(p)));
        let bd = time(&same, |p| ok(dpop_jwt.authenticate(p)));
        bearer.push(b);
        dpop.push(d);
        bearer_dpop_on.push(bd);
        ratios.push(d / b);

        let proofs: Vec<&str> = requests
            .iter()
            .map(|p| p.headers["dpop"].to_str().unwrap())
            .collect();
        let split: Vec<(String, Vec<u8>)> = proofs
            .iter()
            .map(|p| {
                let (input, sig) = p.rsplit_once('.').unwrap();
                (input.to_owned(), B64.decode(sig).unwrap())
            })
            .collect();
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
        sig_only.push(time(&split, |(input, sig)| {
            key.verify(input.as_bytes(), sig).unwrap();
        }));
        let jwk = client.jwk().clone();
        key_only.push(time(&proofs, |_| {
            black_box(Key::from_jwk_value(&jwk, Some(Algorithm::ES256)).unwrap());
        }));
        parse_only.push(time(&proofs, |p| {
            let mut segments = p.split('.');
            for _ in 0..2 {
                let bytes = B64.decode(segments.next().unwrap()).unwrap();
                black_box(serde_json::from_slice::<Map<String, Value>>(&bytes).unwrap());
            }
        }));
    }
    println!("{ROUNDS} rounds of {PER_ROUND} requests, alternated; medians in ns per request");
    println!(
        "bearer, cached token (DPoP off)        {:>9.0}",
        median(bearer)
    );
    println!(
        "bearer, cached token (DPoP on)         {:>9.0}",
        median(bearer_dpop_on)
    );
    println!(
        "DPoP, ES256 proof, cached token        {:>9.0}",
        median(dpop)
    );
    println!(
        "ratio DPoP / bearer (median of rounds) {:>9.1}",
        median(ratios)
    );
    println!("parts of the proof check:");
    println!(
        "  ES256 signature check alone          {:>9.0}",
        median(sig_only)
    );
    println!(
        "  proof key from its JWK               {:>9.0}",
        median(key_only)
    );
    println!(
        "  header and claims base64url + JSON   {:>9.0}",
        median(parse_only)
    );
}
