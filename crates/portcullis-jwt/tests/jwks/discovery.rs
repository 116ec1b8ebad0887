//! Discovery: OpenID configuration, RFC 8414 metadata, and what fails.

use super::*;

#[tokio::test]
async fn discovers_openid_configuration_of_an_issuer_with_a_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("/realms/main", jwks(&[&k1])).await;
    let keys = RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    assert_eq!(keys.jwks_url().unwrap(), p.url("/jwks"));
    assert_eq!(p.oidc_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 0);
    let jwt = authenticator([keys]);
    assert_eq!(
        principal(&jwt, &k1.token(&p.issuer)).await.subject(),
        "alice"
    );
    assert_eq!(status(&jwt, &k1.token(&p.issuer)).await, StatusCode::OK);
}

#[tokio::test]
async fn falls_back_to_rfc8414_with_the_well_known_segment_before_the_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("/tenant/a", jwks(&[&k1])).await;
    p.set(|s| s.oidc = false);
    let keys = RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    // Served only at /.well-known/oauth-authorization-server/tenant/a.
    assert_eq!(p.oidc_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 1);
    let jwt = authenticator([keys]);
    assert!(check(&jwt, &k1.token(&p.issuer)).await.unwrap().is_some());
}

#[tokio::test]
async fn falls_back_to_rfc8414_for_an_issuer_without_a_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.oidc = false);
    RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_metadata_at_all_says_so_and_points_to_the_jwks_url_constructor() {
    let p = Provider::start("/x", jwks(&[&Signer::new("k")])).await;
    p.set(|s| {
        s.oidc = false;
        s.oauth = false;
    });
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::NoDiscoveryDocument);
    assert_eq!(e.status(), Some(404));
    assert_eq!(p.hits(), 0);
    let oidc = p.url("/x/.well-known/openid-configuration");
    let oauth = p.url("/.well-known/oauth-authorization-server/x");
    assert_eq!(
        e.to_string(),
        format!(
            "no OpenID discovery document found at {oidc} (404 Not Found), nor RFC 8414 \
             metadata at {oauth}; if the issuer publishes only a JWK Set, give its URL \
             with RemoteKeys::from_jwks_url (or RemoteKeysBuilder::jwks_url)"
        )
    );

    // Which is what then works.
    let keys = RemoteKeys::from_jwks_url(p.issuer.clone(), p.url("/jwks"))
        .await
        .unwrap();
    assert_eq!(keys.key_set().unwrap().len(), 1);
}

/// A server answering `/.well-known/openid-configuration` with `page` and every other
/// path with 404; its address.
async fn discovery_answers(page: (StatusCode, &'static str)) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || async move { page }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_discovery_url_serving_no_metadata_hints_at_the_jwks_url() {
    let addr = discovery_answers((StatusCode::OK, "<html>welcome</html>")).await;
    let e = RemoteKeys::discover(format!("http://{addr}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Malformed, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "http://{addr}/.well-known/openid-configuration: not a metadata document (not \
             a JSON object, or a member repeats); if the issuer publishes only a JWK Set, \
             give its URL with RemoteKeys::from_jwks_url (or RemoteKeysBuilder::jwks_url)"
        )
    );

    // A failing provider is not one without metadata: no hint.
    let addr = discovery_answers((StatusCode::INTERNAL_SERVER_ERROR, "")).await;
    let e = RemoteKeys::discover(format!("http://{addr}"))
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.status()), (JwksErrorKind::Status, Some(500)));
    assert_eq!(
        e.to_string(),
        format!(
            "http://{addr}/.well-known/openid-configuration: answered 500 Internal Server \
             Error, not 200 OK"
        )
    );
}

#[tokio::test]
async fn issuer_mismatch_is_refused() {
    let p = Provider::start("/realms/main", jwks(&[&Signer::new("k")])).await;
    // A trailing slash makes another issuer.
    let other = format!("{}/", p.issuer);
    p.set(|s| s.metadata_issuer = Some(other));
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::IssuerMismatch, "{e}");
    assert_eq!(
        p.hits(),
        0,
        "jwks_uri of a mismatched document is never fetched"
    );
}

#[tokio::test]
async fn discovered_plain_http_jwks_uri_off_loopback_is_refused_without_connecting() {
    let p = Provider::start("", jwks(&[&Signer::new("k")])).await;
    p.set(|s| s.jwks_uri = Some("http://jwks.example.com/keys".into()));
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::InsecureUrl);
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_before_any_request() {
    for builder in [
        RemoteKeys::builder("http://id.example.com"),
        RemoteKeys::builder("https://id.example.com").jwks_url("http://id.example.com/jwks"),
        RemoteKeys::builder("http://10.1.2.3/realm"),
    ] {
        assert_eq!(
            builder.start_lazy().unwrap_err().kind(),
            JwksErrorKind::InsecureUrl
        );
    }
    assert_eq!(
        RemoteKeys::builder("https://id.example.com/?tenant=a")
            .start_lazy()
            .unwrap_err()
            .kind(),
        JwksErrorKind::InvalidUrl
    );
}
