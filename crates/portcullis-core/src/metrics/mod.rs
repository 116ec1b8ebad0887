//! What the Portcullis layers count, through the [`metrics`](https://docs.rs/metrics)
//! facade: install any recorder (Prometheus, OpenTelemetry, StatsD, …) and the layers
//! report to it. Recorded only with the `metrics` feature; without it every call
//! compiles to nothing.
//!
//! The names follow Prometheus conventions: a `portcullis_` prefix, `_total` on
//! counters, seconds for durations and times. Every label takes its values from a
//! fixed set known when the service is built (a layer, an outcome, an error code and
//! reason, a configured policy name or issuer): never a subject, token, key id, or
//! address from a request, so a flood of forged credentials cannot grow the number of
//! series.
//!
//! The constants below are the metric names; [`describe`] gives each its help text and
//! unit. The `portcullis` README (section Metrics) holds the same table, with sample
//! PromQL.
//!
//! Recording is allocation-free on the request path: each thread keeps the handles it
//! registered with the installed recorder and bumps them directly (a handle is
//! registered once per thread and per series, and again if another recorder is
//! installed).

#[doc(hidden)]
pub mod hooks;
#[cfg(feature = "metrics")]
#[doc(hidden)]
pub mod record;

/// Counter: authentication and authorization decisions. Labels: `layer` (`auth` for
/// `AuthLayer`, `policy` for the guard's policy layer, `guard` for role and scope
/// guards), `outcome` (`allowed`, `rejected`), `code` (the problem `code`, `none` when
/// allowed) and `reason` (the [`AuthError::reason`](crate::AuthError::reason), `none`
/// when allowed).
pub const AUTH_DECISIONS: &str = "portcullis_auth_decisions_total";
/// Counter: look-ups in the verified-token cache. Label: `result` (`hit`, `miss`).
pub const JWT_CACHE_LOOKUPS: &str = "portcullis_jwt_cache_lookups_total";
/// Gauge: tokens held by the verified-token cache.
pub const JWT_CACHE_ENTRIES: &str = "portcullis_jwt_cache_entries";
/// Counter: look-ups in the token-introspection cache (RFC 7662 answers). Label:
/// `result` (`hit`, `miss`).
pub const INTROSPECTION_CACHE_LOOKUPS: &str = "portcullis_introspection_cache_lookups_total";
/// Counter: JWKS and discovery fetches. Labels: `issuer` (as configured), `result`
/// (`ok`, `error`).
pub const JWKS_REFRESHES: &str = "portcullis_jwks_refreshes_total";
/// Gauge: Unix time of the last successful JWKS fetch, per `issuer`; the age of the key
/// set in use is `time() - portcullis_jwks_last_success_timestamp_seconds`.
pub const JWKS_LAST_SUCCESS: &str = "portcullis_jwks_last_success_timestamp_seconds";
/// Counter: API-key look-ups. Label: `result` (`valid`, `unknown`, `revoked`,
/// `expired`, `malformed`, `error`).
pub const API_KEY_LOOKUPS: &str = "portcullis_api_key_lookups_total";
/// Counter: rate-limit decisions. Labels: `limiter` (the policy name), `outcome`
/// (`allowed`, `throttled`, `error`).
pub const RATE_LIMIT_DECISIONS: &str = "portcullis_rate_limit_decisions_total";
/// Gauge: client keys the in-memory rate limiters track (all limiters together).
pub const RATE_LIMIT_KEYS: &str = "portcullis_rate_limit_keys";
/// Counter: checks of a new key that found an in-memory rate limiter full (the key then
/// shares the overflow bucket).
pub const RATE_LIMIT_OVERFLOWS: &str = "portcullis_rate_limit_overflows_total";
/// Counter: login attempts the throttle refused. Label: `scope` (`ip`, `account_ip`,
/// `account`).
pub const LOGIN_BLOCKS: &str = "portcullis_login_throttle_blocks_total";
/// Histogram: the waits the login throttle handed out, in seconds. Label: `scope`.
pub const LOGIN_BACKOFF: &str = "portcullis_login_throttle_backoff_seconds";
/// Counter: failed logins the throttle counted. Label: `scope` (`ip`, `account`).
pub const LOGIN_FAILURES: &str = "portcullis_login_throttle_failures_total";
/// Histogram: time to hash or verify a password, queueing excluded, in seconds. Label:
/// `operation` (`hash`, `verify`).
pub const PASSWORD_HASH_DURATION: &str = "portcullis_password_hash_duration_seconds";
/// Gauge: password hashes waiting for a worker.
pub const PASSWORD_HASH_QUEUE: &str = "portcullis_password_hash_queue";
/// Counter: password hashes refused because the queue was full.
pub const PASSWORD_HASH_REJECTIONS: &str = "portcullis_password_hash_rejections_total";
/// Counter: tokens issued. Label: `kind` (`access`, `refresh`).
pub const TOKENS_ISSUED: &str = "portcullis_tokens_issued_total";
/// Counter: refresh tokens exchanged for a new pair.
pub const REFRESH_ROTATIONS: &str = "portcullis_refresh_rotations_total";
/// Counter: refresh tokens presented again after use; each revoked its family.
pub const REFRESH_REUSE: &str = "portcullis_refresh_reuse_detected_total";
/// Counter: revocations reported as events. Label: `kind` (`token`, `subject`,
/// `api_key`).
pub const REVOCATIONS: &str = "portcullis_revocations_total";

