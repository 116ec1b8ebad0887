//! Finding credentials in a request: `Authorization: Bearer`, an opt-in cookie, and
//! (only when explicitly enabled) the query string.
//!
//! The rules follow [RFC 6750 §2](https://www.rfc-editor.org/rfc/rfc6750#section-2):
//! the scheme is case-insensitive; two `Authorization` headers, or a token in two places
//! at once, are a malformed request (`400 invalid_request`).

use std::sync::Arc;

use http::{HeaderMap, header, request::Parts};

use crate::AuthError;

/// The token of an `Authorization: Bearer <token>` header, if there is one.
///
/// Returns `Ok(None)` when there is no `Authorization` header or it uses another
/// scheme (`Basic`, …), so another authenticator may claim it.
///
/// # Errors
///
/// `invalid_request` when the header is repeated, is not visible ASCII, or carries an
/// empty token.
///
/// ```
/// use portcullis_core::credentials::authorization_bearer;
///
/// let req = http::Request::get("/").header("authorization", "bEaReR abc.def.ghi").body(()).unwrap();
/// let (parts, ()) = req.into_parts();
/// assert_eq!(authorization_bearer(&parts.headers).unwrap(), Some("abc.def.ghi"));
/// ```
pub fn authorization_bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::invalid_request("duplicate_authorization_header"));
    }
    let (value, spaces) = visible_ascii(value.as_bytes())
        .ok_or_else(|| AuthError::invalid_request("authorization_not_ascii"))?;
    let (scheme, rest) = match value.split_once(' ') {
        Some(split) => split,
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    // The usual shape, `Bearer <token>`: the one space is the separator.
    let token = if spaces == 1 {
        rest
    } else {
        rest.trim_matches(' ')
    };
    if token.is_empty() {
        return Err(AuthError::invalid_request("empty_bearer_token"));
    }
    if spaces > 1 && token.contains(' ') {
        return Err(AuthError::invalid_request("malformed_bearer_token"));
    }
    Ok(Some(token))
}

/// The header value as text, exactly when `HeaderValue::to_str` would give it
/// (visible ASCII and tab), checked many bytes at a time.
pub(crate) fn header_text(value: &http::HeaderValue) -> Option<&str> {
    visible_ascii(value.as_bytes()).map(|(text, _)| text)
}

/// The header value as text when it is visible ASCII (what `HeaderValue::to_str`
/// accepts), and how many spaces it holds. One pass that checks many bytes per
/// instruction rather than a byte at a time: bearer tokens run to hundreds of bytes and
/// this runs on every request.
fn visible_ascii(bytes: &[u8]) -> Option<(&str, usize)> {
    let mut invisible = 0u8;
    let mut spaces = 0usize;
    // No early exit, and a byte-wide counter per chunk, so the loop vectorizes.
    for chunk in bytes.chunks(u8::MAX as usize) {
        let mut chunk_spaces = 0u8;
        for &b in chunk {
            invisible |= u8::from(!(0x20..0x7f).contains(&b) & (b != b'\t'));
            chunk_spaces += u8::from(b == b' ');
        }
        spaces += usize::from(chunk_spaces);
    }
    if invisible != 0 {
        return None;
    }
    Some((std::str::from_utf8(bytes).ok()?, spaces))
}

/// Where a bearer token may be found. Default: the `Authorization` header only.
///
/// ```
/// use portcullis_core::credentials::TokenSources;
///
/// let sources = TokenSources::default().with_cookie("access_token");
/// let req = http::Request::get("/")
///     .header("cookie", "theme=dark; access_token=abc")
///     .body(())
///     .unwrap();
/// let (parts, ()) = req.into_parts();
/// assert_eq!(sources.find(&parts).unwrap(), Some("abc"));
/// ```
#[derive(Debug, Clone)]
pub struct TokenSources {
    header: bool,
    cookie: Option<Arc<str>>,
    query: Option<Arc<str>>,
}

impl Default for TokenSources {
    fn default() -> Self {
        Self {
            header: true,
            cookie: None,
            query: None,
        }
    }
}

impl TokenSources {
    /// Also read the token from the cookie `name`.
    ///
    /// # Security
    ///
    /// Cookies are sent by browsers automatically: protect state-changing routes that
    /// accept cookie credentials against CSRF.
    #[must_use]
    pub fn with_cookie(mut self, name: impl Into<Arc<str>>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Also read the token from the query parameter `name`.
    ///
    /// # Security
    ///
    /// [RFC 6750 §2.3](https://www.rfc-editor.org/rfc/rfc6750#section-2.3) advises
    /// against it: URLs end up in logs, history and `Referer` headers.
    #[must_use]
    pub fn danger_with_query_parameter(mut self, name: impl Into<Arc<str>>) -> Self {
        self.query = Some(name.into());
        self
    }

    /// Stop reading the `Authorization` header (cookie-only setups).
    #[must_use]
    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }

    /// The bytes after `Bearer ` in the request's one `Authorization` header, unchecked,
    /// when that header is the only place a token may come from (the default).
    ///
    /// For matching against tokens that [`find`](Self::find) returned before and that
    /// were validated since (a cache of verified tokens): bytes equal to such a token
    /// are what `find` would return for this request too, so the checks need not run
    /// again. Anything else must go through `find`.
    ///
    /// ```
    /// use portcullis_core::credentials::TokenSources;
    ///
    /// let req = http::Request::get("/").header("authorization", "Bearer a.b.c").body(()).unwrap();
    /// let (parts, ()) = req.into_parts();
    /// assert_eq!(TokenSources::default().raw_bearer(&parts), Some(&b"a.b.c"[..]));
    /// let cookies = TokenSources::default().with_cookie("access_token");
    /// assert_eq!(cookies.raw_bearer(&parts), None);
    /// ```
    pub fn raw_bearer<'a>(&self, parts: &'a Parts) -> Option<&'a [u8]> {
        if !self.header || self.cookie.is_some() || self.query.is_some() {
            return None;
        }
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let (scheme, token) = value.as_bytes().split_at_checked(7)?;
        scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
    }

    /// Finds the token.
    ///
    /// # Errors
    ///
    /// `invalid_request` when the token is found in more than one place, or any place
    /// holds it malformed or repeated.
    pub fn find<'a>(&self, parts: &'a Parts) -> Result<Option<&'a str>, AuthError> {
        let mut found = None;
        let mut take = |token: Option<&'a str>| -> Result<(), AuthError> {
            if let Some(token) = token {
                if found.is_some() {
                    return Err(AuthError::invalid_request("credentials_in_several_places"));
                }
                found = Some(token);
            }
            Ok(())
        };
        if self.header {
            take(authorization_bearer(&parts.headers)?)?;
        }
        if let Some(name) = &self.cookie {
            take(cookie(&parts.headers, name)?)?;
        }
        if let Some(name) = &self.query {
            take(query_parameter(parts.uri.query().unwrap_or(""), name)?)?;
        }
        Ok(found)
    }
}

/// The value of cookie `name`, across all `Cookie` headers.
///
/// # Errors
///
/// `invalid_request` when the cookie appears twice or is empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k != name {
                continue;
            }
            let v = v.trim_matches('"');
            if found.is_some() {
                return Err(AuthError::invalid_request("duplicate_cookie"));
            }
            if v.is_empty() {
                return Err(AuthError::invalid_request("empty_cookie"));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

fn query_parameter<'a>(query: &'a str, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != name {
            continue;
        }
        if found.is_some() {
            return Err(AuthError::invalid_request("duplicate_query_parameter"));
        }
        if v.is_empty() {
            return Err(AuthError::invalid_request("empty_query_parameter"));
        }
        found = Some(v);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthErrorKind;

    fn parts(headers: &[(&str, &str)], uri: &str) -> Parts {
        let mut req = http::Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let p = parts(&[("authorization", &format!("{scheme} t.o.k"))], "/");
            assert_eq!(authorization_bearer(&p.headers).unwrap(), Some("t.o.k"));
        }
    }

    #[test]
    fn visible_ascii_agrees_with_to_str_on_every_byte() {
        for b in 0..=255u8 {
            for at in [0usize, 7, 8, 15, 40] {
                let mut bytes = b"Bearer abcdefghijklmnopqrstuvwxyz0123456789.-_".to_vec();
                bytes[at] = b;
                let Ok(value) = http::HeaderValue::from_bytes(&bytes) else {
                    continue;
                };
                assert_eq!(
                    visible_ascii(value.as_bytes()).map(|(text, _)| text),
                    value.to_str().ok(),
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn other_scheme_is_not_ours() {
        let p = parts(&[("authorization", "Basic dXNlcjpwYXNz")], "/");
        assert_eq!(authorization_bearer(&p.headers).unwrap(), None);
    }

    #[test]
    fn two_authorization_headers_are_invalid_request() {
        let p = parts(
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            "/",
        );
        let err = authorization_bearer(&p.headers).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidRequest);
    }

    #[test]
    fn empty_bearer_is_invalid_request() {
        for value in ["Bearer", "Bearer ", "Bearer    "] {
            let p = parts(&[("authorization", value)], "/");
            assert_eq!(
                authorization_bearer(&p.headers).unwrap_err().kind(),
                AuthErrorKind::InvalidRequest,
                "{value:?}"
            );
        }
    }

    #[test]
    fn spaces_around_the_token_are_trimmed_and_inside_it_refused() {
        let many = " ".repeat(300);
        let cases: [(String, Result<Option<&str>, &str>); 7] = [
            ("Bearer a.b.c".into(), Ok(Some("a.b.c"))),
            ("Bearer  a.b.c".into(), Ok(Some("a.b.c"))),
            ("Bearer a.b.c ".into(), Ok(Some("a.b.c"))),
            (format!("Bearer {many}a.b.c{many}"), Ok(Some("a.b.c"))),
            ("Bearer a.b c".into(), Err("malformed_bearer_token")),
            (format!("Bearer a{many}c"), Err("malformed_bearer_token")),
            ("Basic a b".into(), Ok(None)),
        ];
        for (value, want) in cases {
            let p = parts(&[("authorization", &value)], "/");
            let got = authorization_bearer(&p.headers).map_err(|e| e.reason());
            assert_eq!(got, want, "{value:?}");
        }
    }

    #[test]
    fn query_is_ignored_unless_enabled() {
        let p = parts(&[], "/?access_token=abc");
        assert_eq!(TokenSources::default().find(&p).unwrap(), None);
        let sources = TokenSources::default().danger_with_query_parameter("access_token");
        assert_eq!(sources.find(&p).unwrap(), Some("abc"));
    }

    #[test]
    fn token_in_two_places_is_invalid_request() {
        let p = parts(&[("authorization", "Bearer a"), ("cookie", "at=b")], "/");
        let err = TokenSources::default()
            .with_cookie("at")
            .find(&p)
            .unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidRequest);
    }

    #[test]
    fn duplicate_cookie_is_invalid_request() {
        let p = parts(&[("cookie", "at=a"), ("cookie", "at=b")], "/");
        assert!(cookie(&p.headers, "at").is_err());
    }
}
