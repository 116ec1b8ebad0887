//! End to end: the compiled quickstart example, run as a process on loopback with a
//! temporary data directory (SQLite), driven over real HTTP. Under `CI=true` with
//! `DATABASE_URL` and `REDIS_URL`, the same flow runs on PostgreSQL and Redis.
//!
//! Passwords are hashed at the default argon2id cost, so the suite keeps the number of
//! hashes small (about 30).

#[path = "quickstart/attacks.rs"]
mod attacks;
#[path = "quickstart/flow.rs"]
mod flow;
#[path = "quickstart/flow_part_two.rs"]
mod flow_part_two;
#[path = "quickstart/harness.rs"]
mod harness;
#[path = "quickstart/metrics.rs"]
mod metrics;
#[path = "quickstart/sessions.rs"]
mod sessions;
#[path = "quickstart/soak.rs"]
mod soak;

use std::time::Duration;

use harness::{Options, Resp, Server};
use serde_json::{Value, json};

const ADMIN: &str = "Admin@Example.com";
const ADMIN_PW: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PW: &str = "bob's very long passphrase";
const BOB_NEW_PW: &str = "bob's even longer new passphrase";

/// A token pair from a login or refresh.
#[derive(Debug, Clone)]
struct Pair {
    access: String,
    refresh: String,
}

impl Pair {
    /// The pair in a login or refresh response's body.
    fn from_body(body: &Value) -> Self {
        Self {
            access: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

/// `POST /auth/login`, whatever the answer.
async fn try_login(s: &Server, email: &str, password: &str) -> Resp {
    s.post("/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .go()
        .await
}

async fn login(s: &Server, email: &str, password: &str) -> Pair {
    let r = try_login(s, email, password).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    Pair::from_body(&body)
}

/// `POST /auth/refresh` with `token` in the body.
async fn post_refresh(s: &Server, token: &str) -> Resp {
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": token }))
        .go()
        .await
}

/// `POST /auth/verify-email` with `token`.
async fn verify_email(s: &Server, token: &str) -> Resp {
    s.post("/auth/verify-email")
        .json(&json!({ "token": token }))
        .go()
        .await
}

/// `POST /auth/forgot-password` for `email`.
async fn forgot_password(s: &Server, email: &str) -> Resp {
    s.post("/auth/forgot-password")
        .json(&json!({ "email": email }))
        .go()
        .await
}

/// `POST /auth/reset-password` with the mailed `token` and a new `password`.
async fn reset_password(s: &Server, token: &str, password: &str) -> Resp {
    s.post("/auth/reset-password")
        .json(&json!({ "token": token, "password": password }))
        .go()
        .await
}

async fn me_status(s: &Server, access: &str) -> u16 {
    s.get("/me").bearer(access).go().await.status.as_u16()
}

async fn register(s: &Server, email: &str, password: &str, name: Option<&str>) -> Value {
    let mut body = json!({ "email": email, "password": password });
    if let Some(name) = name {
        body["name"] = name.into();
    }
    let r = s.post("/auth/register").json(&body).go().await;
    r.expect(201);
    r.json()
}
