use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use http::{HeaderMap, Request, Response, StatusCode, request::Parts};
use portcullis_core::{
    AuthError, AuthEvent, AuthResult, Authenticator, Events, MaybeReady, Principal, PrincipalKind,
    credentials::authorization_bearer,
};
use tower::{Layer, ServiceExt, service_fn};

use super::{Access, Policy, PolicyLayer};
use crate::{Match, RoleHierarchy};

/// Bearer tokens name the caller: `root` (role `admin`), `clerk` (scope `inv:write`),
/// `guest` (nothing), `slow-clerk` (clerk, after a yield); `bad` is invalid and any
/// other value is nobody's.
struct Toy;

impl Authenticator for Toy {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let principal = |name: &str, roles: &[&str], scopes: &[&str]| {
            Ok(Some(
                Principal::builder(name, PrincipalKind::User)
                    .roles(roles.iter().copied())
                    .scopes(scopes.iter().copied())
                    .build(),
            ))
        };
        MaybeReady::Ready(match authorization_bearer(&parts.headers) {
            Ok(Some("root")) => principal("root", &["admin"], &[]),
            Ok(Some("clerk")) => principal("clerk", &[], &["inv:write"]),
            Ok(Some("guest")) => principal("guest", &[], &[]),
            Ok(Some("slow-clerk")) => {
                return MaybeReady::pending(async move {
                    tokio::task::yield_now().await;
                    principal("clerk", &[], &["inv:write"])
                });
            }
            Ok(Some("bad")) => Err(AuthError::invalid_token("bad")),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        })
    }
}

type Server = Policy<
    tower::util::ServiceFn<
        fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>,
    >,
    Toy,
>;

/// Answers `200` with the caller's subject, or `anonymous`.
fn handler(request: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    let subject = request
        .extensions()
        .get::<Principal>()
        .map_or("anonymous", |p| p.subject())
        .to_owned();
    std::future::ready(Ok(Response::new(subject)))
}

fn layer() -> PolicyLayer<Toy> {
    PolicyLayer::new(Toy)
        .route("/inv.Inventory/*", Access::authenticated())
        .route("/inv.Inventory/List", Access::anonymous())
        .route("/inv.Inventory/Add", Access::scope("inv:write"))
        .route("/inv.Inventory/Purge", Access::role("admin"))
        .route("/grpc.health.v1.Health/*", Access::open())
}

fn server(layer: PolicyLayer<Toy>) -> Server {
    layer.layer(service_fn(handler as fn(_) -> _))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn grpc(&self) -> Option<&str> {
        self.headers.get("grpc-status").map(|s| s.to_str().unwrap())
    }

    fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }
}

