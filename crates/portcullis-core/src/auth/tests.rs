use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Body, routing::get};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body_util::BodyExt;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

use crate::{
    AuthContext, AuthError, AuthEvent, AuthLayer, Authenticator, Claims, Events, MaybeReady,
    Principal, PrincipalKind, credentials::authorization_bearer,
};

/// `Bearer good` → alice; `Bearer slow` → bob after a yield; `Bearer bad` → invalid;
/// other bearer values are not ours.
struct Toy;

impl Authenticator for Toy {
    fn authenticate(&self, parts: &Parts) -> crate::MaybeReady<crate::AuthResult> {
        match authorization_bearer(&parts.headers) {
            Ok(Some("good")) => MaybeReady::Ready(Ok(Some(
                Principal::builder("alice", PrincipalKind::User)
                    .typed_claims(Claims::new(42u32))
                    .build(),
            ))),
            Ok(Some("slow")) => MaybeReady::pending(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(Some(Principal::builder("bob", PrincipalKind::User).build()))
            }),
            Ok(Some("slow-bad")) => MaybeReady::pending(async {
                tokio::task::yield_now().await;
                Err(AuthError::invalid_token("revoked"))
            }),
            Ok(Some("bad")) => MaybeReady::Ready(Err(AuthError::invalid_token("bad"))),
            Ok(_) => MaybeReady::Ready(Ok(None)),
            Err(e) => MaybeReady::Ready(Err(e)),
        }
    }
}

/// `x-key: k1` → a service principal; any other x-key value is invalid.
struct KeyHeader;

impl Authenticator for KeyHeader {
    fn authenticate(&self, parts: &Parts) -> crate::MaybeReady<crate::AuthResult> {
        MaybeReady::Ready(match parts.headers.get("x-key") {
            None => Ok(None),
            Some(v) if v == "k1" => Ok(Some(
                Principal::builder("svc", PrincipalKind::ApiKey).build(),
            )),
            Some(_) => Err(AuthError::invalid_token("unknown_key")),
        })
    }
}

fn app<A: Authenticator>(layer: AuthLayer<A>) -> Router {
    routes().route_layer(layer)
}

/// The routes of [`app`], unlayered.
fn routes() -> Router {
    Router::new()
        .route(
            "/",
            get(|p: Option<Principal>| async move {
                p.map_or_else(|| "anonymous".to_owned(), |p| p.subject().to_owned())
            }),
        )
        .route(
            "/claims",
            get(|c: Claims<u32>| async move { c.to_string() }),
        )
}

async fn send(app: &Router, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    send_to(app, "/", headers).await
}

async fn send_to(
    app: &Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn valid_credential_reaches_handler_with_principal() {
    let (status, _, body) = send(
        &app(AuthLayer::new(Toy)),
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "alice");
}

#[tokio::test]
async fn typed_claims_are_in_extensions() {
    let (status, _, body) = send_to(
        &app(AuthLayer::new(Toy)),
        "/claims",
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "42"));
}

