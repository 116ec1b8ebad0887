//! The guards through axum routers: extractors and tower layers, behind core's
//! `AuthLayer` with a table-driven authenticator (bearer tokens for users, `X-API-Key`
//! for API keys).

use std::sync::{Arc, Mutex};

use axum::{Router, body::Body, routing::get};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header, request::Parts};
use http_body_util::BodyExt;
use portcullis_core::{
    AuthError, AuthEvent, AuthLayer, Authentication, Authenticator, Events, Principal,
    PrincipalKind,
};
use portcullis_guard::{
    AllOf, AnyOf, RequireRole, RequireRoleLayer, RequireScope, RequireScopeLayer, RoleHierarchy,
    RoleHierarchyLayer, roles, scopes,
};
use serde_json::Value;
use tower::ServiceExt;

roles! {
    pub Admin = "admin",
    pub Editor = "editor",
    pub Viewer = "viewer",
}

scopes! {
    pub ReadData = "data:read",
    pub WriteData = "data:write",
}

/// Bearer tokens for users (as a JWT layer would produce them).
struct Users;

impl Authenticator for Users {
    fn authenticate(&self, parts: &Parts) -> Authentication {
        let token = match portcullis_core::credentials::authorization_bearer(&parts.headers) {
            Ok(Some(token)) => token,
            Ok(None) => return Authentication::Ready(Ok(None)),
            Err(e) => return Authentication::Ready(Err(e)),
        };
        let (roles, scopes): (&[&str], &[&str]) = match token {
            "t-admin" => (&["admin"], &["data:read"]),
            "t-editor" => (&["editor"], &[]),
            "t-viewer" => (&["viewer"], &["data:read"]),
            "t-reader" => (&[], &["data:read"]),
            "t-writer" => (&[], &["data:read", "data:write"]),
            "t-nobody" => (&[], &[]),
            _ => return Authentication::Ready(Err(AuthError::invalid_token("unknown_token"))),
        };
        let subject = token.trim_start_matches("t-");
        Authentication::Ready(Ok(Some(
            Principal::builder(subject, PrincipalKind::User)
                .issuer("https://issuer.test")
                .token_id("jti-1")
                .roles(roles.iter().copied())
                .scopes(scopes.iter().copied())
                .build(),
        )))
    }
}

/// `X-API-Key` for machine clients.
struct ApiKeys;

impl Authenticator for ApiKeys {
    fn authenticate(&self, parts: &Parts) -> Authentication {
        let Some(key) = parts.headers.get("x-api-key") else {
            return Authentication::Ready(Ok(None));
        };
        let (roles, scopes): (&[&str], &[&str]) = match key.as_bytes() {
            b"k-reader" => (&[], &["data:read"]),
            b"k-writer" => (&["editor"], &["data:read", "data:write"]),
            b"k-empty" => (&[], &[]),
            _ => return Authentication::Ready(Err(AuthError::invalid_token("unknown_key"))),
        };
        Authentication::Ready(Ok(Some(
            Principal::builder("svc-backup", PrincipalKind::ApiKey)
                .token_id("key-1")
                .roles(roles.iter().copied())
                .scopes(scopes.iter().copied())
                .build(),
        )))
    }
}

fn auth() -> AuthLayer<(Users, ApiKeys)> {
    AuthLayer::new((Users, ApiKeys))
}

fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn api_key(path: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap()
}

