//! One function per place the crates record something, so each site is one line and
//! the metric names and labels stay here. Each compiles to nothing without the
//! `metrics` feature. Not a public API.

use std::time::{Duration, SystemTime};

use super::{record, *};
use crate::AuthEvent;

pub use super::record::{count, gauge, intern, sample};

/// A look-up in the verified-token cache.
#[inline]
pub fn jwt_cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    record::count(JWT_CACHE_LOOKUPS, [("result", result)], 1);
}

/// A look-up in the introspection cache.
#[inline]
pub fn introspection_cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    record::count(INTROSPECTION_CACHE_LOOKUPS, [("result", result)], 1);
}

/// Tokens added to (positive) or dropped from (negative) a verified-token cache.
#[inline]
pub fn jwt_cache_entries(delta: i64) {
    record::gauge_add(JWT_CACHE_ENTRIES, [], delta as f64);
}

/// A JWKS or discovery fetch for `issuer` ended.
pub fn jwks_refreshed(issuer: &str, ok: bool) {
    let issuer = record::intern(issuer);
    let result = if ok { "ok" } else { "error" };
    record::count(JWKS_REFRESHES, [("issuer", issuer), ("result", result)], 1);
    if ok {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        record::gauge(JWKS_LAST_SUCCESS, [("issuer", issuer)], now);
    }
}

/// An API-key look-up ended with `result` (`valid`, `unknown`, …; an `api_key_`
/// prefix is dropped).
#[inline]
pub fn api_key_lookup(result: &'static str) {
    let result = result.strip_prefix("api_key_").unwrap_or(result);
    record::count(API_KEY_LOOKUPS, [("result", result)], 1);
}

/// A rate-limit decision of `limiter` (a name from [`intern`]).
#[inline]
pub fn rate_limit_decision(limiter: &'static str, outcome: &'static str) {
    record::count(
        RATE_LIMIT_DECISIONS,
        [("limiter", limiter), ("outcome", outcome)],
        1,
    );
}

/// Keys an in-memory rate limiter started (positive) or stopped (negative) tracking.
#[inline]
pub fn rate_limit_keys(delta: i64) {
    record::gauge_add(RATE_LIMIT_KEYS, [], delta as f64);
}

/// A new key found an in-memory rate limiter full.
#[inline]
pub fn rate_limit_overflow() {
    record::count(RATE_LIMIT_OVERFLOWS, [], 1);
}

/// The login throttle refused an attempt on `scope`, asking for `wait`.
pub fn login_blocked(scope: &'static str, wait: Duration) {
    record::count(LOGIN_BLOCKS, [("scope", scope)], 1);
    record::sample(LOGIN_BACKOFF, [("scope", scope)], wait.as_secs_f64());
}

/// A password `operation` (`hash`, `verify`) took `elapsed`, queueing excluded.
pub fn password_hashed(operation: &'static str, elapsed: Duration) {
    record::sample(
        PASSWORD_HASH_DURATION,
        [("operation", operation)],
        elapsed.as_secs_f64(),
    );
}

/// Password hashes that started (positive) or stopped (negative) waiting for a worker.
pub fn password_queue(delta: i64) {
    record::gauge_add(PASSWORD_HASH_QUEUE, [], delta as f64);
}

/// A password hash refused because the queue was full.
pub fn password_rejected() {
    record::count(PASSWORD_HASH_REJECTIONS, [], 1);
}

/// A token of `kind` (`access`, `refresh`) was issued.
pub fn token_issued(kind: &'static str) {
    record::count(TOKENS_ISSUED, [("kind", kind)], 1);
}

/// A refresh token was exchanged for a new one (itself an issued refresh token).
pub fn refresh_rotated() {
    record::count(REFRESH_ROTATIONS, [], 1);
    record::count(TOKENS_ISSUED, [("kind", "refresh")], 1);
}

/// The counters that follow from an event, whoever emitted it: reuse, revocations and
/// counted login failures.
#[inline]
pub(crate) fn event(event: &AuthEvent<'_>) {
    match event {
        AuthEvent::RefreshReuseDetected { .. } => record::count(REFRESH_REUSE, [], 1),
        AuthEvent::TokenRevoked { .. } => record::count(REVOCATIONS, [("kind", "token")], 1),
        AuthEvent::SubjectRevoked { .. } => record::count(REVOCATIONS, [("kind", "subject")], 1),
        AuthEvent::ApiKeyRevoked { .. } => record::count(REVOCATIONS, [("kind", "api_key")], 1),
        AuthEvent::LoginFailed { key_kind } => {
            let scope = match *key_kind {
                "ip" => "ip",
                "account" => "account",
                _ => "other",
            };
            record::count(LOGIN_FAILURES, [("scope", scope)], 1);
        }
        _ => {}
    }
}
