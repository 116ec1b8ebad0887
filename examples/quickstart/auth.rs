//! `/auth/*`: register, log in, refresh, log out, password reset, e-mail verification.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use portcullis::Principal;
use portcullis_password::{HashErrorKind, Password, PolicyError, ResetErrorKind, Verification};
use portcullis_tokens::{AccessToken, ErrorKind as TokenErrorKind, Grant, IssuedRefreshToken};
use serde::Deserialize;
use serde_json::json;

use crate::{
    App,
    browser::{self, REFRESH_COOKIE},
    http::{JsonBody, Problem, cookie, no_store_json, server_error},
    mailer::{Mail, MailKind},
    store::{Registered, User},
};

/// The OAuth `client_id` every token of this server is bound to.
pub(crate) const CLIENT_ID: &str = "quickstart";
/// What one-time tokens are for.
pub(crate) const PURPOSE_RESET: &str = "password_reset";
pub(crate) const PURPOSE_VERIFY: &str = "email_verification";
/// The scopes every user's access token carries.
pub(crate) const USER_SCOPES: &[&str] = &["data:read"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    email: String,
    password: String,
    /// Browser mode: the refresh token goes into an `HttpOnly` cookie instead of the body.
    #[serde(default)]
    cookie: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    /// Absent: the refresh cookie is used (and a CSRF token required).
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    token: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    token: String,
}

fn db_error(e: impl std::fmt::Display) -> Problem {
    server_error("database failed", &e)
}

/// Trims and checks an address: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters, at most 254 bytes (RFC 5321).
pub(crate) fn normalize_email(raw: &str) -> Result<String, Problem> {
    let email = raw.trim();
    let invalid = || {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "the e-mail address is not valid",
        )
    };
    if email.is_empty() || email.len() > 254 {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_owned())
    } else {
        Err(invalid())
    }
}

fn policy_problem(e: &PolicyError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_policy",
        e.to_string(),
    )
    .with("rule", e.rule().as_str())
    .with("limit", e.limit())
}

/// `POST /auth/register` → `201`.
///
/// A taken address gets the same `201` and body as a new one (after the same argon2
/// hash), and its owner gets an "already registered" mail instead of a verification
/// mail: the response never tells who has an account. Policy failures (`422`)
/// depend only on the password, not on whether the address is taken.
pub(crate) async fn register(
    State(app): State<App>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, Problem> {
    let email = normalize_email(&body.email)?;
    let name = match body
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_name",
                "the name must be at most 100 characters, without control characters",
            ));
        }
        other => other,
    };
    let password = Password::new(body.password);
    let local = email.split('@').next().unwrap_or_default();
    let mut context = vec![email.as_str(), local, "portcullis", "quickstart"];
    if let Some(name) = &name {
        context.push(name);
    }
    app.policy
        .check_with_context(password.expose(), &context)
        .map_err(|e| policy_problem(&e))?;
    let hash = app
        .hasher
        .hash(&password)
        .await
        .map_err(|e| server_error("hashing failed", &e))?;
    let registered = app
        .users
        .register(
            &email,
            name.as_deref(),
            &hash,
            app.config.admin_email.as_deref(),
        )
        .await
        .map_err(db_error)?;
    // Mail from a task, for both outcomes: the response time does not depend on it.
    let mail_app = app.clone();
    tokio::spawn(async move {
        match registered {
            Registered::Created(user) => {
                tracing::info!(target: "quickstart", user = %user.id, admin = user.roles.iter().any(|r| r == "admin"), "user registered");
                send_verification(&mail_app, &user).await;
            }
            Registered::Duplicate(user) => {
                let mail = Mail {
                    to: user.email.clone(),
                    kind: MailKind::AlreadyRegistered,
                    subject: "Someone tried to register with your address".into(),
                    body: format!(
                        "Someone (maybe you) tried to create an account at {} with this address, \
                         which already has one. If it was you, log in or reset your password.",
                        mail_app.config.public_url
                    ),
                    token: None,
                };
                deliver(&mail_app, &mail).await;
            }
        }
    });
    Ok(no_store_json(
        StatusCode::CREATED,
        json!({
            "email": email,
            "message": "registered: check your inbox to verify the address",
        }),
    ))
}

