//! The `RateLimit-Policy` and `RateLimit` fields of
//! [draft-ietf-httpapi-ratelimit-headers-10], and `Retry-After`.
//!
//! Both fields are Structured Field Lists ([RFC 9651]) of one Item each: the policy
//! name as an sf-string, with integer parameters:
//!
//! ```text
//! RateLimit-Policy: "api";q=100;w=60
//! RateLimit: "api";r=42;t=7
//! ```
//!
//! `q` is the quota (the burst), `w` the window in seconds (the time in which a spent
//! quota is fully replenished), `r` the remaining quota units and `t` the seconds until
//! more quota is available: one unit more than `r` (rounded up, so a client that waits
//! `t` seconds is served). `t` means the same on a response that was let through and
//! on a `429`: the last request a burst admits (`r=0`) and the refusal right after it
//! carry the same `t`, which the refusal's `Retry-After` repeats.
//!
//! [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/
//! [RFC 9651]: https://www.rfc-editor.org/rfc/rfc9651

use std::{fmt::Write as _, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_core::internal::quoted_string;

/// The `RateLimit-Policy` field name.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// The `RateLimit` field name.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A policy's name as an sf-string (`"api"`): visible ASCII and space, `"` and `\`
/// escaped; anything else is dropped.
pub(crate) fn sf_string(name: &str) -> String {
    quoted_string(name)
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `"name";q=Q;w=W`
pub(crate) fn policy_value(quoted_name: &str, quota: u32, window: Duration) -> HeaderValue {
    let mut s = String::with_capacity(quoted_name.len() + 24);
    let _ = write!(s, "{quoted_name};q={quota};w={}", ceil_secs(window).max(1));
    HeaderValue::try_from(s).expect("sf-string and integers are valid header bytes")
}

/// `"name";r=R;t=T`
pub(crate) fn limit_value(quoted_name: &str, remaining: u32, reset: Duration) -> HeaderValue {
    let mut s = String::with_capacity(quoted_name.len() + 24);
    let _ = write!(s, "{quoted_name};r={remaining};t={}", ceil_secs(reset));
    HeaderValue::try_from(s).expect("sf-string and integers are valid header bytes")
}

/// Inserts both fields.
pub(crate) fn insert(headers: &mut HeaderMap, policy: &HeaderValue, limit: HeaderValue) {
    headers.insert(RATELIMIT_POLICY.clone(), policy.clone());
    headers.insert(RATELIMIT.clone(), limit);
}

/// Both fields, to be added to a response.
pub(crate) fn fields(policy: &HeaderValue, limit: HeaderValue) -> [(HeaderName, HeaderValue); 2] {
    [
        (RATELIMIT_POLICY.clone(), policy.clone()),
        (RATELIMIT.clone(), limit),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_sf_strings() {
        assert_eq!(sf_string("api"), r#""api""#);
        assert_eq!(sf_string("a\"b\\c\u{e9}\n"), r#""a\"b\\c""#);
    }

    #[test]
    fn values_follow_the_draft_examples() {
        let name = sf_string("default");
        assert_eq!(
            policy_value(&name, 100, Duration::from_secs(10)),
            r#""default";q=100;w=10"#
        );
        assert_eq!(
            limit_value(&name, 50, Duration::from_millis(29_001)),
            r#""default";r=50;t=30"#
        );
    }
}
