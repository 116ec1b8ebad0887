//! The inventory server, called over loopback with the generated client: each method's
//! status and message for each kind of caller, the quotas, the open health service.

use std::{
    error::Error,
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use portcullis::{AuthLayer, guard::RequireRoleLayer};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code, Status,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_inventory::{
    connect,
    pb::{
        AddRequest, ListRequest, PurgeRequest, inventory_client::InventoryClient,
        inventory_server::InventoryServer,
    },
    request, serve,
    store::Store,
    tokens::{AUDIENCE, ISSUER, SECRET, authenticator, mint},
};
use tower::Layer;

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
    async fn client(&self) -> InventoryClient<Channel> {
        InventoryClient::new(connect(self.addr).await.unwrap())
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn add(name: &str, quantity: u32) -> AddRequest {
    AddRequest {
        name: name.to_owned(),
        quantity,
    }
}

/// The outcome of a call: `Ok` or the status code and message.
fn outcome<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), (Code, String)> {
    result
        .map(drop)
        .map_err(|status| (status.code(), status.message().to_owned()))
}

/// Calls each method once with `token`.
async fn each_method(
    client: &mut InventoryClient<Channel>,
    token: Option<&str>,
) -> [Result<(), (Code, String)>; 3] {
    [
        outcome(client.list(request(ListRequest {}, token)).await),
        outcome(client.add(request(add("bolt", 1), token)).await),
        outcome(client.purge(request(PurgeRequest {}, token)).await),
    ]
}

const UNAUTHENTICATED: &str = "authentication is required";
const BAD_SIGNATURE: &str = "the token's signature is invalid";
const NO_SCOPE: &str = "the credential lacks a required scope: inventory:write";
const NO_ROLE: &str = "the credential lacks a required role: admin";

fn refused(code: Code, message: &str) -> Result<(), (Code, String)> {
    Err((code, message.to_owned()))
}

#[tokio::test]
async fn every_method_answers_each_caller_as_its_entry_says() {
    let server = start().await;
    let mut client = server.client().await;
    let forged = {
        let token = mint("mallory", "inventory:write", &["admin"]);
        // Another last character whose significant bits differ: a signature already
        // ending in `A` would otherwise come back unchanged (one token in sixteen).
        let last = if token.ends_with('A') { 'Q' } else { 'A' };
        format!("{}{last}", &token[..token.len() - 1])
    };
    let reader = mint("rita", "profile", &[]);
    let clerk = mint("carl", "profile inventory:write", &[]);
    let admin = mint("ada", "inventory:write", &["admin"]);
    let cases = [
        (
            "no token",
            None,
            [
                Ok(()),
                refused(Code::Unauthenticated, UNAUTHENTICATED),
                refused(Code::Unauthenticated, UNAUTHENTICATED),
            ],
        ),
        (
            "bad token",
            Some(forged.as_str()),
            [
                refused(Code::Unauthenticated, BAD_SIGNATURE),
                refused(Code::Unauthenticated, BAD_SIGNATURE),
                refused(Code::Unauthenticated, BAD_SIGNATURE),
            ],
        ),
        (
            "missing scope",
            Some(&reader),
            [
                Ok(()),
                refused(Code::PermissionDenied, NO_SCOPE),
                refused(Code::PermissionDenied, NO_ROLE),
            ],
        ),
        (
            "missing role",
            Some(&clerk),
            [Ok(()), Ok(()), refused(Code::PermissionDenied, NO_ROLE)],
        ),
        ("admin", Some(&admin), [Ok(()), Ok(()), Ok(())]),
    ];
    for (caller, token, want) in cases {
        let got = each_method(&mut client, token).await;
        assert_eq!(got, want, "{caller} (List, Add, Purge)");
    }
    server.stop().await;
}

#[tokio::test]
async fn refusals_name_what_is_missing_in_the_metadata() {
    let server = start().await;
    let mut client = server.client().await;
    let reader = mint("rita", "profile", &[]);
    let status = client
        .add(request(add("bolt", 1), Some(&reader)))
        .await
        .unwrap_err();
    assert_eq!(
        status.metadata().get("required-scope").unwrap(),
        "inventory:write"
    );
    let status = client
        .purge(request(PurgeRequest {}, Some(&reader)))
        .await
        .unwrap_err();
    assert_eq!(status.metadata().get("required-role").unwrap(), "admin");
    assert!(status.metadata().get("required-scope").is_none());
    server.stop().await;
}

#[tokio::test]
async fn the_fourth_add_within_a_minute_is_over_quota() {
    let server = start().await;
    let mut client = server.client().await;
    let clerk = mint("carl", "inventory:write", &[]);
    let reader = mint("rita", "profile", &[]);
    let admin = mint("ada", "inventory:write", &["admin"]);
    for n in 1..=3 {
        let item = client
            .add(request(add("bolt", 1), Some(&clerk)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(item.quantity, n);
    }
    let status = client
        .add(request(add("bolt", 1), Some(&clerk)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "too many requests");
    // A burst of three, one more every 20 s.
    assert_eq!(status.metadata().get("retry-after").unwrap(), "20");

    // Checks come before the count: a caller lacking the scope is told so, however
    // often it calls, and never spends anyone's quota.
    for _ in 0..4 {
        let status = client
            .add(request(add("bolt", 1), Some(&reader)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
    }
    // The quota is per caller: the admin still has its own.
    let item = client
        .add(request(add("bolt", 1), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.quantity, 4);
    // Other methods are not limited by Add's quota.
    assert!(
        client
            .list(request(ListRequest {}, Some(&clerk)))
            .await
            .is_ok()
    );
    server.stop().await;
}

#[tokio::test]
async fn anonymous_listing_is_limited_per_client_address_from_tonic() {
    let server = start().await;
    let mut client = server.client().await;
    // The address comes from tonic's connect info: without it, INTERNAL.
    for _ in 0..20 {
        let reply = client
            .list(request(ListRequest {}, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.caller, "anonymous");
    }
    let status = client
        .list(request(ListRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // A signed-in caller from the same address is counted by subject.
    let reader = mint("rita", "profile", &[]);
    let reply = client
        .list(request(ListRequest {}, Some(&reader)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.caller, "rita");
    server.stop().await;
}

#[tokio::test]
async fn the_health_service_is_open_even_to_bad_tokens() {
    let server = start().await;
    let mut health = HealthClient::new(connect(server.addr).await.unwrap());
    for token in [None, Some("not-a-jwt")] {
        let check = HealthCheckRequest {
            service: "inventory.Inventory".into(),
        };
        let reply = health.check(request(check, token)).await.unwrap();
        assert_eq!(reply.into_inner().status(), ServingStatus::Serving);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_token_sent_without_bearer_gets_a_hint() {
    let server = start().await;
    let mut client = server.client().await;
    let admin = mint("ada", "inventory:write", &["admin"]);
    let mut call = tonic::Request::new(PurgeRequest {});
    call.metadata_mut()
        .insert("authorization", admin.parse().unwrap());
    let status = client.purge(call).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "authentication is required: send the token as `Bearer <token>`"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_handler_checks_what_depends_on_the_message() {
    let server = start().await;
    let mut client = server.client().await;
    let clerk = mint("carl", "inventory:write", &[]);
    let status = client
        .add(request(add("bolt", 101), Some(&clerk)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "the credential lacks a required scope: inventory:bulk"
    );
    assert_eq!(
        status.metadata().get("required-scope").unwrap(),
        "inventory:bulk"
    );
    let bulk = mint("bea", "inventory:write inventory:bulk", &[]);
    let item = client
        .add(request(add("bolt", 101), Some(&bulk)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.quantity, 101);
    // Past the policy, the service's own statuses come through untouched.
    let status = client
        .add(request(add("", 1), Some(&bulk)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn a_guard_layer_wraps_one_generated_service() {
    // Without a policy: an optional auth layer on the server, a guard on one service,
    // which keeps its gRPC name (no `named_layer` needed).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let inventory = RequireRoleLayer::any(["admin"]).layer(InventoryServer::new(Store::default()));
    let server = Server::builder()
        .layer(AuthLayer::new(authenticator().unwrap()).optional())
        .add_service(health)
        .add_service(inventory)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = stopped.await;
        });
    let task = tokio::spawn(server);

    let mut client = InventoryClient::new(connect(addr).await.unwrap());
    let clerk = mint("carl", "inventory:write", &[]);
    let admin = mint("ada", "inventory:write", &["admin"]);
    let status = client
        .list(request(ListRequest {}, Some(&clerk)))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, NO_ROLE)
    );
    let status = client
        .list(request(ListRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let reply = client
        .list(request(ListRequest {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.caller, "ada");
    // The other service is not guarded.
    let mut health = HealthClient::new(connect(addr).await.unwrap());
    let check = HealthCheckRequest {
        service: String::new(),
    };
    let reply = health.check(request(check, None)).await.unwrap();
    assert_eq!(reply.into_inner().status(), ServingStatus::Serving);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

fn sign(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_and_never_echoed() {
    let server = start().await;
    let mut client = server.client().await;
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |aud: &str, exp: u64| {
        serde_json::json!({
            "iss": ISSUER, "aud": aud, "sub": "mallory", "roles": ["admin"],
            "iat": t - 600, "exp": exp,
        })
    };
    let cases = [
        ("opaque", "not-a-jwt".to_owned()),
        ("wrong key", sign(claims(AUDIENCE, t + 300), &[7u8; 32])),
        ("wrong audience", sign(claims("billing", t + 300), SECRET)),
        ("expired", sign(claims(AUDIENCE, t - 300), SECRET)),
    ];
    for (label, token) in &cases {
        let status = client
            .purge(request(PurgeRequest {}, Some(token)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{label}");
        assert!(!status.message().contains(token.as_str()), "{label}");
    }
    server.stop().await;
}

#[tokio::test]
async fn concurrent_calls_on_one_channel_each_get_their_own_verdict() {
    let server = start().await;
    let channel = connect(server.addr).await.unwrap();
    let admin = mint("ada", "inventory:write", &["admin"]);
    let clerk = mint("carl", "inventory:write", &[]);
    let mut calls = Vec::new();
    for i in 0..40 {
        let mut client = InventoryClient::new(channel.clone());
        let token = if i % 2 == 0 {
            admin.clone()
        } else {
            clerk.clone()
        };
        calls.push(tokio::spawn(async move {
            let result = client.purge(request(PurgeRequest {}, Some(&token))).await;
            (i, result.map(|reply| reply.into_inner().purged_by))
        }));
    }
    for call in calls {
        let (i, result) = call.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(result.unwrap(), "ada");
        } else {
            assert_eq!(result.unwrap_err().code(), Code::PermissionDenied);
        }
    }
    server.stop().await;
}
