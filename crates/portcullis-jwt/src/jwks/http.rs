//! The HTTP side: URL rules, the client (timeouts, redirects, size cap) and
//! `Cache-Control`.
//!
//! The client is `reqwest` with rustls on `aws-lc-rs` (the crypto backend this crate
//! already compiles for signatures), HTTP/1.1 only, no proxy from the environment,
//! and the platform's root certificates through `rustls-platform-verifier` (on Linux
//! the system store, read at run time; nothing is downloaded at build time). No
//! OpenSSL anywhere.

use std::{net::IpAddr, time::Duration};

use http::{HeaderMap, StatusCode, header};
use reqwest::{Url, redirect};

use super::error::{JwksError, JwksErrorKind};

/// The most redirects followed (same origin only).
const MAX_REDIRECTS: usize = 5;

/// The HTTP options a [`RemoteKeys`](super::RemoteKeys) fetches with.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_response_size: usize,
    pub(crate) allow_http: bool,
}

/// Whether `url`'s host is loopback: `localhost`, `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses and checks a URL we are about to fetch: `https`, or `http` to a loopback
/// host (or anywhere with `allow_http`); a host; no user info.
pub(crate) fn check_url(raw: &str, allow_http: bool) -> Result<Url, JwksError> {
    let url = Url::parse(raw).map_err(|e| {
        JwksError::new(JwksErrorKind::InvalidUrl, "does not parse as a URL")
            .with_url(raw)
            .with_source(e)
    })?;
    check_parsed(&url, allow_http)?;
    Ok(url)
}

fn check_parsed(url: &Url, allow_http: bool) -> Result<(), JwksError> {
    let invalid =
        |detail| Err(JwksError::new(JwksErrorKind::InvalidUrl, detail).with_url(url.as_str()));
    if url.host().is_none() {
        return invalid("the URL has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("the URL carries user info (a password in a URL leaks)");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => Err(JwksError::new(
            JwksErrorKind::InsecureUrl,
            "plain http goes to loopback hosts only; use https (or danger_allow_http, for local development)",
        )
        .with_url(url.as_str())),
        _ => invalid("not an https URL"),
    }
}

/// Same origin: scheme, host and port all equal. A redirect from `127.0.0.1` to
/// `localhost`, or to another port, leaves the origin.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A configured HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    max_response_size: usize,
    allow_http: bool,
}

/// A fetched JSON document and how long it may be cached (from `Cache-Control`).
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) max_age: Option<Duration>,
}

