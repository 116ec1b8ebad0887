//! A hello-world axum server for HTTP load comparisons, behind no rate limit, the
//! governor (local) backend, or the Redis backend; the client's key is never limited,
//! so the figures are the cost of the check.
//!
//! ```text
//! cargo run --release -p portcullis-bench --bin redis_server -- bare|governor|redis
//! ```
//!
//! Listens on `BENCH_ADDR` (default `127.0.0.1:38123`); the Redis mode reads
//! `REDIS_URL` (default `redis://127.0.0.1:6379`). `bench/compare.sh redis` runs it.

use std::{net::SocketAddr, num::NonZeroU32};

use axum::{Router, routing::get};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use portcullis_redis::{Redis, RedisRateLimit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    let quota = Quota::per_second(NonZeroU32::MAX);
    let app = Router::new().route("/", get(|| async { "hello" }));
    let app = match mode.as_str() {
        "bare" => app,
        "governor" => app.layer(RateLimitLayer::new(ClientIpKey::new(), quota)),
        "redis" => {
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let redis =
                Redis::open(&url)?.with_prefix(&format!("bench:{:x}:", rand::random::<u32>()));
            redis.ping().await?;
            app.layer(RateLimitLayer::with_backend(
                ClientIpKey::new(),
                RedisRateLimit::new(&redis, "bench", quota),
            ))
        }
        other => return Err(format!("unknown mode {other}: bare, governor or redis").into()),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
