//! The tower guard layers on axum routers and plain tower services, behind core's
//! `AuthLayer`.

mod common;

use std::convert::Infallible;

use axum::{Extension, Router, body::Body, routing::get};
use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, Full};
use portcullis_core::{AuthError, Principal, auth::ResponseFuture};
use portcullis_guard::{
    AllOf, Guard, GuardConfigErrorKind, RequireRoleLayer, RequireRoleOrScopeLayer,
    RequireScopeLayer, RoleHierarchy,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

async fn whoami(p: Principal) -> String {
    p.subject().to_owned()
}

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
    assert_eq!(answer.json()["scope"], "data:write data:read");

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
            .layer(Extension(RoleHierarchy::new().grant("editor", ["viewer"])))
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

#[tokio::test]
async fn role_layer_refuses_with_insufficient_role_naming_the_roles() {
    let app = layered(|r| {
        r.route_layer(RequireRoleLayer::any(["admin", "editor"]))
            .route_layer(auth())
    });
    let answer = send(&app, bearer("/r", "t-viewer")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge(),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role""#
    );
    let body = answer.json();
    assert_eq!(body["code"], "insufficient_role");
    assert_eq!(body["role"], "admin editor");
    assert!(body.get("scope").is_none(), "{body}");
}

#[tokio::test]
async fn role_or_scope_layer_lets_in_either_and_names_both() {
    let app = layered(|r| {
        r.route_layer(RequireRoleOrScopeLayer::any(["admin"], ["admin:all"]))
            .route_layer(auth())
    });
    assert_eq!(send(&app, anonymous("/r")).await.status, 401);
    assert_eq!(send(&app, bearer("/r", "t-admin")).await.text(), "admin");
    assert_eq!(send(&app, bearer("/r", "t-robot")).await.text(), "robot");
    let answer = send(&app, bearer("/r", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge(),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role or scope", scope="admin:all""#
    );
    let body = answer.json();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["scope"], "admin:all");

    // The same answers from the typed layer, and from the extractor.
    let typed = layered(|r| {
        r.route_layer(RequireRoleOrScopeLayer::of::<Admin, AdminScope>())
            .route_layer(auth())
    });
    let extractor = Router::new()
        .route(
            "/r",
            get(|_: portcullis_guard::RequireRoleOrScope<Admin, AdminScope>| async { "ok" }),
        )
        .route_layer(auth());
    for other in [&typed, &extractor] {
        let same = send(other, bearer("/r", "t-editor")).await;
        assert_eq!(same.status, answer.status);
        assert_eq!(same.headers, answer.headers);
        assert_eq!(same.body, answer.body);
    }
}

#[tokio::test]
async fn role_or_scope_layer_consults_its_own_or_the_extension_hierarchy() {
    let plain = layered(|r| {
        r.route_layer(RequireRoleOrScopeLayer::any(["editor"], ["admin:all"]))
            .route_layer(auth())
    });
    assert_eq!(send(&plain, bearer("/r", "t-admin")).await.status, 403);
    let hierarchy = RoleHierarchy::new().grant("admin", ["editor"]);
    let own = layered(|r| {
        r.route_layer(
            RequireRoleOrScopeLayer::any(["editor"], ["admin:all"])
                .with_hierarchy(hierarchy.clone()),
        )
        .route_layer(auth())
    });
    assert_eq!(send(&own, bearer("/r", "t-admin")).await.status, 200);
    let from_extensions = layered(|r| {
        r.route_layer(RequireRoleOrScopeLayer::any(["editor"], ["admin:all"]))
            .route_layer(auth())
            .layer(Extension(hierarchy.clone()))
    });
    assert_eq!(
        send(&from_extensions, bearer("/r", "t-admin")).await.status,
        200
    );
    assert_eq!(
        send(&from_extensions, bearer("/r", "t-viewer"))
            .await
            .status,
        403
    );
}

#[test]
fn role_or_scope_layer_needs_roles_and_scopes_with_valid_names() {
    let empty = RequireRoleOrScopeLayer::try_any(Vec::<String>::new(), ["s"]).unwrap_err();
    assert_eq!(empty.kind(), GuardConfigErrorKind::Empty);
    let empty = RequireRoleOrScopeLayer::try_any(["r"], Vec::<String>::new()).unwrap_err();
    assert_eq!(empty.kind(), GuardConfigErrorKind::Empty);
    let bad_role = RequireRoleOrScopeLayer::try_any(["ok", "bad role"], ["s"]).unwrap_err();
    assert_eq!(bad_role.kind(), GuardConfigErrorKind::InvalidName);
    assert_eq!(bad_role.index(), 1);
    // Scopes count after the roles.
    let bad_scope = RequireRoleOrScopeLayer::try_any(["a", "b"], ["ok", "bad\\"]).unwrap_err();
    assert_eq!(bad_scope.kind(), GuardConfigErrorKind::InvalidName);
    assert_eq!(bad_scope.index(), 3);
}

#[tokio::test]
async fn guard_layers_report_refusals_to_their_event_sink() {
    let (events, seen) = recorded_rejections();
    let scope = layered(|r| {
        r.route_layer(RequireScopeLayer::any(["data:write"]).with_events(events.clone()))
            .route_layer(auth())
    });
    assert_eq!(send(&scope, bearer("/r", "t-reader")).await.status, 403);
    assert_eq!(send(&scope, bearer("/r", "t-writer")).await.status, 200);
    let role = layered(|r| {
        r.route_layer(RequireRoleLayer::any(["admin"]).with_events(events.clone()))
            .route_layer(auth())
    });
    assert_eq!(send(&role, bearer("/r", "t-reader")).await.status, 403);
    assert_eq!(send(&role, bearer("/r", "t-admin")).await.status, 200);
    let either = layered(|r| {
        r.route_layer(
            RequireRoleOrScopeLayer::any(["admin"], ["admin:all"]).with_events(events.clone()),
        )
        .route_layer(auth())
    });
    assert_eq!(send(&either, bearer("/r", "t-reader")).await.status, 403);
    assert_eq!(send(&either, bearer("/r", "t-robot")).await.status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            rejected("insufficient_scope", None, Some("data:write"), "/r"),
            rejected("insufficient_role", Some("admin"), None, "/r"),
            rejected(
                "insufficient_role_or_scope",
                Some("admin"),
                Some("admin:all"),
                "/r"
            ),
        ]
    );
}