async fn send_verification(app: &App, user: &User) {
    match app.one_time.issue(&user.id, PURPOSE_VERIFY).await {
        Ok(token) => {
            let mail = Mail {
                to: user.email.clone(),
                kind: MailKind::VerifyEmail,
                subject: "Confirm your e-mail address".into(),
                body: format!(
                    "Hello {},\n\nconfirm your address within 30 minutes:\n\
                     curl -X POST {}/auth/verify-email -H 'content-type: application/json' \
                     -d '{{\"token\":\"{}\"}}'",
                    user.name.as_deref().unwrap_or(&user.email),
                    app.config.public_url,
                    token.as_str()
                ),
                token: Some(token.as_str().to_owned()),
            };
            deliver(app, &mail).await;
        }
        Err(e) => {
            tracing::error!(target: "quickstart", error = %e, "cannot issue a verification token")
        }
    }
}

async fn deliver(app: &App, mail: &Mail) {
    if let Err(e) = app.mailer.send(mail).await {
        tracing::error!(target: "quickstart", error = %e, kind = mail.kind.as_str(), "mail not sent");
    }
}

fn grant_for(user: &User) -> Grant {
    Grant::new(&user.id, CLIENT_ID)
        .roles(user.roles.iter().map(String::as_str))
        .scopes(USER_SCOPES.iter().copied())
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
                "token_type": "Bearer",
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
                "token_type": "Bearer",
                "expires_in": expires_in(access),
            }),
        )
    }
}

