//! `POST /auth/register`, and the mail that follows it.

use axum::{extract::State, http::StatusCode, response::Response};
use portcullis_password::Password;
use serde_json::json;

use super::{PURPOSE_VERIFY, RegisterBody, db_error, deliver, normalize_email, policy_problem};
use crate::{
    App,
    http::{JsonBody, Problem, no_store_json, server_error},
    mailer::{Mail, MailKind},
    store::{Registered, User},
};

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
