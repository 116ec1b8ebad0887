use super::*;

fn www(err: &AuthError) -> String {
    err.challenge("api").unwrap().to_str().unwrap().to_owned()
}

#[test]
fn missing_credentials_challenge_has_no_error_code() {
    assert_eq!(
        www(&AuthError::missing_credentials()),
        r#"Bearer realm="api""#
    );
}

#[test]
fn invalid_token_challenge_names_the_error() {
    let value = www(&AuthError::invalid_token("bad_signature"));
    assert_eq!(
        value,
        r#"Bearer realm="api", error="invalid_token", error_description="the credential is invalid""#
    );
}

#[test]
fn insufficient_scope_challenge_carries_scope() {
    let value = www(&AuthError::insufficient_scope("admin data:write"));
    assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
    assert!(value.ends_with(r#"scope="admin data:write""#), "{value}");
}

#[test]
fn realm_quotes_are_escaped() {
    let value = AuthError::missing_credentials().challenge("a\"b").unwrap();
    assert_eq!(value, r#"Bearer realm="a\"b""#);
}

#[test]
fn problem_body_has_stable_code() {
    let response = AuthError::invalid_token("token_expired").to_http_response("api");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["status"], 401);
}

#[test]
fn rate_limited_rounds_retry_after_up() {
    let response = AuthError::rate_limited(Duration::from_millis(1500)).to_http_response("api");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["retry_after"], 2);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
}

#[test]
fn grpc_rendering_is_trailers_only() {
    let response = AuthError::insufficient_scope("admin").to_grpc_response();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "7");
    assert!(response.body().is_empty());
    assert_eq!(
        AuthError::unavailable("jwks").to_grpc_response().headers()["grpc-status"],
        "14"
    );
    assert_eq!(
        AuthError::missing_credentials()
            .to_grpc_response()
            .headers()["grpc-status"],
        "16"
    );
    assert_eq!(
        AuthError::rate_limited(Duration::from_secs(1))
            .to_grpc_response()
            .headers()["grpc-status"],
        "8"
    );
}

#[test]
fn a_missing_role_is_no_scope() {
    let err = AuthError::insufficient_role("editor");
    let value = www(&err);
    assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
    assert!(!value.contains("scope=\"editor\""), "{value}");
    let body: serde_json::Value =
        serde_json::from_slice(err.to_http_response("api").body()).unwrap();
    assert_eq!(body["code"], "insufficient_role");
    assert_eq!(body["role"], "editor");
    assert!(body.get("scope").is_none());
}

#[test]
fn a_missing_scope_is_named_in_the_body() {
    let body: serde_json::Value = serde_json::from_slice(
        AuthError::insufficient_scope("data:write")
            .to_http_response("api")
            .body(),
    )
    .unwrap();
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["scope"], "data:write");
}

#[test]
fn role_or_scope_names_both() {
    let err = AuthError::insufficient_role_or_scope("admin", "data:read");
    assert!(www(&err).ends_with(r#"scope="data:read""#));
    let body: serde_json::Value =
        serde_json::from_slice(err.to_http_response("api").body()).unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["scope"], "data:read");
}
