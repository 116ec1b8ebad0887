//! An axum hello-world for load comparisons, bare or behind the JWT layer with keys
//! from a JWKS URL (feature `jwks`). The JWK Set is served by a tiny in-process HTTP
//! server on loopback, discovered through OpenID Connect discovery like a real
//! provider's.
//!
//! ```text
//! BENCH_ADDR=127.0.0.1:38123 jwks_server bare | jwks-es256 | static-es256
//! jwks_server token   # prints a token
//! ```
//!
//! The key is the JWT crate's test-only P-256 key, published under `kid`
//! `bench-es256`; the token expires in 2100 so one minted token serves every run.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::{Json, Router, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use portcullis_bench::{
    contenders::hello,
    keys::{AUDIENCE, Alg, key_file},
};
use portcullis_core::AuthLayer;
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key, jwks::RemoteKeys};
use serde_json::{Value, json};

const KID: &str = "bench-es256";

fn jwk() -> Value {
    let pem = pem::parse(key_file("test-only-p256-private.pem")).expect("pem");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pem.contents())
        .expect("PKCS#8 P-256 key");
    let point = pair.public_key().as_ref();
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    })
}

/// The issuer is the in-process provider's URL, so it is fixed by its port.
fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn token(iss: &str) -> String {
    Alg::Es256.signer().with_kid_and_issuer(KID, iss).token()
}

/// Serves discovery metadata and the JWK Set on `127.0.0.1:port`.
async fn provider(port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the JWKS provider");
    let iss = issuer(port);
    let meta = json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") });
    let set = json!({ "keys": [jwk()] });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(meta) }),
        )
        .route("/jwks", get(move || async move { Json(set) }));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("provider") });
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let provider_port: u16 = std::env::var("BENCH_JWKS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(38124);
    let iss = issuer(provider_port);
    let hello = hello();
    let app = match mode.as_str() {
        "bare" => hello,
        "jwks-es256" => {
            provider(provider_port).await;
            let keys = RemoteKeys::discover(iss.clone()).await.expect("discovery");
            let jwt = JwtAuthenticator::builder()
                .remote_keys(keys)
                .audience(AUDIENCE)
                .build()
                .expect("configuration");
            hello.route_layer(AuthLayer::new(jwt))
        }
        // The same key configured statically, for comparison.
        "static-es256" => {
            let key = Key::from_jwk_value(&jwk(), Some(Algorithm::ES256)).expect("key");
            let jwt = JwtAuthenticator::builder()
                .key(key)
                .issuer(iss.clone())
                .audience(AUDIENCE)
                .build()
                .expect("configuration");
            hello.route_layer(AuthLayer::new(jwt))
        }
        "token" => {
            println!("{}", token(&iss));
            return;
        }
        other => {
            eprintln!("unknown mode {other:?}: bare | jwks-es256 | static-es256 | token");
            std::process::exit(2);
        }
    };
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("{mode} listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