/// `POST /auth/login` → `200` with a token pair. Behind the login throttle.
///
/// One `401` for every failure (unknown address, wrong password, over-long input),
/// with the same argon2 cost: unknown addresses are checked against a dummy hash.
pub(crate) async fn login(
    State(app): State<App>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, Problem> {
    let invalid = || {
        Problem::unauthorized(
            "invalid_credentials",
            "the e-mail address or password is wrong",
            None,
        )
    };
    let password = Password::new(body.password);
    let email = body.email.trim();
    let user = if email.is_empty() || email.len() > 254 {
        None
    } else {
        app.users.find_by_email(email).await.map_err(db_error)?
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
        let id = user.id.clone();
        tokio::spawn(async move {
            match rehash_app.hasher.hash(&password).await {
                Ok(hash) => {
                    if let Err(e) = rehash_app.users.set_password(&id, &hash).await {
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
    let pair = app
        .tokens
        .login(&grant_for(&user))
        .await
        .map_err(|e| token_problem(&e))?;
    Ok(token_response(
        &app,
        &pair.access,
        &pair.refresh,
        body.cookie,
    ))
}

fn token_problem(e: &portcullis_tokens::Error) -> Problem {
    if e.kind().is_client_error() {
        Problem::unauthorized(
            "invalid_grant",
            "the refresh token is invalid, expired or revoked",
            Some("invalid_token"),
        )
    } else if e.kind() == TokenErrorKind::Store {
        tracing::error!(target: "quickstart", error = %e, source = ?std::error::Error::source(e), "token store failed");
        Problem::unavailable()
    } else {
        server_error("token operation failed", e)
    }
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
/// again revokes the whole family (the newest token too) and answers `401`.
pub(crate) async fn refresh(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, Problem> {
    let presented = presented_refresh(&app, &headers, body)?;
    let (token, cookie_mode) = match &presented {
        Presented::Body(t) => (t.as_str(), false),
        Presented::Cookie(t) => (*t, true),
    };
    let rotated = app
        .tokens
        .refresh_tokens()
        .rotate(token, CLIENT_ID)
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
        .issue(&grant_for(&user))
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

/// `POST /auth/logout-all` (bearer) → `204`: every session of the caller ends, and
/// every access token issued until now is refused (a per-subject cut-off that the
/// bearer layer checks on every request, cache hits included).
pub(crate) async fn logout_all(
    State(app): State<App>,
    principal: Principal,
) -> Result<Response, Problem> {
    app.tokens
        .logout_everywhere(principal.subject())
        .await
        .map_err(|e| token_problem(&e))?;
    tracing::info!(target: "quickstart", user = principal.subject(), "logged out everywhere");
    past_the_cutoff_second().await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for value in browser::clear_cookies(app.config.cookie_secure) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Waits until the wall clock enters the next second. A revocation cut-off refuses
/// every token issued in its second or before (`iat` has whole-second precision), so
/// without this wait a client that logs in again right after the `204` could get a
/// token that is already refused. At most one second, on two rare routes.
async fn past_the_cutoff_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let rest = std::time::Duration::from_nanos(u64::from(1_000_000_000 - now.subsec_nanos()));
    tokio::time::sleep(rest + std::time::Duration::from_millis(5)).await;
}

/// `POST /auth/forgot-password` → `202`, always, at once: the look-up, the token and
/// the mail happen in a task, so neither the status nor the timing tells whether the
/// address has an account.
pub(crate) async fn forgot_password(
    State(app): State<App>,
    JsonBody(body): JsonBody<EmailBody>,
) -> Response {
    let email = body.email;
    tokio::spawn(async move {
        let Ok(email) = normalize_email(&email) else {
            return;
        };
        let user = match app.users.find_by_email(&email).await {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(target: "quickstart", error = %e, "database failed");
                return;
            }
        };
        match app.one_time.issue(&user.id, PURPOSE_RESET).await {
            Ok(token) => {
                let mail = Mail {
                    to: user.email.clone(),
                    kind: MailKind::PasswordReset,
                    subject: "Reset your password".into(),
                    body: format!(
                        "Reset your password within 30 minutes:\n\
                         curl -X POST {}/auth/reset-password -H 'content-type: application/json' \
                         -d '{{\"token\":\"{}\",\"password\":\"<new password>\"}}'",
                        app.config.public_url,
                        token.as_str()
                    ),
                    token: Some(token.as_str().to_owned()),
                };
                deliver(&app, &mail).await;
            }
            Err(e) => {
                tracing::error!(target: "quickstart", error = %e, "cannot issue a reset token")
            }
        }
    });
    no_store_json(
        StatusCode::ACCEPTED,
        json!({ "message": "if the address has an account, a reset link is on its way" }),
    )
}

fn one_time_problem(e: &portcullis_password::ResetError) -> Problem {
    match e.kind() {
        ResetErrorKind::Store => server_error("one-time token store failed", e),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "the token is invalid, used or expired",
        ),
    }
}

/// `POST /auth/reset-password` → `204`: new password, every session and access token
/// of the account revoked, every other outstanding reset link dead. The policy is
/// checked before the token is spent, so a weak password does not burn the link.
pub(crate) async fn reset_password(
    State(app): State<App>,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<Response, Problem> {
    let password = Password::new(body.password);
    app.policy
        .check_password(&password)
        .map_err(|e| policy_problem(&e))?;
    let subject = app
        .one_time
        .redeem(&body.token, PURPOSE_RESET)
        .await
        .map_err(|e| one_time_problem(&e))?;
    let hash = app
        .hasher
        .hash(&password)
        .await
        .map_err(|e| server_error("hashing failed", &e))?;
    app.users
        .set_password(&subject, &hash)
        .await
        .map_err(db_error)?;
    // The link reached the mailbox: the address is verified.
    app.users
        .set_email_verified(&subject)
        .await
        .map_err(db_error)?;
    app.one_time
        .revoke_subject(&subject)
        .await
        .map_err(|e| one_time_problem(&e))?;
    app.tokens
        .logout_everywhere(&subject)
        .await
        .map_err(|e| token_problem(&e))?;
    tracing::info!(target: "quickstart", user = %subject, "password reset; sessions revoked");
    past_the_cutoff_second().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /auth/verify-email` → `204`.
pub(crate) async fn verify_email(
    State(app): State<App>,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, Problem> {
    let subject = app
        .one_time
        .redeem(&body.token, PURPOSE_VERIFY)
        .await
        .map_err(|e| one_time_problem(&e))?;
    app.users
        .set_email_verified(&subject)
        .await
        .map_err(db_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
