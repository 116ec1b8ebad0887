//! RateLimitLayer: quotas, headers, shared state, configuration errors, the key cap.

mod common;

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
use common::parse_sf_list;
use governor::clock::FakeRelativeClock;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use portcullis_core::{
    AuthEvent, AuthLayer, Authentication, Authenticator, ClientIpResolver, Events, Principal,
    PrincipalKind,
};
use portcullis_ratelimit::{
    ApiKeyIdKey, ClientIpKey, GovernorBackend, HeaderKey, KeyError, Quota, RateLimitLayer,
    SubjectKey,
};
use tower::{Layer, Service, ServiceExt};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn app<L>(layer: L) -> Router
where
    L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<Body>>>::Response: axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send + 'static,
{
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer)
}

fn from(ip: &str) -> Request<Body> {
    let addr = SocketAddr::new(ip.parse().unwrap(), 5000);
    Request::get("/")
        .extension(ConnectInfo(addr))
        .body(Body::empty())
        .unwrap()
}

fn header(r: &Response<Body>, name: &str) -> String {
    r.headers()[name].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn quota_is_enforced_with_draft_headers() {
    let clock = FakeRelativeClock::default();
    let backend = GovernorBackend::with_clock(Quota::per_minute(nz(3)), clock.clone());
    let layer = RateLimitLayer::with_backend(ClientIpKey::new(), backend)
        .policy_name("api")
        .headers_on_success(true);
    let app = app(layer);

    for expected_r in [2, 1, 0] {
        let res = app.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let policy = parse_sf_list(&header(&res, "ratelimit-policy")).unwrap();
        assert_eq!(policy.len(), 1);
        assert_eq!(policy[0].name, "api");
        assert_eq!(policy[0].params["q"], 3);
        assert_eq!(policy[0].params["w"], 60);
        let limit = parse_sf_list(&header(&res, "ratelimit")).unwrap();
        assert_eq!(limit[0].name, "api");
        assert_eq!(limit[0].params["r"], expected_r);
        assert!(limit[0].params["t"] > 0 && limit[0].params["t"] <= 60);
    }

    let res = app.clone().oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "20");
    let limit = parse_sf_list(&header(&res, "ratelimit")).unwrap();
    assert_eq!(limit[0].params["r"], 0);
    assert_eq!(limit[0].params["t"], 20);
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let body: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "rate_limited");

    // Another client is not affected.
    let res = app.clone().oneshot(from("192.0.2.2")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // One cell comes back after 20 s of fake time, no sleeping.
    clock.advance(Duration::from_secs(20));
    let res = app.clone().oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn no_headers_on_success_by_default() {
    let app = app(RateLimitLayer::new(
        ClientIpKey::new(),
        Quota::per_minute(nz(5)),
    ));
    let res = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("ratelimit").is_none());
}

#[test]
fn an_admission_check_decides_and_counts_like_a_full_check() {
    // Twin backends on one fake clock: one asked with `check_now`, one with
    // `check_admission_now` (what the layer uses without success headers).
    let clock = FakeRelativeClock::default();
    let quota = Quota::per_minute(nz(3)).allow_burst(nz(3));
    let full = GovernorBackend::<IpAddr, _>::with_clock(quota, clock.clone());
    let admit = GovernorBackend::<IpAddr, _>::with_clock(quota, clock.clone());
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let mut refused = 0;
    for step in 0..12 {
        let (a, b) = (full.check_now(&ip), admit.check_admission_now(&ip));
        assert_eq!(a.is_allowed(), b.is_allowed(), "step {step}");
        if a.is_allowed() {
            assert!(a.reset() > Duration::ZERO, "a full check has counts");
            assert_eq!((b.remaining(), b.reset()), (0, Duration::ZERO));
        } else {
            refused += 1;
            assert_eq!(a.retry_after(), b.retry_after(), "step {step}");
            assert_eq!(a.reset(), b.reset(), "step {step}");
            assert!(b.retry_after() > Duration::ZERO);
        }
        clock.advance(Duration::from_secs(7));
    }
    // A cell every 20 s, a burst of 3, a request every 7 s over 77 s: allowed at 0,
    // 7, 14 (the burst), 21, 42 and 63; the other six refused.
    assert_eq!(refused, 6);
}

