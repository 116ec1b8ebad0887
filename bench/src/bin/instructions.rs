//! A fixed workload for instruction counting under `valgrind --tool=callgrind`, which
//! is immune to the noise of a shared machine. Modes: `floor` (HMAC-SHA256 verify +
//! base64url of payload and signature + one claims parse into a map), `cold` (our
//! HS256 verification, cache off), `hitfloor` (SHA-256 of the token + one DashMap hit),
//! `hit` (our verification from the cache); `floor-head` / `cold-head`: `floor` and
//! `cold` from a request head, as the `inproc` floor table runs them (the bearer
//! header read and split each time); `router-bare` / `router-hit`: one request
//! through an axum hello-world router, bare or behind the layer (cache hits);
//! `router-limit` / `router-governor`: the same router under `Router::layer` of the
//! rate limit (client IP, a quota never reached) or of tower_governor. `N` sets
//! the iterations (default 20,000); run once with `N=0` to subtract the set-up
//! (`BIN=$CARGO_TARGET_DIR/release/instructions`):
//!
//! ```text
//! for m in floor cold hitfloor hit; do
//!   a=$(N=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN $m 2>&1 | grep refs | awk '{print $NF}' | tr -d ,)
//!   b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN $m 2>&1 | grep refs | awk '{print $NF}' | tr -d ,)
//!   echo "$m $(( (b - a) / 20000 )) instructions/op"
//! done
//! ```

use base64::Engine as _;
use portcullis_core::{AuthLayer, MaybeReady};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use std::time::Duration;

fn main() {
    const NOW: u64 = 1_700_000_000;
    let secret = b"bench-only-hs256-secret-32-bytes";
    let claims = serde_json::json!({"iss":"https://auth.example.com/","sub":"user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04","aud":"https://api.example.com","exp":NOW+900,"iat":NOW,"jti":"9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b","client_id":"web-app","scope":"openid profile orders:read","roles":["user"]});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: u32 = std::env::var("N")
        .map(|v| v.parse().unwrap())
        .unwrap_or(20000);
    let b = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, secret).unwrap())
        .issuer("https://auth.example.com/")
        .audience("https://api.example.com")
        .clock(move || std::time::UNIX_EPOCH + Duration::from_secs(NOW + 1));
    match mode.as_str() {
        "floor" => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            let (input, sig) = token.rsplit_once('.').unwrap();
            let payload = input.split_once('.').unwrap().1;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            for _ in 0..n {
                let s = e.decode(std::hint::black_box(sig)).unwrap();
                assert!(
                    aws_lc_rs::hmac::verify(&key, std::hint::black_box(input.as_bytes()), &s)
                        .is_ok()
                );
                let p = e.decode(std::hint::black_box(payload)).unwrap();
                std::hint::black_box(
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&p)
                        .unwrap(),
                );
            }
        }
        "floor-head" | "cold-head" => {
            let auth = b.without_cache().build().unwrap();
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            let (head, ()) = http::Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap()
                .into_parts();
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            for _ in 0..n {
                let head = std::hint::black_box(&head);
                if mode == "cold-head" {
                    let r = portcullis_core::Authenticator::authenticate(&auth, head);
                    assert!(matches!(r, MaybeReady::Ready(Ok(Some(_)))));
                    continue;
                }
                let token = head.headers["authorization"].to_str().unwrap();
                let token = token.strip_prefix("Bearer ").unwrap();
                let (input, sig) = token.rsplit_once('.').unwrap();
                let payload = input.split_once('.').unwrap().1;
                let s = e.decode(sig).unwrap();
                assert!(aws_lc_rs::hmac::verify(&key, input.as_bytes(), &s).is_ok());
                let p = e.decode(payload).unwrap();
                std::hint::black_box(
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&p)
                        .unwrap(),
                );
            }
        }
        "hitfloor" => {
            use sha2::Digest;
            let map: dashmap::DashMap<[u8; 32], u64> = dashmap::DashMap::new();
            map.insert(sha2::Sha256::digest(token.as_bytes()).into(), 1);
            for _ in 0..n {
                let fp: [u8; 32] =
                    sha2::Sha256::digest(std::hint::black_box(token.as_bytes())).into();
                std::hint::black_box(*map.get(&fp).unwrap());
            }
        }
        "router-bare" | "router-hit" | "router-limit" | "router-governor" => {
            use tower::{Service, ServiceExt};
            let hello =
                axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
            let never = std::num::NonZeroU32::new(1_000_000_000).unwrap();
            let mut app = match mode.as_str() {
                "router-hit" => hello.route_layer(AuthLayer::new(b.build().unwrap())),
                "router-limit" => hello.layer(portcullis_ratelimit::RateLimitLayer::new(
                    portcullis_ratelimit::ClientIpKey::new(),
                    portcullis_ratelimit::Quota::per_second(never),
                )),
                "router-governor" => hello.layer(tower_governor::GovernorLayer::new(
                    tower_governor::governor::GovernorConfigBuilder::default()
                        .per_nanosecond(1)
                        .burst_size(never.get())
                        .finish()
                        .unwrap(),
                )),
                _ => hello,
            };
            let peer =
                axum::extract::ConnectInfo(std::net::SocketAddr::from(([203, 0, 113, 7], 40000)));
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let auth = format!("Bearer {token}");
            rt.block_on(async {
                for _ in 0..n {
                    let req = http::Request::get("/")
                        .header("authorization", &auth)
                        .extension(peer)
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let res = ServiceExt::<http::Request<axum::body::Body>>::ready(&mut app)
                        .await
                        .unwrap()
                        .call(req)
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                }
            });
        }
        m => {
            let auth = if m == "hit" {
                b.build().unwrap()
            } else {
                b.without_cache().build().unwrap()
            };
            for _ in 0..n {
                let r = auth.verify(std::hint::black_box(&token));
                assert!(matches!(r, MaybeReady::Ready(Ok(Some(_)))));
            }
        }
    }
}