/// Every metric: name, type, unit and help text, as [`describe`] registers them.
#[rustfmt::skip]
const ALL: &[Desc] = &[
    counter(AUTH_DECISIONS, "Authentication and authorization decisions."),
    counter(JWT_CACHE_LOOKUPS, "Verified-token cache look-ups."),
    gauge(JWT_CACHE_ENTRIES, Unit::Count, "Tokens in the verified-token caches."),
    counter(INTROSPECTION_CACHE_LOOKUPS, "Token-introspection cache look-ups."),
    counter(JWKS_REFRESHES, "JWKS and discovery fetches."),
    gauge(JWKS_LAST_SUCCESS, Unit::Seconds, "Unix time of the last good JWKS fetch."),
    counter(API_KEY_LOOKUPS, "API-key look-ups."),
    counter(RATE_LIMIT_DECISIONS, "Rate-limit decisions."),
    gauge(RATE_LIMIT_KEYS, Unit::Count, "Client keys the in-memory rate limiters track."),
    counter(RATE_LIMIT_OVERFLOWS, "Checks of a new key that found a rate limiter full."),
    counter(LOGIN_BLOCKS, "Login attempts the throttle refused."),
    histogram(LOGIN_BACKOFF, "Waits the login throttle handed out."),
    counter(LOGIN_FAILURES, "Failed logins the throttle counted."),
    histogram(PASSWORD_HASH_DURATION, "Password hash or verify time, queueing excluded."),
    gauge(PASSWORD_HASH_QUEUE, Unit::Count, "Password hashes waiting for a worker."),
    counter(PASSWORD_HASH_REJECTIONS, "Password hashes refused: the queue was full."),
    counter(TOKENS_ISSUED, "Tokens issued."),
    counter(REFRESH_ROTATIONS, "Refresh tokens rotated."),
    counter(REFRESH_REUSE, "Refresh-token reuse detected: the family was revoked."),
    counter(REVOCATIONS, "Tokens, families, subjects or API keys revoked."),
];

/// One metric's description.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
struct Desc {
    name: &'static str,
    kind: Type,
    unit: Unit,
    help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        kind: Type::Counter,
        unit: Unit::Count,
        help,
    }
}

const fn gauge(name: &'static str, unit: Unit, help: &'static str) -> Desc {
    Desc {
        name,
        kind: Type::Gauge,
        unit,
        help,
    }
}

/// Every histogram measures seconds.
const fn histogram(name: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        kind: Type::Histogram,
        unit: Unit::Seconds,
        help,
    }
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
enum Type {
    Counter,
    Gauge,
    Histogram,
}

enum Unit {
    Count,
    Seconds,
}

/// The names of every Portcullis metric.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|desc| desc.name)
}

/// Gives every Portcullis metric its help text and unit in the installed recorder
/// (Prometheus renders them as `# HELP` and `# TYPE` lines). Call it once, after
/// installing the recorder. Does nothing without the `metrics` feature.
pub fn describe() {
    #[cfg(feature = "metrics")]
    for desc in ALL {
        let unit = match desc.unit {
            Unit::Count => None,
            Unit::Seconds => Some(metrics::Unit::Seconds),
        };
        let name = metrics::KeyName::from_const_str(desc.name);
        let help = metrics::SharedString::const_str(desc.help);
        metrics::with_recorder(|recorder| match desc.kind {
            Type::Counter => recorder.describe_counter(name, unit, help),
            Type::Gauge => recorder.describe_gauge(name, unit, help),
            Type::Histogram => recorder.describe_histogram(name, unit, help),
        });
    }
}

/// Records a metric when the `metrics` feature is on; otherwise nothing, and the
/// arguments are never evaluated past their types.
#[cfg(not(feature = "metrics"))]
#[doc(hidden)]
pub mod record {
    /// A counter increment.
    #[inline(always)]
    pub fn count<const N: usize>(_: &'static str, _: [(&'static str, &'static str); N], _: u64) {}
    /// A gauge set.
    #[inline(always)]
    pub fn gauge<const N: usize>(_: &'static str, _: [(&'static str, &'static str); N], _: f64) {}
    /// A gauge change.
    #[inline(always)]
    pub fn gauge_add<const N: usize>(
        _: &'static str,
        _: [(&'static str, &'static str); N],
        _: f64,
    ) {
    }
    /// A histogram sample.
    #[inline(always)]
    pub fn sample<const N: usize>(_: &'static str, _: [(&'static str, &'static str); N], _: f64) {}
    /// A name for a label, made `'static` once per distinct text.
    #[inline(always)]
    pub fn intern(_: &str) -> &'static str {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for desc in ALL {
            let name = desc.name;
            let counter = matches!(desc.kind, Type::Counter);
            assert!(name.starts_with("portcullis_"), "{name}");
            assert_eq!(name.ends_with("_total"), counter, "{name}");
            let seconds = matches!(desc.unit, Unit::Seconds);
            assert_eq!(name.ends_with("_seconds"), seconds, "{name}");
        }
        let mut sorted: Vec<_> = names().collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "a name is listed twice");
    }
}
