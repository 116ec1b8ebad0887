//! HTTP plumbing: RFC 9457 problem responses, a JSON extractor whose rejections are
//! problems too (axum's own answer in plain text), cookies, fallbacks.

use std::borrow::Cow;

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The realm of every `WWW-Authenticate` challenge.
pub(crate) const REALM: &str = "quickstart";

/// An error response: `application/problem+json` with a stable `code`, the same
/// shape as the auth layers' refusals.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: Cow<'static, str>,
    extra: Map<String, Value>,
    challenge: Option<&'static str>,
}

impl Problem {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
            challenge: None,
        }
    }

    /// Adds a member to the body (`rule`, `limit`, …).
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// A `401` with `WWW-Authenticate: Bearer realm="quickstart"` and, if given, the
    /// RFC 6750 error code.
    pub(crate) fn unauthorized(
        code: &'static str,
        detail: &'static str,
        bearer_error: Option<&'static str>,
    ) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, code, detail);
        p.challenge = Some(bearer_error.unwrap_or(""));
        p
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the error was logged",
        )
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backing store is unavailable; try again shortly",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let detail: &str = &self.detail;
        let mut response = portcullis::problem_response(self.status, self.code, detail, self.extra);
        if let Some(error) = self.challenge {
            let value = if error.is_empty() {
                format!("Bearer realm=\"{REALM}\"")
            } else {
                format!("Bearer realm=\"{REALM}\", error=\"{error}\"")
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response.map(axum::body::Body::from)
    }
}

/// Logs `error` and answers 500; never shows it to the client.
pub(crate) fn server_error(what: &'static str, error: &dyn std::fmt::Display) -> Problem {
    tracing::error!(target: "quickstart", error = %error, "{what}");
    Problem::internal()
}

/// Logs a store failure (the database or Redis is down, slow past its deadline, or
/// refused) and answers 503: the client may retry, nothing is wrong with its request.
pub(crate) fn store_error(what: &'static str, error: &dyn std::fmt::Display) -> Problem {
    tracing::error!(target: "quickstart", error = %error, "{what}");
    Problem::unavailable()
}

/// A JSON body: `Content-Type: application/json`, parsed into `T`; every failure is
/// a problem response (`400` malformed JSON, `415` wrong or missing content type,
/// `413` too large, `422` valid JSON of the wrong shape).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonSyntaxError(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is not valid JSON",
        ),
        JsonRejection::JsonDataError(e) => {
            // serde's messages can quote the offending value (say, a password sent as
            // a number): pass on only which field is missing or wrong.
            let text = e.body_text();
            let detail = if let Some(field) = between(&text, "missing field `", "`") {
                format!("missing field `{field}`")
            } else if let Some(field) = between(&text, "unknown field `", "`") {
                format!("unknown field `{field}`")
            } else if let Some((path, _)) = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .and_then(|rest| rest.split_once(": "))
                .filter(|(path, _)| !path.contains(' '))
            {
                format!("field `{path}` has the wrong type")
            } else {
                "the JSON body does not have the expected shape".to_owned()
            };
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", detail)
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            )
        }
        other => Problem::new(
            other.status(),
            "bad_body",
            "the request body could not be read",
        ),
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    let field = &rest[..rest.find(end)?];
    (!field.is_empty() && field.len() <= 64).then_some(field)
}

/// `404` as a problem.
pub(crate) async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// `405` as a problem.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// A JSON response that must not be cached (it carries tokens).
pub(crate) fn no_store_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The value of cookie `name`, if the request has exactly one.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for line in headers.get_all(header::COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        for pair in line.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two cookies of one name (one planted from a sibling domain):
                    // trust neither.
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}
