//! A server for the login-flood benchmark: `POST /login` verifies a password with the
//! default argon2id parameters; `GET /ping` is a cheap route whose throughput must
//! hold up while `/login` is flooded.
//!
//! `BENCH_ADDR=127.0.0.1:38123 cargo run --release -p portcullis-bench --bin flood_server`
//! (`bench/compare.sh flood` runs it)
//!
//! `FLOOD_NICE=off` leaves hashing threads at normal priority (for comparison).

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use portcullis_password::{Password, PasswordHasher};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".to_owned());
    let nice = match std::env::var("FLOOD_NICE").as_deref() {
        Ok("off") => None,
        Ok(n) => Some(n.parse()?),
        Err(_) => Some(10),
    };
    let hasher = PasswordHasher::builder().niceness(nice).build()?;
    let hash = hasher
        .hash(&Password::new("correct horse battery staple"))
        .await?;
    let app = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/login",
            post(
                |State((hasher, hash)): State<(PasswordHasher, String)>, body: String| async move {
                    match hasher.verify(&Password::new(body), &hash).await {
                        Ok(v) if v.is_valid() => StatusCode::NO_CONTENT,
                        Ok(_) => StatusCode::UNAUTHORIZED,
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                },
            ),
        )
        .with_state((hasher, hash));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
