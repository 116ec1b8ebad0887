//! The `htu` comparison: the request's URL as the client saw it, without query and
//! fragment, after the syntax-based normalization of
//! [RFC 3986 §6.2.2](https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2) and the
//! scheme-based one of §6.2.3 that RFC 9449 §4.3 asks for.

use std::fmt::Write as _;

use http::{header, request::Parts};

use crate::error::{ConfigError, ConfigErrorKind};

/// Where the service is reached from outside: scheme, host, port and a path prefix a
/// proxy strips before the request arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicUrl {
    /// `scheme://host[:port]`, normalized.
    origin: String,
    /// The path prefix, normalized, without a trailing `/` (empty for none).
    prefix: String,
}

impl PublicUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::new(ConfigErrorKind::PublicUrl);
        let parsed = normalize(url).ok_or_else(bad)?;
        if url.contains(['?', '#']) {
            return Err(bad());
        }
        let prefix = parsed.path.trim_end_matches('/').to_owned();
        Ok(Self {
            origin: parsed.origin,
            prefix,
        })
    }

    /// The URL a request to `path` was sent to.
    fn join(&self, path: &str) -> String {
        format!("{}{}{}", self.origin, self.prefix, path)
    }
}

/// A URL reduced to what `htu` compares: origin and path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Normalized {
    origin: String,
    path: String,
}

/// The URL a request was sent to, normalized: under `public` when configured, else
/// from the request's own URI or its one `Host` header, `http` unless the URI names
/// a scheme. `None` when the request names no host.
pub(crate) fn request_url(parts: &Parts, public: Option<&PublicUrl>) -> Option<Normalized> {
    let path = parts.uri.path();
    let url = match public {
        Some(public) => public.join(path),
        None => {
            let scheme = parts.uri.scheme_str().unwrap_or("http");
            let authority = match parts.uri.authority() {
                Some(authority) => authority.as_str(),
                None => {
                    let mut hosts = parts.headers.get_all(header::HOST).iter();
                    let host = hosts.next()?;
                    if hosts.next().is_some() {
                        return None;
                    }
                    host.to_str().ok()?
                }
            };
            format!("{scheme}://{authority}{path}")
        }
    };
    normalize(&url)
}

/// `htu` (or any absolute http(s) URL) normalized, query and fragment dropped. `None`
/// for anything else, including URLs with user information.
pub(crate) fn normalize(url: &str) -> Option<Normalized> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // A port follows the last `:` outside an IPv6 literal's brackets.
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => (&authority[..at], &authority[at + 1..]),
        _ => (authority, ""),
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = match port.trim_start_matches('0') {
        "" if !port.is_empty() => "0",
        trimmed => trimmed,
    };
    let mut origin = format!("{scheme}://{}", host.to_ascii_lowercase());
    if !port.is_empty() && port != default_port {
        let _ = write!(origin, ":{port}");
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        normalize_percent(path)?
    };
    Some(Normalized { origin, path })
}

/// Percent-encodings with upper-case hex digits, those of unreserved characters
/// decoded (RFC 3986 §6.2.2.1 and §6.2.2.2).
fn normalize_percent(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let decoded = u8::from_str_radix(hex, 16).ok()?;
            if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
                out.push(char::from(decoded));
            } else {
                let _ = write!(out, "%{decoded:02X}");
            }
            i += 3;
        } else if b.is_ascii() {
            out.push(char::from(b));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_normalize_alike() {
        let want = normalize("https://api.example.com/a/b~c").unwrap();
        for same in [
            "HTTPS://API.Example.COM/a/b~c",
            "https://api.example.com:443/a/b~c",
            "https://api.example.com/a/b%7Ec",
            "https://api.example.com/a/b~c?x=1",
            "https://api.example.com/a/b~c#frag",
        ] {
            assert_eq!(normalize(same).as_ref(), Some(&want), "{same}");
        }
        assert_eq!(
            normalize("http://h").unwrap(),
            normalize("http://h:80/").unwrap()
        );
    }

    #[test]
    fn other_host_port_path_or_scheme_differ() {
        let want = normalize("https://api.example.com/a").unwrap();
        for other in [
            "https://evil.example.com/a",
            "https://api.example.com:8443/a",
            "https://api.example.com/b",
            "https://api.example.com/a/",
            "http://api.example.com/a",
            "https://api.example.com/A",
        ] {
            assert_ne!(normalize(other).as_ref(), Some(&want), "{other}");
        }
    }

    #[test]
    fn not_http_urls_and_user_info_are_refused() {
        for bad in [
            "ftp://h/",
            "https://",
            "/relative",
            "https://user@h/",
            "https://h:x/",
            "https://h/%zz",
            "https://h/%4",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_literals_keep_their_colons() {
        assert_eq!(
            normalize("http://[::1]:8080/x").unwrap(),
            Normalized {
                origin: "http://[::1]:8080".into(),
                path: "/x".into()
            }
        );
        assert_eq!(
            normalize("http://[::1]/x").unwrap().origin,
            "http://[::1]".to_owned()
        );
    }

    #[test]
    fn the_public_url_prefixes_the_request_path() {
        let public = PublicUrl::parse("https://Api.Example.com/v1/").unwrap();
        let parts = http::Request::get("/me?x=1")
            .header("host", "internal:3000")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            request_url(&parts, Some(&public)),
            normalize("https://api.example.com/v1/me")
        );
        assert_eq!(
            request_url(&parts, None),
            normalize("http://internal:3000/me")
        );
        assert!(PublicUrl::parse("https://h/?q").is_err());
        assert!(PublicUrl::parse("h/v1").is_err());
    }
}