impl Fetcher {
    pub(crate) fn new(options: &HttpOptions) -> Result<Self, JwksError> {
        let allow_http = options.allow_http;
        let policy = redirect::Policy::custom(move |attempt| {
            let origin = attempt.previous().first().cloned();
            let follow = attempt.previous().len() <= MAX_REDIRECTS
                && origin.is_some_and(|o| same_origin(&o, attempt.url()))
                && check_parsed(attempt.url(), allow_http).is_ok();
            if follow {
                attempt.follow()
            } else {
                attempt.error(JwksError::new(
                    JwksErrorKind::Redirect,
                    "a redirect to another origin (or past the fifth) is not followed",
                ))
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("portcullis-jwt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                JwksError::new(
                    JwksErrorKind::Unreachable,
                    "the HTTP client could not be built",
                )
                .with_source(e)
            })?;
        Ok(Self {
            client,
            max_response_size: options.max_response_size,
            allow_http,
        })
    }

    pub(crate) fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// GETs `url`, insisting on `200 OK` and a body of at most the size cap (read
    /// chunk by chunk; reading stops as soon as the cap is passed).
    pub(crate) async fn get(&self, url: &Url) -> Result<Fetched, JwksError> {
        let at = |e: JwksError| e.with_url(url.as_str());
        let response = self
            .client
            .get(url.clone())
            .header(header::ACCEPT, "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| at(classify(e)))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(at(JwksError::new(
                JwksErrorKind::Status,
                format!("answered {status}, not 200 OK"),
            )
            .with_status(status.as_u16())));
        }
        let max_age = max_age(response.headers());
        let body = self.read_capped(response, url).await?;
        Ok(Fetched { body, max_age })
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, with HTTP Basic
    /// credentials when given, insisting on `200 OK` and a body within the size cap.
    #[cfg(feature = "introspection")]
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<&str>,
    ) -> Result<Vec<u8>, JwksError> {
        let at = |e: JwksError| e.with_url(url.as_str());
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .client
            .post(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(basic) = basic {
            let mut value = http::HeaderValue::try_from(basic).map_err(|_| {
                at(JwksError::new(
                    JwksErrorKind::InvalidUrl,
                    "the client credentials do not fit in a header",
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|e| at(classify(e)))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(at(JwksError::new(
                JwksErrorKind::Status,
                format!("answered {status}, not 200 OK"),
            )
            .with_status(status.as_u16())));
        }
        self.read_capped(response, url).await
    }

    /// Reads a body chunk by chunk, stopping as soon as it passes the size cap.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        url: &Url,
    ) -> Result<Vec<u8>, JwksError> {
        let at = |e: JwksError| e.with_url(url.as_str());
        let too_large = || {
            at(JwksError::new(
                JwksErrorKind::TooLarge,
                format!(
                    "the document is larger than the {}-byte cap",
                    self.max_response_size
                ),
            ))
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_size as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| at(classify(e)))? {
            if body.len() + chunk.len() > self.max_response_size {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn classify(e: reqwest::Error) -> JwksError {
    let kind = if e.is_timeout() {
        JwksErrorKind::Timeout
    } else if e.is_redirect() {
        JwksErrorKind::Redirect
    } else {
        JwksErrorKind::Unreachable
    };
    let detail = match kind {
        JwksErrorKind::Timeout => "the provider did not answer within the timeout",
        JwksErrorKind::Redirect => "a redirect was refused",
        _ => "the provider is unreachable",
    };
    // The URL is ours to show (without its query); reqwest's message would repeat it
    // whole.
    JwksError::new(kind, detail).with_source(e.without_url())
}

/// The freshness lifetime from `Cache-Control`: `max-age=N`, or zero for `no-store`
/// and `no-cache` (the caller clamps it to its bounds). `None` when absent.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn http_is_refused_off_loopback() {
        for ok in [
            "https://id.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.5.6.7/jwks",
            "http://localhost:1/x",
            "http://[::1]:9/x",
        ] {
            check_url(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, kind) in [
            ("http://id.example.com/jwks", JwksErrorKind::InsecureUrl),
            ("http://10.0.0.1/jwks", JwksErrorKind::InsecureUrl),
            (
                "http://localhost.evil.example/jwks",
                JwksErrorKind::InsecureUrl,
            ),
            ("http://[::ffff:7f00:1]/jwks", JwksErrorKind::InsecureUrl),
            ("ftp://id.example.com/jwks", JwksErrorKind::InvalidUrl),
            ("file:///etc/passwd", JwksErrorKind::InvalidUrl),
            (
                "https://user:pw@id.example.com/jwks",
                JwksErrorKind::InvalidUrl,
            ),
            ("not a url", JwksErrorKind::InvalidUrl),
        ] {
            assert_eq!(check_url(bad, false).unwrap_err().kind(), kind, "{bad}");
        }
        check_url("http://id.example.com/jwks", true).unwrap();
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        let u = |s| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("http://127.0.0.1:80/a"),
            &u("http://127.0.0.1/b")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/a"),
            &u("http://localhost:1/a")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/a"),
            &u("http://127.0.0.1:2/a")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("http://a.example:443/")
        ));
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(3600)));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("Max-Age=\"60\", must-revalidate"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(60)));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&h), Some(Duration::ZERO));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=-5"),
        );
        assert_eq!(max_age(&h), None);
    }

    #[test]
    fn client_builds_with_the_aws_lc_provider() {
        Fetcher::new(&HttpOptions {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_response_size: 1024,
            allow_http: false,
        })
        .unwrap();
    }
}
