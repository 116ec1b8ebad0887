//! The quickstart: an axum server with one public and one protected route.
//!
//! ```text
//! cargo run --example quickstart [-- --addr 127.0.0.1:3000]
//! ```
//!
//! At start it prints a demo token, signed with a key made for this run, and the curl
//! commands that use it.

use std::{
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, routing::get};
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis::{
    jwt::{Algorithm, JwtAuthenticator, Key},
    prelude::*,
};
use rand::RngCore;
use serde_json::{Value, json};

const ISSUER: &str = "http://127.0.0.1:3000";
const AUDIENCE: &str = "quickstart";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis=debug".into()),
        )
        .init();

    let addr = listen_addr()?;

    // A fresh HS256 secret each run: tokens from an earlier run stop working.
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);

    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, secret)?)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()?;

    let protected = Router::new()
        .route("/me", get(me))
        .route_layer(jwt.into_layer().realm("quickstart"));
    let app = Router::new()
        .route("/", get(|| async { "Hello! GET /me with a bearer token to see who you are.\n" }))
        .merge(protected);

    let token = demo_token(&secret)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("Portcullis quickstart listening on http://{local}");
    println!("Demo token (user \"demo\", role admin, scope data:read, valid 1 hour):\n\n{token}\n");
    println!("Try:");
    println!("  curl -i http://{local}/");
    println!("  curl -i http://{local}/me");
    println!("  curl -i -H 'Authorization: Bearer {token}' http://{local}/me");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "subject": principal.subject(),
        "kind": principal.kind().as_str(),
        "issuer": principal.issuer(),
        "roles": principal.roles().collect::<Vec<_>>(),
        "scopes": principal.scopes().collect::<Vec<_>>(),
        "token_id": principal.token_id(),
    }))
}

fn demo_token(secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut jti = [0u8; 16];
    rand::rng().fill_bytes(&mut jti);
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "demo",
        "iat": now,
        "exp": now + 3600,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "roles": ["admin"],
        "scope": "data:read",
    });
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}

/// `--addr HOST:PORT`, else `$ADDR`, else 127.0.0.1:3000.
fn listen_addr() -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr = std::env::var("ADDR").ok();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            other => return Err(format!("unknown argument {other:?} (expected --addr HOST:PORT)").into()),
        }
    }
    Ok(addr.as_deref().unwrap_or("127.0.0.1:3000").parse()?)
}
