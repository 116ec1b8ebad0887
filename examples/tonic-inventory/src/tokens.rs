//! The demo's bearer tokens: HS256 JWTs signed with a demo secret, as an authorization
//! server would issue them.

use std::{
    error::Error,
    time::{SystemTime, UNIX_EPOCH},
};

use portcullis::jwt::{Algorithm, JwtAuthenticator, Key};

/// The issuer the demo tokens name.
pub const ISSUER: &str = "https://issuer.example";
/// The audience the demo tokens name: this service.
pub const AUDIENCE: &str = "inventory";
/// The demo HS256 secret. A real one comes from configuration, never from code.
pub const SECRET: &[u8; 32] = b"demo-secret-of-at-least-32-bytes";

/// The authenticator: HS256 bearer JWTs from [`ISSUER`] for [`AUDIENCE`]. Roles are
/// read from the `roles` claim, scopes from `scope` (and `scp`).
///
/// # Errors
///
/// When the key or the verifier configuration is refused.
pub fn authenticator() -> Result<JwtAuthenticator, Box<dyn Error + Send + Sync>> {
    Ok(JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET)?)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()?)
}

/// A five-minute token for `subject` with `scope` (space-separated) and `roles`.
///
/// # Panics
///
/// When signing fails (it does not, with an HMAC key).
pub fn mint(subject: &str, scope: &str, roles: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "scope": scope, "roles": roles,
        "iat": now, "exp": now + 300,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("HS256 signing cannot fail")
}
