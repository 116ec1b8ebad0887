//! The `tonic_guard` example's gRPC server, called by a real tonic client over loopback.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/tonic_guard.rs"]
mod example;

use std::net::SocketAddr;

use example::{Credential, connect, get, serve};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::Code;

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
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

#[tokio::test]
async fn grpc_calls_are_authenticated_then_scope_checked() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();

    let status = get(channel.clone(), Credential::None, "greeting")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "authentication is required");

    let status = get(
        channel.clone(),
        Credential::Bearer("forged-token"),
        "greeting",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the credential is invalid");

    let status = get(
        channel.clone(),
        Credential::Bearer("guest-token"),
        "greeting",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "the credential lacks a required scope");

    let reply = get(
        channel.clone(),
        Credential::Bearer("reader-token"),
        "greeting",
    )
    .await
    .unwrap();
    assert_eq!(reply.value, "hello");
    assert_eq!(reply.caller, "alice");

    // Past the guards, the service's own statuses come through untouched.
    let status = get(channel, Credential::Bearer("reader-token"), "missing")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    server.stop().await;
}

#[tokio::test]
async fn api_key_and_bearer_principals_are_treated_alike_over_grpc() {
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
    let user_denied = get(channel.clone(), Credential::Bearer("guest-token"), "answer")
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
    let mut calls = Vec::new();
    for i in 0..40 {
        let channel = channel.clone();
        calls.push(tokio::spawn(async move {
            let credential = if i % 2 == 0 {
                Credential::Bearer("reader-token")
            } else {
                Credential::Bearer("guest-token")
            };
            (i, get(channel, credential, "greeting").await)
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
