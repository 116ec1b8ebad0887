//! The browser flow: `GET /` serves one page (vanilla JS, `index.html`); the refresh
//! token travels in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` unless the
//! server listens on loopback), and cookie-authenticated writes need a CSRF token.
//!
//! # CSRF: a session-bound token in a header, plus an origin check
//!
//! Cookie-authenticated writes (`/auth/refresh` and `/auth/logout` without a token
//! in the body) must carry `X-CSRF-Token`, whose value is
//! `base64url(HMAC-SHA256(csrf_key, refresh_token))`. The server hands it out at
//! login and refresh (in the JSON body and in a readable `qs_csrf` cookie, so that
//! a reloaded page finds it). A cross-site page can neither read that value nor set
//! a custom header on a cross-site request without a CORS preflight, which this
//! server never grants. Unlike a plain double-submit cookie, the token is bound to
//! the session: a cookie planted from a sibling subdomain does not help, because
//! the server compares the header with the HMAC of the refresh cookie, not with
//! another cookie. On top of that (defence in depth, and for browsers that send
//! them), a request whose `Origin` is not this server, or whose `Sec-Fetch-Site` is
//! `cross-site` or `same-site`, is refused. `SameSite=Strict` already keeps the
//! cookie off cross-site requests in current browsers; the token covers older ones
//! and same-site attackers.

use std::time::{Duration, SystemTime};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::Problem;

/// The refresh-token cookie (`HttpOnly`, `Path=/auth`).
pub(crate) const REFRESH_COOKIE: &str = "qs_refresh";
/// The CSRF-token cookie (readable by the page, `Path=/`).
pub(crate) const CSRF_COOKIE: &str = "qs_csrf";
/// The CSRF-token header.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

const INDEX_HTML: &str = include_str!("index.html");

/// The page and its Content-Security-Policy (the inline script allowed by hash).
#[derive(Debug, Clone)]
pub(crate) struct Page {
    csp: HeaderValue,
}

impl Page {
    pub(crate) fn new() -> Self {
        let script = INDEX_HTML
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map_or("", |(script, _)| script);
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script));
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
             connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&csp).expect("the CSP is ASCII"),
        }
    }

    pub(crate) fn response(&self) -> Response {
        let mut response = (StatusCode::OK, INDEX_HTML).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Derives CSRF tokens from refresh tokens.
#[derive(Clone)]
pub(crate) struct Csrf {
    key: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf(<redacted>)")
    }
}

impl Csrf {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The CSRF token of the session whose refresh token is `refresh`.
    pub(crate) fn token_for(&self, refresh: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"quickstart-csrf\0");
        mac.update(refresh.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Lets a cookie-authenticated write through, or says why not.
    pub(crate) fn check(&self, headers: &HeaderMap, refresh: &str) -> Result<(), Problem> {
        let refuse = |detail: &'static str| Problem::new(StatusCode::FORBIDDEN, "csrf", detail);
        if let Some(site) = headers.get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return Err(refuse("cross-site request refused"));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, host)| host.as_bytes());
            if origin_host.is_none() || origin_host != host {
                return Err(refuse("the request's Origin is not this server"));
            }
        }
        let Some(presented) = headers.get(CSRF_HEADER) else {
            return Err(refuse("missing X-CSRF-Token header"));
        };
        let expected = self.token_for(refresh);
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(refuse("invalid X-CSRF-Token header"))
        }
    }
}

/// The `Set-Cookie` values that open (or renew) a browser session.
pub(crate) fn session_cookies(
    refresh: &str,
    csrf: &str,
    family_expires_at: SystemTime,
    secure: bool,
) -> [HeaderValue; 2] {
    let max_age = family_expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let secure = if secure { "; Secure" } else { "" };
    // Refresh and CSRF tokens are base64url: nothing to escape.
    [
        HeaderValue::from_str(&format!(
            "{REFRESH_COOKIE}={refresh}; Path=/auth; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII"),
        HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII"),
    ]
}

/// The `Set-Cookie` values that end a browser session.
pub(crate) fn clear_cookies(secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        HeaderValue::from_str(&format!(
            "{REFRESH_COOKIE}=; Path=/auth; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        ))
        .expect("cookie is ASCII"),
        HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0{secure}"
        ))
        .expect("cookie is ASCII"),
    ]
}