#[tokio::test]
async fn guard_layer_answers_in_the_inner_body_type() {
    // A plain tower service answering `Full<Bytes>`, not axum's body.
    let plain = ServiceBuilder::new()
        .layer(auth())
        .layer(RequireScopeLayer::any(["data:write"]))
        .service(service_fn(|req: Request<Body>| async move {
            let subject = req
                .extensions()
                .get::<Principal>()
                .unwrap()
                .subject()
                .to_owned();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(subject))))
        }));
    let router = Router::new()
        .route("/r", axum::routing::any(whoami))
        .route_layer(RequireScopeLayer::any(["data:write"]))
        .route_layer(auth());
    for req in [
        || anonymous("/r"),
        || bearer("/r", "t-reader"),
        || grpc("/r", Some("t-reader")),
    ] {
        let response: Response<Full<Bytes>> = plain.clone().oneshot(req()).await.unwrap();
        let (parts, body) = response.into_parts();
        let mut expected = send(&router, req()).await;
        // axum's router adds the length it knows; a bare tower stack leaves it to hyper.
        expected.headers.remove(header::CONTENT_LENGTH);
        assert_eq!(parts.status, expected.status);
        assert_eq!(parts.headers, expected.headers);
        assert_eq!(body.collect().await.unwrap().to_bytes(), expected.body);
    }
    let response = plain.oneshot(bearer("/r", "t-writer")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "writer"
    );
}

#[test]
fn layers_services_and_futures_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<RequireRoleLayer>();
    assert_send_sync::<RequireScopeLayer>();
    assert_send_sync::<RequireRoleOrScopeLayer>();
    assert_send_sync::<Guard<Router>>();
    assert_send::<ResponseFuture<<Router as tower::Service<Request<Body>>>::Future>>();
}
