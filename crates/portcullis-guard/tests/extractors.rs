//! The axum extractors behind core's `AuthLayer`: refusals, hierarchies, events.

mod common;

use std::sync::{Arc, Mutex};

use axum::{Extension, Router, routing::get};
use common::*;
use http::{StatusCode, header};
use portcullis_core::Principal;
use portcullis_guard::{
    AllOf, AnyOf, RequireRole, RequireRoleOrScope, RequireScope, RoleHierarchy,
};

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
        .route(
            "/reindex",
            get(|who: RequireRoleOrScope<Admin, AdminScope>| async move {
                who.subject().to_owned()
            }),
        )
        .route(
            "/review",
            get(|_: RequireRoleOrScope<Editor, AdminScope>| async { "reviewed" }),
        )
        .route_layer(auth())
}

#[tokio::test]
async fn no_credentials_get_401_with_bare_challenge() {
    let app = role_app();
    for path in ["/admin", "/staff", "/read", "/write", "/reindex"] {
        let answer = send(&app, anonymous(path)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.challenge(), r#"Bearer realm="api""#, "{path}");
    }
}

#[tokio::test]
async fn lacking_role_gets_403_insufficient_role_naming_the_role_not_a_scope() {
    let app = role_app();
    let answer = send(&app, bearer("/admin", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // RFC 6750 has one error code for a 403; no `scope` attribute, as a role is no
    // OAuth scope a client could ask for.
    assert_eq!(
        answer.challenge(),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role""#
    );
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = answer.json();
    assert_eq!(body["status"], 403);
    assert_eq!(body["code"], "insufficient_role");
    assert_eq!(body["role"], "admin");
    assert!(body.get("scope").is_none(), "{body}");
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
    let body = answer.json();
    assert_eq!(body["detail"], "the credential lacks a required scope");
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["scope"], "data:read");
    assert!(body.get("role").is_none(), "{body}");
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
    assert_eq!(answer.json()["role"], "admin editor");
    assert!(!answer.challenge().contains(", scope="));

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
    let app = role_app().layer(Extension(hierarchy));
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
async fn hierarchy_with_a_cycle_answers_and_grants_around_it() {
    let hierarchy = RoleHierarchy::new()
        .grant("viewer", ["editor"])
        .grant("editor", ["viewer"]);
    let app = role_app().layer(Extension(hierarchy));
    assert_eq!(send(&app, bearer("/edit", "t-viewer")).await.status, 200);
    assert_eq!(send(&app, bearer("/view", "t-editor")).await.status, 200);
    assert_eq!(send(&app, bearer("/admin", "t-viewer")).await.status, 403);
}

#[tokio::test]
async fn hierarchy_does_not_expand_scopes() {
    let hierarchy = RoleHierarchy::new().grant("data:write", ["data:read"]);
    let app = role_app().layer(Extension(hierarchy));
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

#[tokio::test]
async fn role_or_scope_lets_in_either_and_names_both_when_refusing() {
    let app = role_app();
    // The role.
    let answer = send(&app, bearer("/reindex", "t-admin")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "admin");
    // The scope.
    let answer = send(&app, bearer("/reindex", "t-robot")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "robot");
    // Neither.
    let answer = send(&app, bearer("/reindex", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge(),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role or scope", scope="admin:all""#
    );
    let body = answer.json();
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["scope"], "admin:all");
    assert_eq!(send(&app, anonymous("/reindex")).await.status, 401);
}

#[tokio::test]
async fn role_or_scope_checks_the_role_through_the_hierarchy() {
    let app = role_app();
    assert_eq!(send(&app, bearer("/review", "t-admin")).await.status, 403);
    let app = role_app().layer(Extension(RoleHierarchy::new().grant("admin", ["editor"])));
    assert_eq!(send(&app, bearer("/review", "t-admin")).await.status, 200);
    assert_eq!(send(&app, bearer("/review", "t-robot")).await.status, 200);
    assert_eq!(send(&app, bearer("/review", "t-viewer")).await.status, 403);
}

#[tokio::test]
async fn extractor_refusals_are_reported_to_the_events_in_the_extensions() {
    let (events, seen) = recorded_rejections();
    let app = role_app().layer(Extension(events));
    for path in ["/admin", "/read", "/reindex"] {
        assert_eq!(send(&app, bearer(path, "t-editor")).await.status, 403);
    }
    // Let in: no event.
    assert_eq!(send(&app, bearer("/edit", "t-editor")).await.status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            rejected("insufficient_role", Some("admin"), None, "/admin"),
            rejected("insufficient_scope", None, Some("data:read"), "/read"),
            rejected(
                "insufficient_role_or_scope",
                Some("admin"),
                Some("admin:all"),
                "/reindex"
            ),
        ]
    );
}

#[tokio::test]
async fn extractor_refusals_without_a_principal_are_reported_too() {
    let (events, seen) = recorded_rejections();
    let app = Router::new()
        .route("/admin", get(|_: RequireRole<Admin>| async { "admin" }))
        .route_layer(auth().optional())
        .merge(Router::new().route("/unprotected", get(|_: RequireRole<Admin>| async { "x" })))
        .layer(Extension(events));
    assert_eq!(send(&app, anonymous("/admin")).await.status, 401);
    assert_eq!(send(&app, anonymous("/unprotected")).await.status, 500);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            rejected("missing_credentials", None, None, "/admin"),
            rejected("missing_auth_layer", None, None, "/unprotected"),
        ]
    );
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn extractor_refusals_go_to_tracing_without_events_in_the_extensions() {
    use tracing_subscriber::util::SubscriberInitExt;

    let captured = Captured::default();
    let writer = captured.clone();
    let _default = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    // A current-thread runtime: the handler runs on this thread, under this subscriber.
    let answer = send(&role_app(), bearer("/admin", "t-editor")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("portcullis::event") && line.contains("rejected"))
        .unwrap_or_else(|| panic!("no rejected event in {log:?}"));
    assert!(line.contains("insufficient_role"), "{line}");
    assert!(line.contains("/admin"), "{line}");
    assert!(line.contains("403"), "{line}");
}

#[test]
fn extractors_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RoleHierarchy>();
    assert_send_sync::<RequireRole<AnyOf<(Admin, Editor)>>>();
    assert_send_sync::<RequireScope<ReadData>>();
    assert_send_sync::<RequireRoleOrScope<Admin, AllOf<(ReadData, WriteData)>>>();
}

#[test]
fn extractor_debug_names_the_requirement() {
    let principal = Principal::builder("alice", portcullis_core::PrincipalKind::User)
        .roles(["admin"])
        .build();
    let guard = RequireRoleOrScope::<Admin, ReadData>::check(principal, None).unwrap();
    let debug = format!("{guard:?}");
    assert!(debug.starts_with("RequireRoleOrScope {"), "{debug}");
    assert!(
        debug.contains("Admin") && debug.contains("ReadData"),
        "{debug}"
    );
}
