//! `/auth/*`: register, log in, refresh, log out, password reset, e-mail verification.

use axum::http::StatusCode;
use portcullis_password::PolicyError;
use portcullis_tokens::ErrorKind as TokenErrorKind;
use serde::Deserialize;

use crate::{
    App,
    http::{Problem, server_error, store_error},
    mailer::Mail,
};

mod one_time;
mod registration;
mod session;

pub(crate) use one_time::{forgot_password, reset_password, verify_email};
pub(crate) use registration::register;
pub(crate) use session::{login, logout, logout_all, refresh};

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
    store_error("database failed", &e)
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

async fn deliver(app: &App, mail: &Mail) {
    if let Err(e) = app.mailer.send(mail).await {
        tracing::error!(target: "quickstart", error = %e, kind = mail.kind.as_str(), "mail not sent");
    }
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

/// Ends every session of `subject`: refresh families, access tokens and the API keys
/// that end with sessions (after the cut-off, which is what closes the door on a key
/// being made meanwhile: see `ApiKeys::issue_in_session`).
async fn end_sessions(app: &App, subject: &str) -> Result<(), Problem> {
    app.tokens
        .logout_everywhere(subject)
        .await
        .map_err(|e| token_problem(&e))?;
    app.api_keys
        .end_sessions(subject)
        .await
        .map_err(|e| store_error("api key store failed", &e))?;
    Ok(())
}
