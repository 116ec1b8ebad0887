//! Provider metadata: OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.
//!
//! For an issuer `https://id.example/realms/a` the documents tried are, in order:
//!
//! 1. `https://id.example/realms/a/.well-known/openid-configuration` (OIDC: the suffix
//!    is appended to the issuer, a terminating `/` removed first);
//! 2. `https://id.example/.well-known/oauth-authorization-server/realms/a` (RFC 8414:
//!    the well-known segment goes between the host and the path).
//!
//! The second is tried only when the first answers with an HTTP error status or a
//! document that is not metadata; an unreachable or slow provider fails at once. When
//! both answer `404 Not Found`, the issuer publishes no metadata
//! ([`JwksErrorKind::NoDiscoveryDocument`]), and the error says to give the JWKS URL
//! instead.
//! The document's `issuer` must equal the configured issuer exactly (OIDC Discovery
//! §4.3, RFC 8414 §3.3), and `jwks_uri` is taken from that document and nowhere else.

use reqwest::Url;
use serde_json::Value;

use super::{
    error::{JwksError, JwksErrorKind, shown_url},
    http::{Fetcher, check_url},
};
use crate::json;

const OIDC: &str = "/.well-known/openid-configuration";
const OAUTH: &str = "/.well-known/oauth-authorization-server";

/// Checks an issuer: a URL we may fetch from, without query or fragment (RFC 8414 §2).
pub(crate) fn check_issuer(issuer: &str, allow_http: bool) -> Result<Url, JwksError> {
    let url = check_url(issuer, allow_http)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(JwksError::new(
            JwksErrorKind::InvalidUrl,
            "an issuer has no query or fragment",
        )
        .with_url(issuer));
    }
    Ok(url)
}

/// The two metadata URLs for `issuer`, in the order they are tried.
pub(crate) fn metadata_urls(issuer: &str, parsed: &Url) -> Result<[Url; 2], JwksError> {
    let oidc = format!("{}{OIDC}", issuer.trim_end_matches('/'));
    let oidc = Url::parse(&oidc).map_err(|e| {
        JwksError::new(
            JwksErrorKind::InvalidUrl,
            "the discovery URL made from the issuer does not parse",
        )
        .with_url(issuer)
        .with_source(e)
    })?;
    let mut oauth = parsed.clone();
    let path = parsed.path().trim_end_matches('/');
    oauth.set_path(&format!("{OAUTH}{path}"));
    Ok([oidc, oauth])
}

/// What to do about an issuer without metadata.
const USE_JWKS_URL: &str = "if the issuer publishes only a JWK Set, give its URL with \
                            RemoteKeys::from_jwks_url (or RemoteKeysBuilder::jwks_url)";

/// Fetches the provider's metadata and returns its checked `jwks_uri`.
pub(crate) async fn discover(fetcher: &Fetcher, issuer: &str) -> Result<Url, JwksError> {
    let parsed = check_issuer(issuer, fetcher.allow_http())?;
    let [oidc, oauth] = metadata_urls(issuer, &parsed)?;
    let first = match fetch(fetcher, issuer, &oidc).await {
        Ok(url) => return Ok(url),
        Err(e) => e,
    };
    if !matches!(
        first.kind(),
        JwksErrorKind::Status | JwksErrorKind::Malformed
    ) {
        return Err(first);
    }
    tracing::debug!(
        target: "portcullis::jwks",
        issuer,
        error = %first,
        "no OpenID configuration; trying RFC 8414 metadata"
    );
    let second = match fetch(fetcher, issuer, &oauth).await {
        Ok(url) => return Ok(url),
        Err(second) => second,
    };
    let not_found = |e: &JwksError| e.kind() == JwksErrorKind::Status && e.status() == Some(404);
    // The first document is not metadata (and the second does not exist): perhaps
    // the issuer has none. A server error says nothing of the kind.
    let not_metadata = first.kind() == JwksErrorKind::Malformed
        || first.status().is_some_and(|s| (400..500).contains(&s));
    Err(match (not_found(&first), not_found(&second)) {
        (true, true) => no_metadata(&oidc, &oauth),
        (false, true) if not_metadata => first.with_hint(USE_JWKS_URL),
        (false, true) => first,
        _ => second,
    })
}

/// Both metadata URLs answered 404.
fn no_metadata(oidc: &Url, oauth: &Url) -> JwksError {
    JwksError::new(
        JwksErrorKind::NoDiscoveryDocument,
        format!(
            "no OpenID discovery document found at {} (404 Not Found), nor RFC 8414 \
             metadata at {}",
            shown_url(oidc.as_str()),
            shown_url(oauth.as_str()),
        ),
    )
    .with_status(404)
    .with_hint(USE_JWKS_URL)
}

async fn fetch(fetcher: &Fetcher, issuer: &str, url: &Url) -> Result<Url, JwksError> {
    let fetched = fetcher.get(url).await?;
    let at = |e: JwksError| e.with_url(url.as_str());
    let doc = json::parse_object(&fetched.body).map_err(|_| {
        at(JwksError::new(
            JwksErrorKind::Malformed,
            "not a metadata document (not a JSON object, or a member repeats)",
        ))
    })?;
    match doc.get("issuer") {
        Some(Value::String(found)) if found == issuer => {}
        Some(Value::String(found)) => {
            return Err(at(JwksError::new(
                JwksErrorKind::IssuerMismatch,
                format!("the metadata names the issuer {found:?}, not {issuer:?}"),
            )));
        }
        _ => {
            return Err(at(JwksError::new(
                JwksErrorKind::Malformed,
                "the metadata names no issuer",
            )));
        }
    }
    match doc.get("jwks_uri") {
        Some(Value::String(jwks)) => check_url(jwks, fetcher.allow_http()),
        _ => Err(at(JwksError::new(
            JwksErrorKind::NoJwksUri,
            "the metadata has no jwks_uri",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> [String; 2] {
        let parsed = check_issuer(issuer, false).unwrap();
        metadata_urls(issuer, &parsed).unwrap().map(String::from)
    }

    #[test]
    fn well_known_urls_for_issuers_with_and_without_path() {
        assert_eq!(
            urls("https://id.example"),
            [
                "https://id.example/.well-known/openid-configuration",
                "https://id.example/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            urls("https://id.example/"),
            [
                "https://id.example/.well-known/openid-configuration",
                "https://id.example/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            urls("https://id.example/realms/a/"),
            [
                "https://id.example/realms/a/.well-known/openid-configuration",
                "https://id.example/.well-known/oauth-authorization-server/realms/a",
            ]
        );
        assert_eq!(
            urls("https://id.example:8443/tenant"),
            [
                "https://id.example:8443/tenant/.well-known/openid-configuration",
                "https://id.example:8443/.well-known/oauth-authorization-server/tenant",
            ]
        );
    }

    #[test]
    fn issuer_with_query_or_fragment_is_refused() {
        for bad in ["https://id.example/?a=b", "https://id.example/#x"] {
            assert_eq!(
                check_issuer(bad, false).unwrap_err().kind(),
                JwksErrorKind::InvalidUrl
            );
        }
    }
}
