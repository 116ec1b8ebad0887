//! Sessions: log in, refresh, log out, and log out everywhere.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use portcullis::Principal;
use portcullis_password::{HashErrorKind, Password, Verification};
use portcullis_tokens::{
    AccessToken, ErrorKind as TokenErrorKind, Grant, IssuedRefreshToken, SessionStamp,
    dpop_client_id,
};
use serde_json::json;

use super::{
    CLIENT_ID, LoginBody, RefreshBody, USER_SCOPES, db_error, end_sessions, token_problem,
};
use crate::{
    App,
    browser::{self, REFRESH_COOKIE},
    http::{JsonBody, Problem, REALM, cookie, no_store_json, server_error},
    store::User,
};

/// The grant for `user`, bound to the DPoP key `jkt` when the request proved one.
fn grant_for(user: &User, jkt: Option<&str>) -> Grant {
    let grant = Grant::new(&user.id, CLIENT_ID)
        .roles(user.roles.iter().map(String::as_str))
        .scopes(USER_SCOPES.iter().copied());
    match jkt {
        Some(jkt) => grant.dpop_jkt(jkt),
        None => grant,
    }
}

/// The thumbprint of the key the request's `DPoP` proof verified with, if it has
/// one; a proof that fails is answered as RFC 9449 §7.1 says.
async fn dpop_key(app: &App, parts: &Parts) -> Result<Option<String>, Response> {
    app.dpop
        .verify_proof(parts)
        .await
        .map_err(|e| e.to_http_response(REALM).map(Body::from))
}

fn expires_in(access: &AccessToken) -> u64 {
    access
        .expires_at()
        .duration_since(access.issued_at())
        .map_or(0, |d| d.as_secs())
}

/// The token response: the OAuth shape for API clients; for browsers the refresh
/// token goes into the cookie only, and the CSRF token comes along.
fn token_response(
    app: &App,
    access: &AccessToken,
    refresh: &IssuedRefreshToken,
    cookie_mode: bool,
) -> Response {
    if cookie_mode {
        let csrf = app.csrf.token_for(refresh.token.as_str());
        let mut response = no_store_json(
            StatusCode::OK,
            json!({
                "access_token": access.as_str(),
                "token_type": access.token_type(),
                "expires_in": expires_in(access),
                "csrf_token": csrf,
            }),
        );
        for value in browser::session_cookies(
            refresh.token.as_str(),
            &csrf,
            refresh.record.family_expires_at,
            app.config.cookie_secure,
        ) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    } else {
        no_store_json(
            StatusCode::OK,
            json!({
                "access_token": access.as_str(),
                "refresh_token": refresh.token.as_str(),
                "token_type": access.token_type(),
                "expires_in": expires_in(access),
            }),
        )
    }
}

/// `POST /auth/login` → `200` with a token pair. Behind the login throttle.
///
/// One `401` for every failure (unknown address, wrong password, over-long input),
/// with the same argon2 cost: unknown addresses are checked against a dummy hash.
/// With a valid `DPoP` proof the tokens are bound to its key (`token_type` `DPoP`).
pub(crate) async fn login(
    State(app): State<App>,
    parts: Parts,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, Problem> {
    let jkt = match dpop_key(&app, &parts).await {
        Ok(jkt) => jkt,
        Err(refused) => return Ok(refused),
    };
    let invalid = || {
        Problem::unauthorized(
            "invalid_credentials",
            "the e-mail address or password is wrong",
            None,
        )
    };
    let password = Password::new(body.password);
    let email = body.email.trim();
    let found = if email.is_empty() || email.len() > 254 {
        None
    } else {
        app.users.find_by_email(email).await.map_err(db_error)?
    };
    // The session stamp is read before the hash that the password is checked against:
    // a reset or logout-all from here on refuses this login in the store.
    let (user, stamp) = match found {
        Some(found) => {
            let stamp = app
                .tokens
                .session_stamp(&found.id)
                .await
                .map_err(|e| token_problem(&e))?;
            let user = app.users.find_by_id(&found.id).await.map_err(db_error)?;
            (user, stamp)
        }
        None => (None, SessionStamp::default()),
    };
    let verification = match &user {
        Some(user) => app.hasher.verify(&password, &user.password_hash).await,
        None => app
            .hasher
            .verify_dummy(&password)
            .await
            .map(|_| Verification::Invalid),
    };
    let verification = match verification {
        Ok(v) => v,
        Err(e) if e.kind() == HashErrorKind::InputTooLarge => return Err(invalid()),
        Err(e) => return Err(server_error("password verification failed", &e)),
    };
    let (Some(user), true) = (user, verification.is_valid()) else {
        return Err(invalid());
    };
    if verification.needs_rehash() {
        let rehash_app = app.clone();
        let (id, old) = (user.id.clone(), user.password_hash.clone());
        tokio::spawn(async move {
            match rehash_app.hasher.hash(&password).await {
                // Only over the hash just verified: never over a newer password's.
                Ok(new) => {
                    if let Err(e) = rehash_app.users.rehash(&id, &old, &new).await {
                        tracing::warn!(target: "quickstart", error = %e, "rehash not stored");
                    }
                }
                Err(e) => tracing::warn!(target: "quickstart", error = %e, "rehash failed"),
            }
        });
    }
    if app.config.require_verified_email && !user.email_verified {
        // Only reachable with the right password: this reveals nothing to a guesser.
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "verify your e-mail address first (see the mail sent at registration)",
        ));
    }
    let pair = match app
        .tokens
        .login(&grant_for(&user, jkt.as_deref()), stamp)
        .await
    {
        Ok(pair) => pair,
        // The account's sessions were ended while the password was being checked.
        Err(e) if e.kind() == TokenErrorKind::SessionsEnded => return Err(invalid()),
        Err(e) => return Err(token_problem(&e)),
    };
    Ok(token_response(
        &app,
        &pair.access,
        &pair.refresh,
        body.cookie,
    ))
}