async fn call(server: &Server, path: &str, token: Option<&str>, grpc: bool) -> Answer {
    let mut request = Request::post(path);
    if grpc {
        request = request.header("content-type", "application/grpc");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = server
        .clone()
        .oneshot(request.body(()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn grpc(server: &Server, path: &str, token: Option<&str>) -> Answer {
    call(server, path, token, true).await
}

#[tokio::test]
async fn each_method_gets_what_its_entry_says() {
    let server = server(layer());
    let cases = [
        ("/inv.Inventory/List", None, None),
        ("/inv.Inventory/List", Some("guest"), None),
        ("/inv.Inventory/List", Some("bad"), Some("16")),
        ("/inv.Inventory/Add", None, Some("16")),
        ("/inv.Inventory/Add", Some("bad"), Some("16")),
        ("/inv.Inventory/Add", Some("root"), Some("7")),
        ("/inv.Inventory/Add", Some("clerk"), None),
        ("/inv.Inventory/Purge", Some("clerk"), Some("7")),
        ("/inv.Inventory/Purge", Some("root"), None),
        // Covered by the service-wide entry.
        ("/inv.Inventory/Count", None, Some("16")),
        ("/inv.Inventory/Count", Some("guest"), None),
        // Open: not even a bad credential is looked at.
        ("/grpc.health.v1.Health/Check", Some("bad"), None),
        // Nowhere in the table: authentication required.
        ("/other.Service/Get", None, Some("16")),
        ("/other.Service/Get", Some("guest"), None),
    ];
    for (path, token, want) in cases {
        let answer = grpc(&server, path, token).await;
        assert_eq!(answer.grpc(), want, "{path} with {token:?}");
    }
}

#[tokio::test]
async fn refusals_name_the_missing_scope_and_role() {
    let server = server(layer());
    let answer = grpc(&server, "/inv.Inventory/Add", Some("guest")).await;
    assert_eq!(
        answer.header("grpc-message"),
        "the credential lacks a required scope: inv:write"
    );
    assert_eq!(answer.header("required-scope"), "inv:write");
    let answer = grpc(&server, "/inv.Inventory/Purge", Some("guest")).await;
    assert_eq!(
        answer.header("grpc-message"),
        "the credential lacks a required role: admin"
    );
    assert_eq!(answer.header("required-role"), "admin");
}

#[tokio::test]
async fn the_principal_reaches_the_service_and_open_calls_are_anonymous() {
    let server = server(layer());
    assert_eq!(
        grpc(&server, "/inv.Inventory/List", Some("guest"))
            .await
            .body,
        "guest"
    );
    assert_eq!(
        grpc(&server, "/inv.Inventory/List", None).await.body,
        "anonymous"
    );
    let answer = grpc(&server, "/grpc.health.v1.Health/Check", Some("root")).await;
    assert_eq!(answer.body, "anonymous");
}

#[tokio::test]
async fn a_pending_authenticator_is_awaited_before_the_checks() {
    let server = server(layer());
    let answer = grpc(&server, "/inv.Inventory/Add", Some("slow-clerk")).await;
    assert_eq!((answer.grpc(), answer.body.as_str()), (None, "clerk"));
    let answer = grpc(&server, "/inv.Inventory/Purge", Some("slow-clerk")).await;
    assert_eq!(answer.grpc(), Some("7"));
}

#[tokio::test]
async fn plain_http_routes_get_challenges_in_the_realm() {
    let server = server(
        PolicyLayer::new(Toy)
            .route("/admin/*", Access::role("admin"))
            .route("/reports", Access::scope("reports:read"))
            .fallback(Access::anonymous())
            .realm("shop"),
    );
    let answer = call(&server, "/admin/users/7", Some("guest"), false).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        (body["code"].as_str(), body["role"].as_str()),
        (Some("insufficient_role"), Some("admin"))
    );
    let answer = call(&server, "/reports", Some("guest"), false).await;
    assert_eq!(
        answer.header("www-authenticate"),
        r#"Bearer realm="shop", error="insufficient_scope", error_description="the credential lacks a required scope", scope="reports:read""#
    );
    let answer = call(&server, "/reports", None, false).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header("www-authenticate"), r#"Bearer realm="shop""#);
    assert_eq!(call(&server, "/", None, false).await.status, StatusCode::OK);
}

#[tokio::test]
async fn roles_go_through_the_hierarchy_which_handlers_then_see() {
    let layer = PolicyLayer::new(Toy)
        .route(
            "/edit",
            Access::authenticated().roles(Match::Any, ["editor", "owner"]),
        )
        .with_hierarchy(RoleHierarchy::new().grant("admin", ["editor"]));
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let server = layer.layer(service_fn(move |request: Request<()>| {
        let hierarchy = request.extensions().get::<RoleHierarchy>().cloned();
        *record.lock().unwrap() = Some(hierarchy.is_some());
        async { Ok::<_, Infallible>(Response::new(String::new())) }
    }));
    let request = Request::get("/edit")
        .header("authorization", "Bearer root")
        .body(())
        .unwrap();
    let response = server.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), Some(true));
    let request = Request::get("/edit")
        .header("authorization", "Bearer clerk")
        .body(())
        .unwrap();
    assert_eq!(
        server.oneshot(request).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn refusals_are_reported_as_events() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let events = Events::new(move |event: &AuthEvent<'_>| {
        if let AuthEvent::Rejected { error, path } = event {
            record
                .lock()
                .unwrap()
                .push(format!("{path} {}", error.reason()));
        }
    });
    let server = server(layer().with_events(events));
    grpc(&server, "/inv.Inventory/Purge", Some("clerk")).await;
    grpc(&server, "/inv.Inventory/Add", None).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/inv.Inventory/Purge insufficient_role",
            "/inv.Inventory/Add missing_credentials"
        ]
    );
}

#[test]
fn layer_service_and_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<PolicyLayer<Toy>>();
    send_sync::<Server>();
    let mut server = server(layer());
    send(&tower::Service::call(&mut server, Request::new(())));
}

