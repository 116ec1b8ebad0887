//! Helpers the Portcullis crates share. Not a public API: no stability promise, and
//! hidden from the docs.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use http::{Extensions, HeaderValue, request::Parts};

pub use crate::error::quoted_string;
/// Recording helpers for the `metrics` feature (no-ops without it).
pub use crate::metrics::hooks as metrics;
pub use crate::principal::numeric_date;
use crate::{AuthContext, AuthError, AuthResult, Events};

/// [`ClaimMapping::check`](crate::ClaimMapping::check) for one top-level member of the
/// claims, for a verifier that already walks them once (most names cost one bit test).
///
/// # Errors
///
/// When `value` does not have the shape a path starting at `name` needs.
#[inline]
pub fn check_claim(
    mapping: &crate::ClaimMapping,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), crate::ClaimShapeError> {
    mapping.check_member(name, value)
}

/// The refusal for a request without a peer address (see `client_ip`).
pub fn missing_peer_error() -> AuthError {
    crate::client_ip::missing_peer_error()
}

/// The socket peer recorded in `extensions`: a `PeerAddr`, or (feature `tonic`) the
/// remote address of tonic's `TcpConnectInfo`.
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    crate::client_ip::peer_addr(extensions)
}

/// What `AuthLayer` does with an authenticator's answer, before it renders a refusal:
/// the principal into the extensions, or the refusal (see `auth::service`).
pub fn settle(
    parts: &mut Parts,
    result: AuthResult,
    optional: bool,
    events: &Events,
    context: &AuthContext,
) -> Result<(), AuthError> {
    crate::auth::settle(parts, result, optional, events, context)
}

/// The span one authentication runs in: `DEBUG` under the target `portcullis::auth`,
/// so production logs stay quiet unless asked; `tracing-opentelemetry` turns it into an
/// OpenTelemetry span. Its fields are filled in by [`decided`] (and `kid` by
/// [`trace_kid`]).
pub fn auth_span(layer: &'static str) -> tracing::Span {
    tracing::debug_span!(
        target: "portcullis::auth",
        "authenticate",
        layer,
        outcome = tracing::field::Empty,
        code = tracing::field::Empty,
        reason = tracing::field::Empty,
        issuer = tracing::field::Empty,
        kid = tracing::field::Empty,
        subject = tracing::field::Empty,
    )
}

/// Counts a decision of `layer` (metric `portcullis_auth_decisions_total`) and records
/// it on `span`: the outcome, the refusal's code and reason, or the subject and issuer
/// of the principal in `extensions`.
#[inline]
pub fn decided(
    layer: &'static str,
    span: &tracing::Span,
    extensions: &Extensions,
    result: Result<(), &AuthError>,
) {
    use crate::metrics::AUTH_DECISIONS;
    match result {
        Ok(()) => {
            let labels = [
                ("layer", layer),
                ("outcome", "allowed"),
                ("code", "none"),
                ("reason", "none"),
            ];
            metrics::count(AUTH_DECISIONS, labels, 1);
            if !span.is_disabled() {
                span.record("outcome", "allowed");
                if let Some(principal) = extensions.get::<crate::Principal>() {
                    span.record("subject", principal.subject());
                    if let Some(issuer) = principal.issuer() {
                        span.record("issuer", issuer);
                    }
                }
            }
        }
        Err(error) => {
            let (code, reason) = (error.kind().code(), error.reason());
            let labels = [
                ("layer", layer),
                ("outcome", "rejected"),
                ("code", code),
                ("reason", reason),
            ];
            metrics::count(AUTH_DECISIONS, labels, 1);
            span.record("outcome", "rejected");
            span.record("code", code);
            span.record("reason", reason);
        }
    }
}

/// Records the `kid` a token names on the authentication span, when that span is on.
#[inline]
pub fn trace_kid(kid: Option<&str>) {
    if let Some(kid) = kid
        && tracing::enabled!(target: "portcullis::auth", tracing::Level::DEBUG)
    {
        tracing::Span::current().record("kid", kid);
    }
}

/// The header value as text, exactly when `HeaderValue::to_str` would give it.
pub fn header_text(value: &HeaderValue) -> Option<&str> {
    crate::credentials::header_text(value)
}

/// Whole seconds since the Unix epoch, rounded toward the past (-0.5 s is -1),
/// saturating.
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// Microseconds since the Unix epoch (negative before it), saturating: how the Redis
/// and SQL backends store times.
pub fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The inverse of [`unix_micros`].
pub fn from_unix_micros(us: i64) -> SystemTime {
    let d = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Parses exactly `N` bytes of hexadecimal (either case).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn unix_times_round_toward_the_past_and_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(unix_secs(t), 1_700_000_000);
        assert_eq!(
            unix_secs(SystemTime::UNIX_EPOCH - Duration::from_millis(500)),
            -1
        );
        assert_eq!(unix_micros(t), 1_700_000_000_123_456);
        assert_eq!(from_unix_micros(unix_micros(t)), t);
        assert_eq!(
            unix_micros(SystemTime::UNIX_EPOCH - Duration::from_micros(5)),
            -5
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex::<3>("00ABff"), Some([0x00, 0xab, 0xff]));
        assert_eq!(from_hex::<3>("00abf"), None);
        assert_eq!(from_hex::<2>("zz00"), None);
    }

    #[test]
    fn problem_has_the_members_in_order() {
        let mut extra = serde_json::Map::new();
        extra.insert("retry_after".into(), 3.into());
        let response = crate::problem_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "slow down",
            extra,
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["status"], 429);
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(body["retry_after"], 3);
        assert_eq!(body["title"], "Too Many Requests");
    }
}
