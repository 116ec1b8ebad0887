//! The routes of one-time tokens sent by mail: forgotten and reset passwords, and
//! e-mail verification.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use portcullis_password::{Password, ResetErrorKind};
use serde_json::json;

use super::{
    EmailBody, PURPOSE_RESET, PURPOSE_VERIFY, ResetBody, TokenBody, db_error, deliver,
    end_sessions, normalize_email, policy_problem,
};
use crate::{
    App,
    http::{JsonBody, Problem, no_store_json, server_error, store_error},
    mailer::{Mail, MailKind},
};

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
        ResetErrorKind::Store => store_error("one-time token store failed", e),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "the token is invalid, used or expired",
        ),
    }
}

/// `POST /auth/reset-password` → `204`: new password, every session, access token and
/// session-bound API key of the account revoked, every other outstanding reset link
/// dead. The policy is
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
        .set_email_verified(&subject, app.config.admin_email.as_deref())
        .await
        .map_err(db_error)?;
    app.one_time
        .revoke_subject(&subject)
        .await
        .map_err(|e| one_time_problem(&e))?;
    end_sessions(&app, &subject).await?;
    tracing::info!(target: "quickstart", user = %subject, "password reset; sessions revoked");
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
        .set_email_verified(&subject, app.config.admin_email.as_deref())
        .await
        .map_err(db_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