fn anonymous(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn challenge(&self) -> &str {
        self.headers[header::WWW_AUTHENTICATE].to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response: Response<Body> = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn whoami(p: Principal) -> String {
    p.subject().to_owned()
}

fn role_app() -> Router {
    Router::new()
        .route(
            "/admin",
            get(|a: RequireRole<Admin>| async move { format!("admin {}", a.subject()) }),
        )
        .route(
            "/edit",
            get(|e: RequireRole<Editor>| async move { e.subject().to_owned() }),
        )
        .route(
            "/view",
            get(|v: RequireRole<Viewer>| async move { v.into_principal().subject().to_owned() }),
        )
        .route(
            "/staff",
            get(|_: RequireRole<AnyOf<(Admin, Editor)>>| async { "staff" }),
        )
        .route(
            "/both",
            get(|_: RequireRole<AllOf<(Admin, Editor)>>| async { "both" }),
        )
        .route(
            "/read",
            get(|s: RequireScope<ReadData>| async move { s.principal().subject().to_owned() }),
        )
        .route(
            "/write",
            get(|_: RequireScope<AllOf<(ReadData, WriteData)>>| async { "written" }),
        )
        .route(
            "/read-or-write",
            get(|_: RequireScope<AnyOf<(ReadData, WriteData)>>| async { "ok" }),
        )
        .route_layer(auth())
}

#[tokio::test]
async fn no_credentials_get_401_with_bare_challenge() {
    let app = role_app();
    for path in ["/admin", "/staff", "/read", "/write"] {
        let answer = send(&app, anonymous(path)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.challenge(), r#"Bearer realm="api""#, "{path}");
    }
}

#[tokio::test]
async fn lacking_role_gets_403_with_insufficient_scope_challenge_and_problem_body() {
    let app = role_app();
    let answer = send(&app, bearer("/admin", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge(),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role", scope="admin""#
    );
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = answer.json();
    assert_eq!(body["status"], 403);
    assert_eq!(body["code"], "insufficient_scope");
}

#[tokio::test]
async fn lacking_scope_gets_403_naming_the_scope() {
    let app = role_app();
    let answer = send(&app, bearer("/read", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.challenge().contains(r#"error="insufficient_scope""#),
        "{}",
        answer.challenge()
    );
    assert!(answer.challenge().ends_with(r#"scope="data:read""#));
    assert_eq!(
        answer.json()["detail"],
        "the credential lacks a required scope"
    );
}

#[tokio::test]
async fn holding_the_role_or_scope_gets_through_with_the_principal() {
    let app = role_app();
    let answer = send(&app, bearer("/admin", "t-admin")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "admin admin");
    let answer = send(&app, bearer("/read", "t-reader")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "reader");
}

#[tokio::test]
async fn any_of_needs_one_and_names_all_when_refusing() {
    let app = role_app();
    assert_eq!(send(&app, bearer("/staff", "t-admin")).await.status, 200);
    assert_eq!(send(&app, bearer("/staff", "t-editor")).await.status, 200);
    let answer = send(&app, bearer("/staff", "t-viewer")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.challenge().ends_with(r#"scope="admin editor""#));

    assert_eq!(
        send(&app, bearer("/read-or-write", "t-reader"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&app, bearer("/read-or-write", "t-nobody"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn all_of_needs_every_one() {
    let app = role_app();
    assert_eq!(send(&app, bearer("/write", "t-writer")).await.status, 200);
    let answer = send(&app, bearer("/write", "t-reader")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer
            .challenge()
            .ends_with(r#"scope="data:read data:write""#)
    );
    // Admin alone is not admin and editor, without a hierarchy.
    assert_eq!(send(&app, bearer("/both", "t-admin")).await.status, 403);
}

#[tokio::test]
async fn without_a_hierarchy_roles_are_exact() {
    let app = role_app();
    assert_eq!(send(&app, bearer("/edit", "t-admin")).await.status, 403);
    assert_eq!(send(&app, bearer("/view", "t-editor")).await.status, 403);
}

#[tokio::test]
async fn hierarchy_in_extensions_makes_admin_an_editor_and_a_viewer() {
    let hierarchy = RoleHierarchy::new()
        .grant("admin", ["editor"])
        .grant("editor", ["viewer"]);
    let app = role_app().layer(RoleHierarchyLayer::new(hierarchy));
    assert_eq!(send(&app, bearer("/edit", "t-admin")).await.status, 200);
    // Transitive.
    assert_eq!(send(&app, bearer("/view", "t-admin")).await.status, 200);
    assert_eq!(send(&app, bearer("/view", "t-editor")).await.status, 200);
    // Never upwards.
    assert_eq!(send(&app, bearer("/edit", "t-viewer")).await.status, 403);
    assert_eq!(send(&app, bearer("/admin", "t-editor")).await.status, 403);
    // All-of through the hierarchy: admin implies editor.
    assert_eq!(send(&app, bearer("/both", "t-admin")).await.status, 200);
}

#[tokio::test]
async fn hierarchy_via_axum_extension_works_too() {
    let hierarchy = RoleHierarchy::new().grant("admin", ["editor"]);
    let app = role_app().layer(axum::Extension(hierarchy));
    assert_eq!(send(&app, bearer("/edit", "t-admin")).await.status, 200);
}

#[tokio::test]
async fn hierarchy_with_a_cycle_answers_and_grants_around_it() {
    let hierarchy = RoleHierarchy::new()
        .grant("viewer", ["editor"])
        .grant("editor", ["viewer"]);
    let app = role_app().layer(RoleHierarchyLayer::new(hierarchy));
    assert_eq!(send(&app, bearer("/edit", "t-viewer")).await.status, 200);
    assert_eq!(send(&app, bearer("/view", "t-editor")).await.status, 200);
    assert_eq!(send(&app, bearer("/admin", "t-viewer")).await.status, 403);
}

#[tokio::test]
async fn hierarchy_does_not_expand_scopes() {
    let hierarchy = RoleHierarchy::new().grant("data:write", ["data:read"]);
    let app = role_app().layer(RoleHierarchyLayer::new(hierarchy));
    assert_eq!(send(&app, bearer("/read", "t-editor")).await.status, 403);
}

#[tokio::test]
async fn api_key_and_user_principals_are_treated_alike() {
    let app = role_app();
    // Same route, same rule, either credential.
    assert_eq!(send(&app, api_key("/read", "k-reader")).await.status, 200);
    assert_eq!(send(&app, bearer("/read", "t-reader")).await.status, 200);
    assert_eq!(send(&app, api_key("/write", "k-writer")).await.status, 200);
    assert_eq!(send(&app, bearer("/write", "t-writer")).await.status, 200);
    assert_eq!(send(&app, api_key("/edit", "k-writer")).await.status, 200);

    let key = send(&app, api_key("/write", "k-reader")).await;
    let user = send(&app, bearer("/write", "t-reader")).await;
    assert_eq!(key.status, StatusCode::FORBIDDEN);
    assert_eq!(key.status, user.status);
    assert_eq!(key.challenge(), user.challenge());
    assert_eq!(key.body, user.body);

    let answer = send(&app, api_key("/read", "k-empty")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn optional_principal_on_public_routes() {
    let app = Router::new()
        .route(
            "/hello",
            get(|p: Option<Principal>| async move {
                match p {
                    Some(p) => format!("hello {} ({})", p.subject(), p.kind().as_str()),
                    None => "hello stranger".to_owned(),
                }
            }),
        )
        .route("/admin", get(|_: RequireRole<Admin>| async { "admin" }))
        .route_layer(auth().optional());

    let answer = send(&app, anonymous("/hello")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "hello stranger");
    assert_eq!(
        send(&app, bearer("/hello", "t-reader")).await.text(),
        "hello reader (user)"
    );
    assert_eq!(
        send(&app, api_key("/hello", "k-reader")).await.text(),
        "hello svc-backup (api_key)"
    );
    // A bad credential is still refused on a public route.
    assert_eq!(send(&app, bearer("/hello", "t-forged")).await.status, 401);
    // A guarded route under an optional layer: anonymous is 401, not 403 or 500.
    let answer = send(&app, anonymous("/admin")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge(), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn guard_without_an_auth_layer_is_a_500_that_says_so() {
    let app = Router::new()
        .route("/admin", get(|_: RequireRole<Admin>| async { "admin" }))
        .route("/read", get(|_: RequireScope<ReadData>| async { "read" }));
    for path in ["/admin", "/read"] {
        // Even with a credential: nothing verified it.
        let answer = send(&app, bearer(path, "t-admin")).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(
            answer.json()["detail"],
            "no authentication layer protects this route"
        );
        assert!(answer.headers.get(header::WWW_AUTHENTICATE).is_none());
    }
}

#[tokio::test]
async fn realm_of_the_auth_layer_is_used_in_the_challenge() {
    let app = Router::new()
        .route("/admin", get(|_: RequireRole<Admin>| async { "admin" }))
        .route_layer(auth().realm("backoffice"));
    let answer = send(&app, bearer("/admin", "t-reader")).await;
    assert!(
        answer
            .challenge()
            .starts_with(r#"Bearer realm="backoffice", error="insufficient_scope""#)
    );
}

fn grpc(path: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/grpc");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn grpc_requests_get_grpc_statuses_from_extractors() {
    let app = Router::new()
        .route(
            "/pkg.Svc/Admin",
            axum::routing::post(|_: RequireRole<Admin>| async { "admin" }),
        )
        .route_layer(auth());
    let answer = send(&app, grpc("/pkg.Svc/Admin", Some("t-reader"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["grpc-status"], "7");
    assert!(answer.body.is_empty());
    let answer = send(&app, grpc("/pkg.Svc/Admin", None)).await;
    assert_eq!(answer.headers["grpc-status"], "16");
}

// ---- tower layers on axum routers ----

fn layered(layer: impl Fn(Router) -> Router) -> Router {
    let routes = Router::new().route("/r", get(whoami));
    layer(routes)
}

#[tokio::test]
async fn scope_layer_any_all_and_status_codes() {
    let any = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write", "data:read"]))
            .route_layer(auth())
    });
    assert_eq!(send(&any, anonymous("/r")).await.status, 401);
    assert_eq!(send(&any, bearer("/r", "t-reader")).await.status, 200);
    assert_eq!(send(&any, api_key("/r", "k-reader")).await.status, 200);
    let answer = send(&any, bearer("/r", "t-editor")).await;
    assert_eq!(answer.status, 403);
    assert!(
        answer
            .challenge()
            .ends_with(r#"scope="data:write data:read""#)
    );
    assert_eq!(answer.json()["code"], "insufficient_scope");

    let all = layered(|r| {
        r.route_layer(RequireScopeLayer::of::<AllOf<(ReadData, WriteData)>>())
            .route_layer(auth())
    });
    assert_eq!(send(&all, bearer("/r", "t-reader")).await.status, 403);
    let answer = send(&all, bearer("/r", "t-writer")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "writer");
}

#[tokio::test]
async fn role_layer_consults_its_own_or_the_extension_hierarchy() {
    let plain = layered(|r| {
        r.route_layer(RequireRoleLayer::all(["viewer"]))
            .route_layer(auth())
    });
    assert_eq!(send(&plain, bearer("/r", "t-admin")).await.status, 403);
    assert_eq!(send(&plain, bearer("/r", "t-viewer")).await.status, 200);

    let own = layered(|r| {
        r.route_layer(
            RequireRoleLayer::all(["viewer"]).with_hierarchy(
                RoleHierarchy::new()
                    .grant("admin", ["editor"])
                    .grant("editor", ["viewer"]),
            ),
        )
        .route_layer(auth())
    });
    assert_eq!(send(&own, bearer("/r", "t-admin")).await.status, 200);
    assert_eq!(send(&own, bearer("/r", "t-nobody")).await.status, 403);

    let from_extensions = layered(|r| {
        r.route_layer(RequireRoleLayer::of::<Viewer>())
            .route_layer(auth())
            .layer(RoleHierarchyLayer::new(
                RoleHierarchy::new().grant("editor", ["viewer"]),
            ))
    });
    assert_eq!(
        send(&from_extensions, bearer("/r", "t-editor"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&from_extensions, api_key("/r", "k-writer"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&from_extensions, bearer("/r", "t-admin")).await.status,
        403
    );
}

#[tokio::test]
async fn guard_layer_without_auth_layer_is_a_500_that_says_so() {
    let app = layered(|r| r.route_layer(RequireScopeLayer::any(["data:read"])));
    let answer = send(&app, bearer("/r", "t-reader")).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json()["detail"],
        "no authentication layer protects this route"
    );
}

#[tokio::test]
async fn guard_layer_under_optional_auth_refuses_anonymous_with_401() {
    let app = layered(|r| {
        r.route_layer(RequireRoleLayer::any(["admin"]))
            .route_layer(auth().optional())
    });
    let answer = send(&app, anonymous("/r")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge(), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn guard_layer_speaks_grpc_to_grpc_requests() {
    let app = Router::new()
        .route("/pkg.Svc/M", axum::routing::post(whoami))
        .route_layer(RequireScopeLayer::any(["data:write"]))
        .route_layer(auth());
    let answer = send(&app, grpc("/pkg.Svc/M", Some("t-reader"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["grpc-status"], "7");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/grpc");
    assert!(answer.body.is_empty());
}

#[tokio::test]
async fn guard_layer_reports_refusals_to_its_event_sink() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |event: &AuthEvent<'_>| {
        if let AuthEvent::Rejected { error, path } = event {
            log.lock().unwrap().push((
                error.reason(),
                error.scope().map(str::to_owned),
                path.to_string(),
            ));
        }
    });
    let app = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write"]).with_events(events.clone()))
            .route_layer(auth())
    });
    assert_eq!(send(&app, bearer("/r", "t-reader")).await.status, 403);
    assert_eq!(send(&app, bearer("/r", "t-writer")).await.status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            "insufficient_scope",
            Some("data:write".to_owned()),
            "/r".to_owned()
        )]
    );
}

#[tokio::test]
async fn guard_layer_renders_with_a_custom_renderer() {
    let app = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write"]).with_renderer(
            |err: &AuthError, _: &Parts| {
                let mut res = Response::new(Bytes::from_static(b"go away"));
                *res.status_mut() = err.status();
                res
            },
        ))
        .route_layer(auth())
    });
    let answer = send(&app, bearer("/r", "t-reader")).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.text(), "go away");
}

#[test]
fn layers_services_futures_and_extractors_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<RequireRoleLayer>();
    assert_send_sync::<RequireScopeLayer>();
    assert_send_sync::<RoleHierarchyLayer>();
    assert_send_sync::<RoleHierarchy>();
    assert_send_sync::<RequireRole<AnyOf<(Admin, Editor)>>>();
    assert_send_sync::<RequireScope<ReadData>>();
    assert_send_sync::<portcullis_guard::Guard<Router>>();
    assert_send::<
        portcullis_guard::layer::ResponseFuture<<Router as tower::Service<Request<Body>>>::Future>,
    >();
}

#[tokio::test]
async fn same_body_guards_answer_alike() {
    let wrapped = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write"]))
            .route_layer(auth())
    });
    let same = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write"]).same_body())
            .route_layer(auth().same_body())
    });
    for req in [
        || anonymous("/r"),
        || bearer("/r", "t-reader"),
        || bearer("/r", "t-writer"),
        || grpc("/r", Some("t-reader")),
    ] {
        let (a, b) = (send(&wrapped, req()).await, send(&same, req()).await);
        assert_eq!(a.status, b.status);
        assert_eq!(a.headers, b.headers);
        assert_eq!(a.body, b.body);
    }
    assert_eq!(send(&same, bearer("/r", "t-writer")).await.text(), "writer");
}
