//! The `tonic_guard` example's gRPC server, called by a real tonic client over loopback:
//! core's `AuthLayer` running the JWT (and demo API-key) authenticators, then a
//! `RequireScopeLayer`.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/tonic_guard.rs"]
mod example;

use std::{
    error::Error,
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use example::{AUDIENCE, Credential, ISSUER, SECRET, connect, get, mint, serve};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::Code;

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Box<dyn Error + Send + Sync>>>,
}

async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn sign(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn grpc_calls_are_authenticated_then_scope_checked() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();

    let status = get(channel.clone(), Credential::None, "greeting")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "authentication is required");

    let guest = mint("bob", "profile").unwrap();
    let status = get(channel.clone(), Credential::Bearer(&guest), "greeting")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "the credential lacks a required scope");

    let reader = mint("alice", "profile data:read").unwrap();
    let reply = get(channel.clone(), Credential::Bearer(&reader), "greeting")
        .await
        .unwrap();
    assert_eq!(reply.value, "hello");
    assert_eq!(reply.caller, "alice");

    // Past the guards, the service's own statuses come through untouched.
    let status = get(channel, Credential::Bearer(&reader), "missing")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_not_permission_denied() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();
    let t = now();
    let claims = |aud: &str, exp: u64| {
        serde_json::json!({
            "iss": ISSUER, "aud": aud, "sub": "mallory", "scope": "data:read",
            "iat": t - 600, "exp": exp,
        })
    };
    let reader = mint("alice", "data:read").unwrap();
    // Another last character whose significant bits differ: a signature already ending
    // in `A` would otherwise come back unchanged (one token in sixteen).
    let last = if reader.ends_with('A') { 'Q' } else { 'A' };
    let tampered = format!("{}{last}", &reader[..reader.len() - 1]);
    let cases = [
        ("opaque", "not-a-jwt".to_owned()),
        ("tampered signature", tampered),
        ("wrong key", sign(claims(AUDIENCE, t + 300), &[7u8; 32])),
        (
            "wrong audience",
            sign(claims("another-api", t + 300), SECRET),
        ),
        ("expired", sign(claims(AUDIENCE, t - 300), SECRET)),
    ];
    for (label, token) in &cases {
        let status = get(channel.clone(), Credential::Bearer(token), "greeting")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{label}");
        assert!(!status.message().contains("scope"), "{label}");
        assert!(!status.message().contains(token.as_str()), "{label}");
    }
    server.stop().await;
}

#[tokio::test]
async fn api_key_and_jwt_principals_are_treated_alike_over_grpc() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();

    let by_key = get(channel.clone(), Credential::ApiKey("backup-key"), "answer")
        .await
        .unwrap();
    assert_eq!(by_key.value, "42");
    assert_eq!(by_key.caller, "backup-job");

    let key_denied = get(channel.clone(), Credential::ApiKey("metrics-key"), "answer")
        .await
        .unwrap_err();
    let guest = mint("bob", "metrics:read").unwrap();
    let user_denied = get(channel.clone(), Credential::Bearer(&guest), "answer")
        .await
        .unwrap_err();
    assert_eq!(key_denied.code(), Code::PermissionDenied);
    assert_eq!(key_denied.code(), user_denied.code());
    assert_eq!(key_denied.message(), user_denied.message());

    let unknown_key = get(channel, Credential::ApiKey("stolen-key"), "answer")
        .await
        .unwrap_err();
    assert_eq!(unknown_key.code(), Code::Unauthenticated);

    server.stop().await;
}

#[tokio::test]
async fn many_concurrent_calls_on_one_channel_each_get_their_own_verdict() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();
    let reader = mint("alice", "data:read").unwrap();
    let guest = mint("bob", "profile").unwrap();
    let mut calls = Vec::new();
    for i in 0..40 {
        let channel = channel.clone();
        let token = if i % 2 == 0 {
            reader.clone()
        } else {
            guest.clone()
        };
        calls.push(tokio::spawn(async move {
            (
                i,
                get(channel, Credential::Bearer(&token), "greeting").await,
            )
        }));
    }
    for call in calls {
        let (i, result) = call.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(result.unwrap().caller, "alice");
        } else {
            assert_eq!(result.unwrap_err().code(), Code::PermissionDenied);
        }
    }
    server.stop().await;
}
