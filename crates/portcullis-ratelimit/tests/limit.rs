//! RateLimitLayer: quotas, the RateLimit fields, gRPC, shared state, the key cap and a
//! real server.

mod common;

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use axum::{Router, body::Body, routing::get};
use common::{parse_sf_list, peer};
use governor::{RateLimiter, clock::FakeRelativeClock};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_ratelimit::{ClientIpKey, Decision, GovernorBackend, Quota, RateLimitLayer};
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
    Request::get("/")
        .extension(peer(ip))
        .body(Body::empty())
        .unwrap()
}

fn header(r: &Response<Body>, name: &str) -> String {
    r.headers()[name].to_str().unwrap().to_owned()
}

/// `(r, t)` of a `RateLimit` field.
fn limit_of(r: &Response<Body>) -> (i64, i64) {
    let limit = parse_sf_list(&header(r, "ratelimit")).unwrap();
    (limit[0].params["r"], limit[0].params["t"])
}

/// The status `svc` answers a request from `ip` with, once it is ready.
async fn status_from<S>(svc: &mut S, ip: &str) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Error: std::fmt::Debug,
{
    let ready = svc.ready().await.unwrap();
    ready.call(from(ip)).await.unwrap().status()
}

async fn problem(res: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
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
    let body = problem(res).await;
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["retry_after"], 20);

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

/// Regression: the last `200` of a burst said `t=60` (the time to a full quota) and
/// the `429` right after it `t=12` (the time to the next unit). `t` is now the time
/// until more quota is available on both, as the draft defines it.
#[tokio::test]
async fn walking_a_key_through_its_burst_tells_one_consistent_story() {
    let clock = FakeRelativeClock::default();
    // A burst of 5, one unit back every 12 s.
    let backend = GovernorBackend::with_clock(Quota::per_minute(nz(5)), clock.clone());
    let app =
        app(RateLimitLayer::with_backend(ClientIpKey::new(), backend).headers_on_success(true));
    let send = || app.clone().oneshot(from("192.0.2.40"));

    // Spaced 3 s apart: `r` counts down by one per request, `t` counts down to the
    // moment the first spent unit comes back, 12 s after the first request.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let res = send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        seen.push(limit_of(&res));
        clock.advance(Duration::from_secs(3));
    }
    // Request 5, at 12 s, spends the first unit just as it comes back: `r` stays 1,
    // and the next unit is 12 s away.
    assert_eq!(seen, [(4, 12), (3, 9), (2, 6), (1, 3), (1, 12)]);

    // Spend the rest at 15 s: the last admitted request and the refusal right after
    // it agree on `t`, and `Retry-After` says the same.
    let last = send().await.unwrap();
    assert_eq!(last.status(), StatusCode::OK);
    let (r, t) = limit_of(&last);
    assert_eq!(r, 0);
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limit_of(&refused), (0, t));
    assert_eq!(header(&refused, "retry-after"), t.to_string());
    assert_eq!(problem(refused).await["retry_after"], t);

    // After `t` seconds, one more request is served, as promised.
    clock.advance(Duration::from_secs(t as u64));
    let res = send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(limit_of(&res).0, 0);
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
fn governor_backend_decides_as_governor_does() {
    // Our GCRA beside governor's own keyed limiter on one fake clock: the same
    // admissions and the same waits, and counts that agree with governor's snapshot.
    let clock = FakeRelativeClock::default();
    let quota = Quota::per_minute(nz(3)).allow_burst(nz(3));
    let ours = GovernorBackend::<IpAddr, _>::with_clock(quota, clock.clone());
    let theirs = RateLimiter::dashmap_with_clock(quota, clock.clone())
        .with_middleware::<governor::middleware::StateInformationMiddleware>();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let mut refused = 0;
    for step in 0..12 {
        let (a, b) = (ours.check_now(&ip), theirs.check_key(&ip));
        assert_eq!(a.is_allowed(), b.is_ok(), "step {step}");
        match b {
            Ok(snapshot) => {
                assert_eq!(
                    a.remaining(),
                    snapshot.remaining_burst_capacity(),
                    "step {step}"
                );
                assert!(a.reset() > Duration::ZERO && a.reset() <= Duration::from_secs(20));
            }
            Err(not_until) => {
                refused += 1;
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                assert_eq!(a.retry_after(), wait, "step {step}");
                assert_eq!(a, Decision::denied(wait));
            }
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
    assert_eq!(problem(res).await["retry_after"], 25);
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
async fn answers_in_the_body_type_of_a_plain_service() {
    // Not axum: a service answering `Full<Bytes>`; the refusal is written into it.
    let mut svc = RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(1)))
        .headers_on_success(true)
        .layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from("ok"))))
        }));
    let req = || {
        Request::get("/")
            .extension(peer("192.0.2.3"))
            .body(())
            .unwrap()
    };
    let ok = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["ratelimit"], r#""default";r=0;t=3600"#);
    assert_eq!(ok.into_body().collect().await.unwrap().to_bytes(), "ok");
    let refused = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["retry_after"], 3600);
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
        assert_eq!(status_from(&mut svc, "192.0.2.200").await, expected);
    }
    let mut overflow_refused = 0;
    for i in 0..20_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        if status_from(&mut svc, &ip.to_string()).await == 429 {
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
    assert_eq!(status_from(&mut svc, "192.0.2.200").await, 429);

    // Once the window passes, housekeeping frees the stale keys and service resumes.
    clock.advance(Duration::from_secs(120));
    backend.housekeep();
    assert!(backend.tracked() < 1000);
    assert_eq!(status_from(&mut svc, "192.0.2.201").await, 200);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn layer_wraps_a_whole_router_on_a_real_server() {
    use std::net::SocketAddr;

    use http_body_util::Empty;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let router = Router::new().route("/", get(|| async { "ok" }));
    let layer =
        RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(3))).headers_on_success(true);
    // The layered router answers `Response<Body>`, so axum serves it as it is; the peer
    // comes from axum's `ConnectInfo`.
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
    assert_eq!(limit.as_deref(), Some(r#""default";r=1;t=1200"#));
    assert_eq!(get("/").await.0, StatusCode::OK);
    let (status, limit, body) = get("/").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limit.as_deref(), Some(r#""default";r=0;t=1200"#));
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["retry_after"], 1200);
    server.abort();
}
