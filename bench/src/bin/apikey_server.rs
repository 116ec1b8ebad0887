//! A hello-world axum server for load comparisons, on $BENCH_ADDR:
//!
//! - `bare`: no authentication;
//! - `apikey`: the API-key layer on the route (`route_layer`) with the memory store,
//!   accepting the key in $BENCH_API_KEY (one record among 10,000; $BENCH_OTHER_KEYS
//!   sets how many others);
//! - `apikey-outer`: the same layer wrapped around the whole router, so axum's own
//!   price for a `route_layer` is not paid;
//! - `noop`: a `route_layer` that does nothing, axum's own price for a layer on the
//!   route (the ceiling for any layer put there);
//! - `core-only`: core's `AuthLayer` with an authenticator that answers a fixed
//!   principal whenever `x-api-key` is present: the layer's own cost;
//! - `keygen`: prints a fresh key for $BENCH_API_KEY and exits.

use axum::{Router, ServiceExt, extract::Request};
use http::request::Parts;
use portcullis_apikey::{ApiKeyStore, ApiKeys, KeyFormat, MemoryStore, NewApiKey};
use portcullis_bench::{apikey::record, contenders::hello};
use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
use tower::Layer;

/// Answers one principal whenever `x-api-key` is present.
struct Fixed(Principal);

impl Authenticator for Fixed {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let found = parts.headers.contains_key("x-api-key");
        MaybeReady::Ready(Ok(found.then(|| self.0.clone())))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    let format = KeyFormat::new("pk_live_").expect("valid prefix");
    let router = hello();
    let app: Router = match mode.as_str() {
        "bare" => router,
        "apikey" | "apikey-outer" => {
            let key = std::env::var("BENCH_API_KEY").expect("set BENCH_API_KEY (see keygen)");
            let store = MemoryStore::new();
            let keys = ApiKeys::new(store.clone(), format.clone());
            let others: u32 = std::env::var("BENCH_OTHER_KEYS")
                .map_or(9_999, |n| n.parse().expect("BENCH_OTHER_KEYS is a count"));
            for i in 0..others {
                keys.issue(NewApiKey::owned_by(format!("owner-{i}")).name("bulk"))
                    .await
                    .expect("issue");
            }
            let parsed = format.parse(&key).expect("a key from `keygen`");
            store
                .create(record(&parsed, "load test"))
                .await
                .expect("create");
            let layer = AuthLayer::new(keys.authenticator());
            if mode == "apikey" {
                router.route_layer(layer)
            } else {
                let app = layer.layer(router);
                let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
                let make = ServiceExt::<Request>::into_make_service(app);
                return axum::serve(listener, make).await.unwrap();
            }
        }
        "noop" => router.route_layer(tower::util::MapRequestLayer::new(|r: Request| r)),
        "core-only" => router.route_layer(AuthLayer::new(Fixed(
            Principal::builder("svc-bench", PrincipalKind::ApiKey).build(),
        ))),
        "keygen" => {
            println!("{}", format.generate().expect("os rng").expose_secret());
            return;
        }
        other => {
            panic!("unknown mode {other}: bare | apikey | apikey-outer | noop | core-only | keygen")
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
