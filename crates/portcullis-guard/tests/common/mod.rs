//! What the guard tests share: a table-driven authenticator behind core's `AuthLayer`
//! (bearer tokens for users, `X-API-Key` for API keys), requests, and answers.

// Each test crate uses a part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::{Router, body::Body};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header, request::Parts};
use http_body_util::BodyExt;
use portcullis_core::{
    AuthError, AuthEvent, AuthLayer, AuthResult, Authenticator, Events, MaybeReady, Principal,
    PrincipalKind,
};
use portcullis_guard::{roles, scopes};
use serde_json::Value;
use tower::ServiceExt;

roles! {
    pub(crate) Admin = "admin",
    pub(crate) Editor = "editor",
    pub(crate) Viewer = "viewer",
}

scopes! {
    pub(crate) ReadData = "data:read",
    pub(crate) WriteData = "data:write",
    pub(crate) AdminScope = "admin:all",
}

/// Bearer tokens for users (as a JWT layer would produce them).
pub(crate) struct Users;

impl Authenticator for Users {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let token = match portcullis_core::credentials::authorization_bearer(&parts.headers) {
            Ok(Some(token)) => token,
            Ok(None) => return MaybeReady::Ready(Ok(None)),
            Err(e) => return MaybeReady::Ready(Err(e)),
        };
        let (roles, scopes): (&[&str], &[&str]) = match token {
            "t-admin" => (&["admin"], &["data:read"]),
            "t-editor" => (&["editor"], &[]),
            "t-viewer" => (&["viewer"], &["data:read"]),
            "t-reader" => (&[], &["data:read"]),
            "t-writer" => (&[], &["data:read", "data:write"]),
            "t-robot" => (&[], &["admin:all"]),
            "t-nobody" => (&[], &[]),
            _ => return MaybeReady::Ready(Err(AuthError::invalid_token("unknown_token"))),
        };
        let subject = token.trim_start_matches("t-");
        MaybeReady::Ready(Ok(Some(
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
pub(crate) struct ApiKeys;

impl Authenticator for ApiKeys {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let Some(key) = parts.headers.get("x-api-key") else {
            return MaybeReady::Ready(Ok(None));
        };
        let (roles, scopes): (&[&str], &[&str]) = match key.as_bytes() {
            b"k-reader" => (&[], &["data:read"]),
            b"k-writer" => (&["editor"], &["data:read", "data:write"]),
            b"k-empty" => (&[], &[]),
            _ => return MaybeReady::Ready(Err(AuthError::invalid_token("unknown_key"))),
        };
        MaybeReady::Ready(Ok(Some(
            Principal::builder("svc-backup", PrincipalKind::ApiKey)
                .token_id("key-1")
                .roles(roles.iter().copied())
                .scopes(scopes.iter().copied())
                .build(),
        )))
    }
}

pub(crate) fn auth() -> AuthLayer<(Users, ApiKeys)> {
    AuthLayer::new((Users, ApiKeys))
}

pub(crate) fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

pub(crate) fn api_key(path: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap()
}

pub(crate) fn anonymous(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn challenge(&self) -> &str {
        self.headers[header::WWW_AUTHENTICATE].to_str().unwrap()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

pub(crate) async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response: Response<Body> = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub(crate) fn grpc(path: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/grpc");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    req.body(Body::empty()).unwrap()
}

/// A `rejected` event as seen by a sink: reason, role, scope, path.
pub(crate) type Rejected = (&'static str, Option<String>, Option<String>, String);

/// An event sink that records `rejected` events, and what it recorded.
pub(crate) fn recorded_rejections() -> (Events, Arc<Mutex<Vec<Rejected>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |event: &AuthEvent<'_>| {
        if let AuthEvent::Rejected { error, path } = event {
            log.lock().unwrap().push((
                error.reason(),
                error.role().map(str::to_owned),
                error.scope().map(str::to_owned),
                path.to_string(),
            ));
        }
    });
    (events, seen)
}

/// `(reason, role, scope, path)` with owned strings, to compare with what a sink saw.
pub(crate) fn rejected(
    reason: &'static str,
    role: Option<&str>,
    scope: Option<&str>,
    path: &str,
) -> Rejected {
    (
        reason,
        role.map(str::to_owned),
        scope.map(str::to_owned),
        path.to_owned(),
    )
}