/// Where the refresh token of a refresh or logout comes from.
enum Presented<'a> {
    Body(String),
    Cookie(&'a str),
}

fn presented_refresh<'a>(
    app: &App,
    headers: &'a HeaderMap,
    body: RefreshBody,
) -> Result<Presented<'a>, Problem> {
    if let Some(token) = body.refresh_token {
        return Ok(Presented::Body(token));
    }
    let Some(token) = cookie(headers, REFRESH_COOKIE).filter(|t| !t.is_empty()) else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "missing_refresh_token",
            "send {\"refresh_token\": …} or the session cookie",
        ));
    };
    app.csrf.check(headers, token)?;
    Ok(Presented::Cookie(token))
}

/// `POST /auth/refresh` → a new pair. The old refresh token is spent; presenting it
/// again revokes the whole family (the newest token too) and answers `401`. A family
/// bound to a DPoP key needs a proof by that key; without it nothing rotates.
pub(crate) async fn refresh(
    State(app): State<App>,
    parts: Parts,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, Problem> {
    let headers = &parts.headers;
    let presented = presented_refresh(&app, headers, body)?;
    let jkt = match dpop_key(&app, &parts).await {
        Ok(jkt) => jkt,
        Err(refused) => return Ok(refused),
    };
    let (token, cookie_mode) = match &presented {
        Presented::Body(t) => (t.as_str(), false),
        Presented::Cookie(t) => (*t, true),
    };
    let rotated = app
        .tokens
        .refresh_tokens()
        .rotate(token, &dpop_client_id(CLIENT_ID, jkt.as_deref()))
        .await
        .map_err(|e| {
            if e.kind() == TokenErrorKind::Reused {
                tracing::warn!(target: "quickstart", "refresh token reused: family revoked");
            }
            token_problem(&e)
        });
    let rotated = match rotated {
        Ok(r) => r,
        Err(problem) if cookie_mode => {
            let mut response = problem.into_response();
            for value in browser::clear_cookies(app.config.cookie_secure) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            return Ok(response);
        }
        Err(problem) => return Err(problem),
    };
    // Roles are looked up afresh: a demoted user's next token shows it.
    let Some(user) = app
        .users
        .find_by_id(&rotated.record.subject)
        .await
        .map_err(db_error)?
    else {
        let _ = app
            .tokens
            .refresh_tokens()
            .revoke_family(&rotated.record.family, &rotated.record.subject)
            .await;
        return Err(token_problem(&portcullis_tokens::Error::new(
            TokenErrorKind::Unknown,
            "account gone",
        )));
    };
    let access = app
        .tokens
        .issuer()
        .issue(&grant_for(&user, jkt.as_deref()))
        .map_err(|e| token_problem(&e))?;
    Ok(token_response(&app, &access, &rotated, cookie_mode))
}

/// `POST /auth/logout` → `204`: revokes the refresh token's family and, when the
/// request carries the access token, denylists it too. Unknown tokens also get `204`
/// (RFC 7009 §2.2); malformed ones get `400`.
pub(crate) async fn logout(
    State(app): State<App>,
    principal: Option<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, Problem> {
    let presented = presented_refresh(&app, &headers, body)?;
    let (token, cookie_mode) = match &presented {
        Presented::Body(t) => (t.as_str(), false),
        Presented::Cookie(t) => (*t, true),
    };
    match app.tokens.logout(principal.as_ref(), Some(token)).await {
        Ok(()) => {}
        Err(e) if e.kind() == TokenErrorKind::Malformed => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_refresh_token",
                "that is not a refresh token of this server",
            ));
        }
        Err(e) if e.kind().is_client_error() => {}
        Err(e) => return Err(token_problem(&e)),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if cookie_mode {
        for value in browser::clear_cookies(app.config.cookie_secure) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// `POST /auth/logout-all` (bearer) → `204`: every session of the caller ends, every
/// access token issued until now is refused (a per-subject cut-off that the bearer
/// layer checks on every request, cache hits included), and so does every API key
/// that was not made to outlive sessions.
pub(crate) async fn logout_all(
    State(app): State<App>,
    principal: Principal,
) -> Result<Response, Problem> {
    end_sessions(&app, principal.subject()).await?;
    tracing::info!(target: "quickstart", user = principal.subject(), "logged out everywhere");
    let mut response = StatusCode::NO_CONTENT.into_response();
    for value in browser::clear_cookies(app.config.cookie_secure) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}