#[tokio::test]
async fn missing_credentials_get_bare_challenge() {
    let (status, headers, body) = send(&app(AuthLayer::new(Toy).realm("shop")), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="shop""#);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "missing_credentials");
}

#[tokio::test]
async fn invalid_credential_gets_invalid_token_challenge() {
    let (status, headers, _) = send(
        &app(AuthLayer::new(Toy)),
        &[("authorization", "Bearer bad")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn unrecognised_bearer_is_invalid_not_missing() {
    for layer in [AuthLayer::new(Toy), AuthLayer::new(Toy).optional()] {
        let (status, headers, _) =
            send(&app(layer), &[("authorization", "Bearer who-knows")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}

#[tokio::test]
async fn other_scheme_counts_as_no_credentials() {
    let (status, headers, _) = send(
        &app(AuthLayer::new(Toy)),
        &[("authorization", "Basic dTpw")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="api""#);
}

#[tokio::test]
async fn a_token_sent_without_its_bearer_scheme_gets_a_hint() {
    let app = app(AuthLayer::new(Toy));
    let (status, headers, body) = send(&app, &[("authorization", "good")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="api""#);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "missing_credentials");
    assert_eq!(
        body["detail"],
        "authentication is required: send the token as `Bearer <token>`"
    );

    let grpc = [
        ("content-type", "application/grpc"),
        ("authorization", "good"),
    ];
    let (_, headers, _) = send(&app, &grpc).await;
    assert_eq!(headers["grpc-status"], "16");
    assert_eq!(
        headers["grpc-message"],
        "authentication is required: send the token as `Bearer <token>`"
    );

    // Another scheme is not a slip: no hint.
    let (_, _, body) = send(&app, &[("authorization", "Basic dTpw")]).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["detail"], "authentication is required");
}

#[tokio::test]
async fn duplicate_authorization_headers_are_invalid_request() {
    let (status, headers, _) = send(
        &app(AuthLayer::new(Toy)),
        &[
            ("authorization", "Bearer good"),
            ("authorization", "Bearer good"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_request""#)
    );
}

#[tokio::test]
async fn optional_mode_passes_anonymous_but_refuses_bad() {
    let app = app(AuthLayer::new(Toy).optional());
    let (status, _, body) = send(&app, &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    let (status, _, _) = send(&app, &[("authorization", "Bearer bad")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&app, &[("authorization", "Bearer good")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

#[tokio::test]
async fn pending_authentication_is_awaited() {
    let app = app(AuthLayer::new(Toy));
    let (status, _, body) = send(&app, &[("authorization", "Bearer slow")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bob"));
    let (status, _, _) = send(&app, &[("authorization", "Bearer slow-bad")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tuple_first_present_credential_decides() {
    let app = app(AuthLayer::new((Toy, KeyHeader)));
    let (_, _, body) = send(&app, &[("x-key", "k1")]).await;
    assert_eq!(body, "svc");
    let (_, _, body) = send(&app, &[("authorization", "Bearer good"), ("x-key", "k1")]).await;
    assert_eq!(body, "alice");
    // A present but invalid first credential never falls through to a valid second one.
    let (status, _, _) = send(&app, &[("authorization", "Bearer bad"), ("x-key", "k1")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&app, &[("x-key", "nope")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = send(&app, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="api""#);
}

#[tokio::test]
async fn grpc_requests_get_trailers_only_status() {
    let app = app(AuthLayer::new(Toy));
    for (auth, code) in [(None, "16"), (Some("Bearer bad"), "16")] {
        let mut headers = vec![("content-type", "application/grpc")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let (status, headers, body) = send(&app, &headers).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["grpc-status"], code);
        assert_eq!(headers[header::CONTENT_TYPE], "application/grpc");
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn custom_renderer_replaces_the_response() {
    let layer = AuthLayer::new(Toy).with_renderer(|err: &AuthError, _: &Parts| {
        let mut res = Response::new(Bytes::from(err.kind().code()));
        *res.status_mut() = StatusCode::IM_A_TEAPOT;
        res
    });
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
    let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"missing_credentials");
}

#[tokio::test]
async fn events_report_outcomes_without_the_credential() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let events = Events::new(move |e: &AuthEvent<'_>| {
        log.lock().unwrap().push(format!("{} {e:?}", e.name()));
    });
    let app = app(AuthLayer::new(Toy).with_events(events));
    send(&app, &[("authorization", "Bearer good")]).await;
    send(&app, &[("authorization", "Bearer bad")]).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("authenticated"));
    assert!(seen[1].starts_with("rejected"));
    assert!(seen.iter().all(|e| !e.contains("Bearer")));
}

#[tokio::test]
async fn extractor_without_auth_layer_is_a_server_error() {
    let app = Router::new().route(
        "/",
        get(|p: Principal| async move { p.subject().to_owned() }),
    );
    let (status, _, body) = send(&app, &[("authorization", "Bearer good")]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("no authentication layer"), "{body}");
}

#[tokio::test]
async fn auth_context_reaches_the_inner_service() {
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::new(Toy).realm("inner"))
        .service(service_fn(|req: Request<Body>| async move {
            let realm = req
                .extensions()
                .get::<AuthContext>()
                .unwrap()
                .realm()
                .to_owned();
            Ok::<_, Infallible>(Response::new(Body::from(realm)))
        }));
    let req = Request::get("/")
        .header("authorization", "Bearer good")
        .body(Body::empty())
        .unwrap();
    let body = svc
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(&body.to_bytes()[..], b"inner");
}

/// What the inner service sees: the realm of an `AuthContext`, if any, and whether a
/// principal came along.
async fn context_seen(layer: AuthLayer<Toy>, bearer: Option<&str>) -> String {
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<Body>| async move {
                let realm = req
                    .extensions()
                    .get::<AuthContext>()
                    .map(|c| c.realm().to_owned());
                let principal = req.extensions().get::<Principal>().is_some();
                let seen = format!("{realm:?} {principal}");
                Ok::<_, Infallible>(Response::new(Body::from(seen)))
            }));
    let mut req = Request::get("/");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let response = svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn auth_context_goes_where_a_principal_cannot_say_it_all() {
    // Default realm and a principal: the principal says a layer ran.
    assert_eq!(
        context_seen(AuthLayer::new(Toy), Some("good")).await,
        "None true"
    );
    // Another realm travels beside the principal.
    assert_eq!(
        context_seen(AuthLayer::new(Toy).realm("inner"), Some("good")).await,
        r#"Some("inner") true"#
    );
    // Optional mode without credentials: the context alone says a layer ran.
    assert_eq!(
        context_seen(AuthLayer::new(Toy).optional(), None).await,
        r#"Some("api") false"#
    );
}

#[test]
fn layer_service_and_future_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    type Svc = crate::AuthService<Router, Toy>;
    assert_send::<AuthLayer<Toy>>();
    assert_sync::<AuthLayer<Toy>>();
    assert_send::<Svc>();
    assert_sync::<Svc>();
    assert_send::<super::ResponseFuture<<Router as tower::Service<Request<Body>>>::Future>>();
}

/// A hyper-style service answering `ResponseBody<Full<Bytes>>`, the wrapper for bodies
/// that cannot hold a refusal, behind the same layer as [`app`].
async fn send_wrapped(
    layer: AuthLayer<Toy>,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let svc = ServiceBuilder::new()
        .layer(layer)
        .map_response(|r: Response<http_body_util::Full<Bytes>>| {
            r.map(crate::body::ResponseBody::new)
        })
        .service(service_fn(|req: Request<Body>| async move {
            let who = req
                .extensions()
                .get::<Principal>()
                .map_or_else(|| "anonymous".to_owned(), |p| p.subject().to_owned());
            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(who))))
        }));
    let mut req = Request::get("/");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_wrapped_body_gets_the_same_answers_as_axum() {
    let axum_app = app(AuthLayer::new(Toy).realm("shop"));
    let cases: [&[(&str, &str)]; 6] = [
        &[("authorization", "Bearer good")],
        &[("authorization", "Bearer slow")],
        &[("authorization", "Bearer bad")],
        &[("authorization", "Bearer slow-bad")],
        &[],
        &[("content-type", "application/grpc")],
    ];
    for headers in cases {
        let expected = send(&axum_app, headers).await;
        let got = send_wrapped(AuthLayer::new(Toy).realm("shop"), headers).await;
        assert_eq!(got.0, expected.0, "{headers:?}");
        assert_eq!(got.2, expected.2, "{headers:?}");
        if !got.0.is_success() {
            for name in ["www-authenticate", "content-type", "grpc-status"] {
                assert_eq!(got.1.get(name), expected.1.get(name), "{name} {headers:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_layer_wraps_a_whole_router() {
    let router: Router = Router::new().route(
        "/",
        get(|p: Principal| async move { p.subject().to_owned() }),
    );
    let app = AuthLayer::new(Toy).layer(router);
    let call = |auth: Option<&'static str>, path: &'static str| {
        let app = app.clone();
        async move {
            let mut req = Request::get(path);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            // The layered router still answers axum's own `Response<Body>`.
            let response: Response<Body> =
                app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(
        call(Some("Bearer good"), "/").await,
        (StatusCode::OK, "alice".to_owned())
    );
    // Outside the router the layer runs before routing: unknown paths need credentials
    // too, and get 404 only once authenticated.
    assert_eq!(call(None, "/nowhere").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(Some("Bearer good"), "/nowhere").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = call(Some("Bearer bad"), "/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("invalid_token"), "{body}");
}
