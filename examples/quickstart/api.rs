//! The protected routes: `/me`, `/admin`, `/api-keys`, `/api/data`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use portcullis::{
    Principal,
    guard::{RequireRole, RequireScope, roles, scopes},
};
use portcullis_apikey::{ApiKeyErrorKind, ApiKeyRecord, NewApiKey};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    App,
    auth::USER_SCOPES,
    http::{JsonBody, Problem, no_store_json, server_error, store_error},
};

roles! { pub(crate) Admin = "admin" }
scopes! { pub(crate) DataRead = "data:read" }

/// The longest lifetime an API key may be given: one year.
pub(crate) const MAX_KEY_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// What a key gets when the request names no lifetime.
const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The principal as JSON (what `/me` answers).
pub(crate) fn principal_json(p: &Principal) -> Value {
    json!({
        "subject": p.subject(),
        "kind": p.kind().as_str(),
        "issuer": p.issuer(),
        "client_id": p.client_id(),
        "roles": p.roles().collect::<Vec<_>>(),
        "scopes": p.scopes().collect::<Vec<_>>(),
        "token_id": p.token_id(),
        "issued_at": p.issued_at().map(unix),
        "expires_at": p.expires_at().map(unix),
        "dpop_jkt": p.dpop_thumbprint(),
    })
}

/// `GET /me` → the principal.
pub(crate) async fn me(principal: Principal) -> Json<Value> {
    Json(principal_json(&principal))
}

/// `GET /admin` → role `admin` only.
pub(crate) async fn admin(
    State(app): State<App>,
    admin: RequireRole<Admin>,
) -> Result<Json<Value>, Problem> {
    let users = app
        .users
        .count()
        .await
        .map_err(|e| store_error("database failed", &e))?;
    Ok(Json(json!({
        "message": "welcome, administrator",
        "subject": admin.subject(),
        "users": users,
    })))
}

/// `GET /api/data` → an API key (`X-API-Key`) or a JWT with scope `data:read`.
pub(crate) async fn data(reader: RequireScope<DataRead>) -> Json<Value> {
    Json(json!({
        "data": [
            { "id": 1, "name": "portcullis", "kind": "gate" },
            { "id": 2, "name": "drawbridge", "kind": "bridge" },
        ],
        "subject": reader.subject(),
        "via": reader.kind().as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKeyBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds (default 90 days, at most a year).
    #[serde(default)]
    expires_in: Option<u64>,
    /// Keep working after a password reset or logout-all (default: the key ends too).
    #[serde(default)]
    outlives_sessions: bool,
}

fn key_json(record: &ApiKeyRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "scopes": record.scopes,
        "created_at": unix(record.created_at),
        "expires_at": record.expires_at.map(unix),
        "revoked_at": record.revoked_at.map(unix),
        "last_used_at": record.last_used_at.map(unix),
        "ends_with_sessions": record.session_bound,
    })
}

fn unprocessable(code: &'static str, detail: impl Into<std::borrow::Cow<'static, str>>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

/// `POST /api-keys` → `201` with the key, shown this once. A key gets at most the
/// scopes its owner's token holds.
pub(crate) async fn create_key(
    State(app): State<App>,
    principal: Principal,
    JsonBody(body): JsonBody<NewKeyBody>,
) -> Result<Response, Problem> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(unprocessable(
            "invalid_name",
            "the key name must be 1 to 100 characters, without control characters",
        ));
    }
    if body.scopes.len() > USER_SCOPES.len() {
        return Err(unprocessable("invalid_scope", "too many scopes"));
    }
    for scope in &body.scopes {
        if !USER_SCOPES.contains(&scope.as_str()) || !principal.has_scope(scope) {
            return Err(unprocessable(
                "invalid_scope",
                format!(
                    "a key can only get scopes its owner holds ({})",
                    principal.scopes().collect::<Vec<_>>().join(" ")
                ),
            )
            .with("allowed", principal.scopes().collect::<Vec<_>>()));
        }
    }
    let lifetime = body
        .expires_in
        .map_or(DEFAULT_KEY_LIFETIME, Duration::from_secs);
    if !(Duration::from_secs(60)..=MAX_KEY_LIFETIME).contains(&lifetime) {
        return Err(unprocessable(
            "invalid_expires_in",
            "expires_in must be between 60 seconds and one year",
        ));
    }
    let mut spec = NewApiKey::owned_by(principal.subject())
        .name(name)
        .scopes(body.scopes.iter().cloned())
        .expires_in(lifetime);
    if body.outlives_sessions {
        spec = spec.outlives_sessions();
    }
    let issued = match app
        .api_keys
        // `fresh`: a logout-all on another instance counts even before this one syncs.
        .issue_in_session(spec, &principal, &app.tokens.revocation().fresh())
        .await
    {
        Ok(issued) => issued,
        Err(e) if e.kind() == ApiKeyErrorKind::SessionEnded => {
            return Err(Problem::unauthorized(
                "invalid_token",
                "the session asking for the key has ended",
                Some("invalid_token"),
            ));
        }
        Err(e) if e.kind() == ApiKeyErrorKind::Store => {
            return Err(store_error("cannot issue an API key", &e));
        }
        Err(e) => return Err(server_error("cannot issue an API key", &e)),
    };
    let mut body = key_json(issued.record());
    body["key"] = issued.key().expose_secret().into();
    body["message"] = "store the key now: it is shown only once".into();
    Ok(no_store_json(StatusCode::CREATED, body))
}

/// `GET /api-keys` → the caller's keys (never the keys themselves).
pub(crate) async fn list_keys(
    State(app): State<App>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    let keys = app
        .api_keys
        .list(principal.subject())
        .await
        .map_err(|e| store_error("cannot list API keys", &e))?;
    Ok(Json(json!({
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
    })))
}

/// `DELETE /api-keys/{id}` → `204`; `404` for an unknown key or someone else's (the
/// same answer, so ids cannot be probed).
pub(crate) async fn delete_key(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    match app.api_keys.revoke_owned(principal.subject(), &id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.kind() == ApiKeyErrorKind::NotFound => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such API key",
        )),
        Err(e) => Err(store_error("cannot revoke an API key", &e)),
    }
}
