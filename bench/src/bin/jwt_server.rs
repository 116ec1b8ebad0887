//! An axum hello-world for load comparisons, bare or behind the JWT layer.
//!
//! ```text
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- bare
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- noop
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- core-only
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- hs256
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- hs256-cold
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- es256-cached
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- hs256-same-body
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- es256-same-body
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- hs256-outer
//! BENCH_ADDR=127.0.0.1:38123 cargo run --release --example jwt_bench_server -- es256-outer
//! cargo run --release --example jwt_bench_server -- token-hs256   # prints a token
//! cargo run --release --example jwt_bench_server -- token-es256   # prints a token
//! ```
//!
//! Keys are the crate's test-only keys; tokens expire in 2100 so one minted token
//! serves every run.

use axum::{Router, ServiceExt, extract::Request, routing::get};
use jsonwebtoken::{EncodingKey, Header};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use tower::Layer;

#[path = "support/bench_token.rs"]
mod bench_token;
use bench_token::AUDIENCE;

const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";
const ISSUER: &str = "https://auth.example.com/";

fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn token(alg: jsonwebtoken::Algorithm, key: &EncodingKey) -> String {
    bench_token::sign(&Header::new(alg), key, ISSUER)
}

struct Fixed(portcullis_core::Principal);

impl portcullis_core::Authenticator for Fixed {
    fn authenticate(&self, _: &axum::http::request::Parts) -> portcullis_core::Authentication {
        portcullis_core::Authentication::Ready(Ok(Some(self.0.clone())))
    }
}

fn es256_key() -> Key {
    Key::from_pem(Algorithm::ES256, key_file("test-only-p256-public.pem")).expect("key")
}

fn authenticator(key: Key, cache: bool) -> JwtAuthenticator {
    let builder = JwtAuthenticator::builder()
        .key(key)
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let builder = if cache {
        builder
    } else {
        builder.without_cache()
    };
    builder.build().expect("configuration")
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let hello = Router::new().route("/", get(|| async { "Hello, World!" }));
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    // The `same_body()` layers wrapped around the whole router rather than put on its
    // route: authentication before routing, without axum's own price for a layer.
    let outer = match mode.as_str() {
        "hs256-outer" => Some(Key::hmac(Algorithm::HS256, SECRET).expect("key")),
        "es256-outer" => Some(es256_key()),
        _ => None,
    };
    if let Some(key) = outer {
        let app = authenticator(key, true)
            .into_layer()
            .same_body()
            .layer(hello);
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!("{mode} listening on {addr}");
        let make = ServiceExt::<Request>::into_make_service(app);
        return axum::serve(listener, make).await.expect("serve");
    }
    let app = match mode.as_str() {
        "bare" => hello,
        // axum's own cost of layering a route: a `route_layer` that does nothing.
        "noop" => hello.route_layer(tower::util::MapRequestLayer::new(
            |r: axum::http::Request<axum::body::Body>| r,
        )),
        // The core layer alone, with a ready principal shaped like the JWT layer's
        // (typed claims included): what the layer costs before any token is read.
        "core-only" => {
            let key = Key::hmac(Algorithm::HS256, SECRET).expect("key");
            let auth = authenticator(key, true);
            let token = token(
                jsonwebtoken::Algorithm::HS256,
                &EncodingKey::from_secret(SECRET),
            );
            let principal = match auth.verify(&token) {
                portcullis_core::Authentication::Ready(Ok(Some(p))) => p,
                _ => panic!("the bench token verifies"),
            };
            hello.route_layer(portcullis_core::AuthLayer::new(Fixed(principal)))
        }
        // The default configuration, which caches HMAC-verified tokens too.
        "hs256" => {
            let key = Key::hmac(Algorithm::HS256, SECRET).expect("key");
            hello.route_layer(authenticator(key, true).into_layer())
        }
        // Every request verified from scratch: signature, claims parse, principal.
        "hs256-cold" => {
            let key = Key::hmac(Algorithm::HS256, SECRET).expect("key");
            hello.route_layer(authenticator(key, false).into_layer())
        }
        "es256-cached" => hello.route_layer(authenticator(es256_key(), true).into_layer()),
        // The same layers answering in axum's own body type: nothing for axum to box.
        "hs256-same-body" => {
            let key = Key::hmac(Algorithm::HS256, SECRET).expect("key");
            hello.route_layer(authenticator(key, true).into_layer().same_body())
        }
        "es256-same-body" => {
            hello.route_layer(authenticator(es256_key(), true).into_layer().same_body())
        }
        "token-hs256" => {
            println!(
                "{}",
                token(
                    jsonwebtoken::Algorithm::HS256,
                    &EncodingKey::from_secret(SECRET)
                )
            );
            return;
        }
        "token-es256" => {
            let key =
                EncodingKey::from_ec_pem(&key_file("test-only-p256-private.pem")).expect("key");
            println!("{}", token(jsonwebtoken::Algorithm::ES256, &key));
            return;
        }
        other => {
            eprintln!(
                "unknown mode {other:?}: bare | noop | core-only | hs256 | hs256-cold | es256-cached | hs256-same-body | es256-same-body | hs256-outer | es256-outer | token-hs256 | token-es256"
            );
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("{mode} listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