#[tokio::test]
async fn without_success_headers_a_refusal_still_carries_exact_fields() {
    let clock = FakeRelativeClock::default();
    let backend = GovernorBackend::with_clock(Quota::per_minute(nz(2)), clock.clone());
    let app = app(RateLimitLayer::with_backend(ClientIpKey::new(), backend));
    for _ in 0..2 {
        let res = app.clone().oneshot(from("192.0.2.9")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("ratelimit").is_none());
    }
    clock.advance(Duration::from_secs(5));
    let res = app.oneshot(from("192.0.2.9")).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The next cell is due 30 s after the first request: 25 s from now.
    assert_eq!(header(&res, "retry-after"), "25");
    assert_eq!(header(&res, "ratelimit"), r#""default";r=0;t=25"#);
}

#[tokio::test]
async fn grpc_requests_get_resource_exhausted() {
    let app = app(RateLimitLayer::new(
        ClientIpKey::new(),
        Quota::per_hour(nz(1)),
    ));
    let grpc = || {
        let mut r = from("192.0.2.1");
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        r
    };
    assert_eq!(app.clone().oneshot(grpc()).await.unwrap().status(), 200);
    let res = app.oneshot(grpc()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "grpc-status"), "8");
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn clones_of_a_layer_share_one_state() {
    let layer = RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(2)));
    let a = app(layer.clone());
    let b = Router::new()
        .route("/", get(|| async { "other" }))
        .layer(layer);
    assert_eq!(
        a.clone().oneshot(from("192.0.2.9")).await.unwrap().status(),
        200
    );
    assert_eq!(
        b.clone().oneshot(from("192.0.2.9")).await.unwrap().status(),
        200
    );
    assert_eq!(a.oneshot(from("192.0.2.9")).await.unwrap().status(), 429);
    assert_eq!(b.oneshot(from("192.0.2.9")).await.unwrap().status(), 429);
}

#[tokio::test]
async fn missing_peer_address_is_a_500_that_explains() {
    let app = app(RateLimitLayer::new(
        ClientIpKey::new(),
        Quota::per_hour(nz(2)),
    ));
    let res = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("into_make_service_with_connect_info"),
        "{text}"
    );
}

#[tokio::test]
async fn subject_key_without_principal_is_a_500_never_a_pass() {
    let app = app(RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(2))));
    let res = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("inside the auth layer"));
}

struct Users;

impl Authenticator for Users {
    fn authenticate(&self, parts: &http::request::Parts) -> Authentication {
        let p = match parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Some(k) if k.starts_with("key-") => Some(
                Principal::builder("owner", PrincipalKind::ApiKey)
                    .token_id(k)
                    .build(),
            ),
            Some(u) => Some(Principal::builder(u, PrincipalKind::User).build()),
            None => None,
        };
        Authentication::Ready(Ok(p))
    }
}