#[cfg(feature = "tonic")]
#[test]
fn a_layered_tonic_service_keeps_its_name() {
    use tonic::server::NamedService;

    struct Inventory;

    impl NamedService for Inventory {
        const NAME: &'static str = "inv.Inventory";
    }

    fn name<S: NamedService>(_: &S) -> &'static str {
        S::NAME
    }
    assert_eq!(name(&layer().layer(Inventory)), "inv.Inventory");
    let guarded = crate::RequireRoleLayer::any(["admin"]).layer(Inventory);
    assert_eq!(name(&guarded), "inv.Inventory");
}

#[cfg(feature = "ratelimit")]
mod rate_limits {
    use std::{net::SocketAddr, num::NonZeroU32};

    use portcullis_core::{ClientIpResolver, PeerAddr};
    use portcullis_ratelimit::Quota;

    use super::*;

    fn limited(anonymous: bool) -> Server {
        let quota = Quota::per_minute(NonZeroU32::new(2).unwrap());
        let add = if anonymous {
            Access::anonymous()
        } else {
            Access::scope("inv:write")
        };
        server(layer().route("/inv.Inventory/Stock", add.rate_limit(quota)))
    }

    #[tokio::test]
    async fn a_caller_over_quota_is_exhausted_and_others_are_not() {
        let server = limited(false);
        for _ in 0..2 {
            assert_eq!(
                grpc(&server, "/inv.Inventory/Stock", Some("clerk"))
                    .await
                    .grpc(),
                None
            );
        }
        let answer = grpc(&server, "/inv.Inventory/Stock", Some("clerk")).await;
        assert_eq!(answer.grpc(), Some("8"));
        assert_eq!(answer.header("grpc-message"), "too many requests");
        assert_eq!(answer.header("retry-after"), "30");
        // Plain HTTP callers get a 429.
        let answer = call(&server, "/inv.Inventory/Stock", Some("clerk"), false).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn a_caller_lacking_the_scope_is_denied_and_spends_no_quota() {
        let server = limited(false);
        // Regression: a limit placed before a handler's scope check answered
        // RESOURCE_EXHAUSTED to callers lacking the scope.
        for _ in 0..5 {
            let answer = grpc(&server, "/inv.Inventory/Stock", Some("guest")).await;
            assert_eq!(answer.grpc(), Some("7"));
            assert_eq!(
                grpc(&server, "/inv.Inventory/Stock", None).await.grpc(),
                Some("16")
            );
        }
        assert_eq!(
            grpc(&server, "/inv.Inventory/Stock", Some("clerk"))
                .await
                .grpc(),
            None
        );
    }

    async fn from(server: &Server, peer: [u8; 4]) -> Option<String> {
        let mut request = Request::post("/inv.Inventory/Stock")
            .header("content-type", "application/grpc")
            .header("x-forwarded-for", "198.51.100.1");
        if peer != [0; 4] {
            request = request.extension(PeerAddr(SocketAddr::from((peer, 4711))));
        }
        let response = server
            .clone()
            .oneshot(request.body(()).unwrap())
            .await
            .unwrap();
        response
            .headers()
            .get("grpc-status")
            .map(|s| s.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn anonymous_calls_are_counted_per_client_ip() {
        let server = limited(true);
        for _ in 0..2 {
            assert_eq!(from(&server, [192, 0, 2, 1]).await, None);
        }
        assert_eq!(from(&server, [192, 0, 2, 1]).await.as_deref(), Some("8"));
        assert_eq!(from(&server, [192, 0, 2, 2]).await, None);
    }

    #[tokio::test]
    async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
        let quota = Quota::per_minute(NonZeroU32::new(1).unwrap());
        let resolver = ClientIpResolver::new()
            .trust_proxies(["10.0.0.0/8"])
            .unwrap();
        let server = server(
            layer()
                .route(
                    "/inv.Inventory/Stock",
                    Access::anonymous().rate_limit(quota),
                )
                .client_ip(resolver),
        );
        // Two proxies, one forwarded client (198.51.100.1): one budget.
        assert_eq!(from(&server, [10, 0, 0, 1]).await, None);
        assert_eq!(from(&server, [10, 0, 0, 2]).await.as_deref(), Some("8"));
    }

    #[tokio::test]
    async fn an_unknown_client_address_is_a_generic_internal_error() {
        let server = limited(true);
        let answer = grpc(&server, "/inv.Inventory/Stock", None).await;
        assert_eq!(answer.grpc(), Some("13"));
        assert_eq!(
            answer.header("grpc-message"),
            "the server cannot determine the client address"
        );
    }
}