#[tokio::test]
async fn subject_and_api_key_keys_inside_the_auth_layer() {
    for (limit, a, b) in [
        (
            RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(1))).policy_name("s"),
            "alice",
            "bob",
        ),
        (
            RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(1))).policy_name("s2"),
            "carol",
            "dave",
        ),
    ] {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(limit)
            .layer(AuthLayer::new(Users));
        let req = |u: &str| {
            Request::get("/")
                .header("x-user", u)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(app.clone().oneshot(req(a)).await.unwrap().status(), 200);
        assert_eq!(app.clone().oneshot(req(a)).await.unwrap().status(), 429);
        assert_eq!(app.clone().oneshot(req(b)).await.unwrap().status(), 200);
    }

    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(ApiKeyIdKey, Quota::per_hour(nz(1))))
        .layer(AuthLayer::new(Users));
    let req = |u: &str| {
        Request::get("/")
            .header("x-user", u)
            .body(Body::empty())
            .unwrap()
    };
    // Two keys of the same owner are limited separately.
    assert_eq!(
        app.clone().oneshot(req("key-1")).await.unwrap().status(),
        200
    );
    assert_eq!(
        app.clone().oneshot(req("key-1")).await.unwrap().status(),
        429
    );
    assert_eq!(
        app.clone().oneshot(req("key-2")).await.unwrap().status(),
        200
    );
    // A user principal is keyed by subject in its own key space.
    assert_eq!(
        app.clone().oneshot(req("owner")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn header_key_and_closure_key() {
    let app = app(RateLimitLayer::new(
        HeaderKey::new("x-tenant".parse().unwrap()),
        Quota::per_hour(nz(1)),
    ));
    let req = |t: Option<&str>| {
        let mut b = Request::get("/");
        if let Some(t) = t {
            b = b.header("x-tenant", t);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(
        app.clone().oneshot(req(Some("a"))).await.unwrap().status(),
        200
    );
    assert_eq!(
        app.clone().oneshot(req(Some("a"))).await.unwrap().status(),
        429
    );
    assert_eq!(app.clone().oneshot(req(None)).await.unwrap().status(), 400);
    let long = "x".repeat(200);
    assert_eq!(app.oneshot(req(Some(&long))).await.unwrap().status(), 400);

    let by_path = |parts: &http::request::Parts| -> Result<String, KeyError> {
        Ok(parts.uri.path().to_owned())
    };
    let app = Router::new()
        .route("/{x}", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(by_path, Quota::per_hour(nz(1))));
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(app.clone().oneshot(get("/a")).await.unwrap().status(), 200);
    assert_eq!(app.clone().oneshot(get("/a")).await.unwrap().status(), 429);
    assert_eq!(app.oneshot(get("/b")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn ipv6_clients_share_their_64_and_spoofed_xff_is_ignored() {
    let key = ClientIpKey::with_resolver(
        ClientIpResolver::new()
            .trust_proxies(["10.0.0.0/8"])
            .unwrap(),
    );
    let app = app(RateLimitLayer::new(key, Quota::per_hour(nz(1))));
    assert_eq!(
        app.clone()
            .oneshot(from("2001:db8:0:1::1"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.clone()
            .oneshot(from("2001:db8:0:1:ffff::9"))
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        app.clone()
            .oneshot(from("2001:db8:0:2::1"))
            .await
            .unwrap()
            .status(),
        200
    );

    // An untrusted client cannot pick a fresh key with X-Forwarded-For.
    let spoof = |xff: &str| {
        let mut r = from("198.51.100.7");
        r.headers_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        r
    };
    assert_eq!(
        app.clone()
            .oneshot(spoof("1.1.1.1"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.clone()
            .oneshot(spoof("2.2.2.2"))
            .await
            .unwrap()
            .status(),
        429
    );

    // Through the trusted proxy, the forwarded client is the key.
    let proxied = |client: &str| {
        let mut r = from("10.0.0.1");
        r.headers_mut().insert(
            "x-forwarded-for",
            format!("{client}, 10.0.0.5").parse().unwrap(),
        );
        r
    };
    assert_eq!(
        app.clone()
            .oneshot(proxied("203.0.113.1"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.clone()
            .oneshot(proxied("203.0.113.1"))
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        app.oneshot(proxied("203.0.113.2")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn throttled_event_is_emitted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |e: &AuthEvent<'_>| {
        if let AuthEvent::Throttled {
            policy, key_kind, ..
        } = e
        {
            log.lock().unwrap().push(format!("{policy}/{key_kind}"));
        }
    });
    let app = app(
        RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(1)))
            .policy_name("api")
            .with_events(events),
    );
    let _ = app.clone().oneshot(from("192.0.2.1")).await.unwrap();
    let _ = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["api/ip"]);
}

#[tokio::test]
async fn key_cap_holds_under_a_spray_and_limited_keys_stay_limited() {
    let clock = FakeRelativeClock::default();
    let backend = GovernorBackend::<IpAddr, _>::with_clock(Quota::per_minute(nz(2)), clock.clone())
        .with_max_keys(nz(1000));
    let layer = RateLimitLayer::with_backend(ClientIpKey::new(), backend.clone());
    let mut svc = layer.layer(tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
    }));

    // Exhaust one victim key first.
    for expected in [200, 200, 429] {
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(from("192.0.2.200"))
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
    }
    let mut overflow_refused = 0;
    for i in 0..20_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(from(&ip.to_string()))
            .await
            .unwrap();
        if res.status() == 429 {
            overflow_refused += 1;
        }
        assert!(backend.tracked() <= 1000, "tracked {}", backend.tracked());
        if i % 5000 == 0 {
            clock.advance(Duration::from_secs(1));
        }
    }
    // Beyond the cap, new keys shared one bucket: they were limited, not let through.
    assert!(overflow_refused > 15_000, "refused {overflow_refused}");
    // The victim is still limited: it was never evicted.
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(from("192.0.2.200"))
        .await
        .unwrap();
    assert_eq!(res.status(), 429);

    // Once the window passes, housekeeping frees the stale keys and service resumes.
    clock.advance(Duration::from_secs(120));
    backend.housekeep();
    assert!(backend.tracked() < 1000);
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(from("192.0.2.201"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn same_body_layer_wraps_a_whole_router_on_a_real_server() {
    use http_body_util::Empty;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let router = Router::new().route("/", get(|| async { "ok" }));
    let layer = RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(3)))
        .headers_on_success(true)
        .same_body();
    // The layered router answers `Response<Body>`, so axum serves it as it is.
    let app = layer.layer(router);
    let make =
        axum::ServiceExt::<Request<Body>>::into_make_service_with_connect_info::<SocketAddr>(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, make).await.unwrap() });
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let get = |path: &str| {
        let uri = format!("http://{addr}{path}");
        let client = client.clone();
        async move {
            let res = client
                .request(Request::get(uri).body(Empty::new()).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let limit = res
                .headers()
                .get("ratelimit")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, limit, String::from_utf8(body.to_vec()).unwrap())
        }
    };

    let (status, limit, body) = get("/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(limit.as_deref(), Some(r#""default";r=2;t=1200"#));
    // Before routing: an unknown path counts against the same quota.
    let (status, limit, _) = get("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(limit.as_deref(), Some(r#""default";r=1;t=2400"#));
    assert_eq!(get("/").await.0, StatusCode::OK);
    let (status, _, body) = get("/").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "rate_limited");
    server.abort();
}
