//! The issuer's tokens through the JWT bearer layer: keys handed over directly or read
//! from the JWK Set, and revocation honoured, including on verified-token cache hits.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, routing::get};
use http::{Request, StatusCode};
use portcullis_core::{AuthLayer, MaybeReady, Principal};
use portcullis_jwt::{JwtAuthenticator, Key, KeySet};
use portcullis_tokens::{
    Error, Grant, ManualClock, MemoryRefreshStore, MemoryRevocation, RefreshStore, RefreshTokens,
    RevocationStore, SigningAlgorithm, SigningKey, TokenIssuer, TokenPair, TokenService,
};
use tower::ServiceExt;

/// A login as an endpoint does it: the stamp first, then (after the password) the pair.
async fn login<S: RefreshStore, R: RevocationStore>(
    service: &TokenService<S, R>,
    grant: &Grant,
) -> Result<TokenPair, Error> {
    let stamp = service.session_stamp(grant.subject()).await?;
    service.login(grant, stamp).await
}

const ISS: &str = "https://auth.example.com";
const AUD: &str = "https://api.example.com";

/// The keys a remote verifier reads from the issuer's JWK Set.
fn keys_from_jwks(issuer: &TokenIssuer) -> Vec<Key> {
    issuer.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| Key::from_jwk_value(jwk, None).unwrap())
        .collect()
}

struct Fixture {
    service: TokenService<MemoryRefreshStore>,
    jwt: JwtAuthenticator,
    app: Router,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let clock = ManualClock::starting_now();
    let issuer = TokenIssuer::builder(
        ISS,
        AUD,
        SigningKey::generate(SigningAlgorithm::EdDsa).unwrap(),
    )
    .clock(clock.clone())
    .build();
    let revocation = MemoryRevocation::with_clock(clock.clone());
    let jwt = JwtAuthenticator::builder()
        .keys(issuer.verification_keys())
        .issuer(ISS)
        .audience(AUD)
        .require_access_token_typ()
        .revocation(Arc::new(revocation.clone()))
        .build()
        .unwrap();
    let refresh = RefreshTokens::builder(MemoryRefreshStore::new())
        .clock(clock.clone())
        .build();
    let service = TokenService::new(issuer, refresh, revocation).with_clock(clock.clone());
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move {
                format!(
                    "{} {}",
                    p.subject(),
                    p.scopes().collect::<Vec<_>>().join(",")
                )
            }),
        )
        .route_layer(AuthLayer::new(jwt.clone()));
    Fixture {
        service,
        jwt,
        app,
        clock,
    }
}

async fn status(app: &Router, token: &str) -> StatusCode {
    let request = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn issued_token_is_accepted_by_the_bearer_layer() {
    let f = fixture();
    let pair = login(
        &f.service,
        &Grant::new("alice", "web")
            .roles(["user"])
            .scopes(["read", "write"]),
    )
    .await
    .unwrap();
    let request = Request::get("/me")
        .header("authorization", format!("Bearer {}", pair.access.as_str()))
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"alice read,write");
}

#[tokio::test]
async fn revoked_jti_is_refused_even_though_cached() {
    let f = fixture();
    let pair = login(&f.service, &Grant::new("alice", "web"))
        .await
        .unwrap();
    let other = login(&f.service, &Grant::new("alice", "phone"))
        .await
        .unwrap();
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, other.access.as_str()).await, StatusCode::OK);
    let cached = f.jwt.cached_tokens();
    assert!(cached >= 2, "both tokens are in the verified-token cache");

    // Logout as a handler would: with the principal the layer produced.
    let principal = match f.jwt.verify(pair.access.as_str()) {
        MaybeReady::Ready(Ok(Some(p))) => p,
        other => panic!("{other:?}"),
    };
    f.service
        .logout(Some(&principal), Some(pair.refresh.token.as_str()))
        .await
        .unwrap();

    assert_eq!(
        f.jwt.cached_tokens(),
        cached,
        "still cached, refused anyway"
    );
    assert_eq!(
        status(&f.app, pair.access.as_str()).await,
        StatusCode::UNAUTHORIZED
    );
    // The other session is untouched.
    assert_eq!(status(&f.app, other.access.as_str()).await, StatusCode::OK);
    // And the logged-out refresh family is dead.
    let err = f
        .service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), portcullis_tokens::ErrorKind::Revoked);
}

#[tokio::test]
async fn logout_everywhere_cuts_off_every_earlier_token_including_cached_ones() {
    let f = fixture();
    let web = login(&f.service, &Grant::new("alice", "web"))
        .await
        .unwrap();
    let phone = login(&f.service, &Grant::new("alice", "phone"))
        .await
        .unwrap();
    let bob = login(&f.service, &Grant::new("bob", "web")).await.unwrap();
    for token in [&web, &phone, &bob] {
        assert_eq!(status(&f.app, token.access.as_str()).await, StatusCode::OK);
    }

    f.service.logout_everywhere("alice").await.unwrap();

    assert_eq!(
        status(&f.app, web.access.as_str()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&f.app, phone.access.as_str()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&f.app, bob.access.as_str()).await, StatusCode::OK);
    for pair in [&web, &phone] {
        let client = pair.refresh.record.client_id.clone();
        assert!(
            f.service
                .refresh(pair.refresh.token.as_str(), &client, |s| Grant::new(
                    s,
                    client.as_str()
                ))
                .await
                .is_err()
        );
    }

    // A login in a later second works again.
    f.clock.advance(Duration::from_secs(1));
    let again = login(&f.service, &Grant::new("alice", "web"))
        .await
        .unwrap();
    assert_eq!(status(&f.app, again.access.as_str()).await, StatusCode::OK);
}

#[tokio::test]
async fn refreshed_access_token_works_and_rotated_key_keeps_old_tokens_valid() {
    let f = fixture();
    let pair = login(&f.service, &Grant::new("alice", "web"))
        .await
        .unwrap();
    f.service
        .issuer()
        .rotate(SigningKey::generate(SigningAlgorithm::Es256).unwrap());
    // The resource server picks up the new keys.
    f.jwt
        .set_keys(KeySet::new(f.service.issuer().verification_keys()).unwrap());

    let next = f
        .service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await
        .unwrap();
    assert_ne!(next.access.kid(), pair.access.kid());
    assert_eq!(status(&f.app, next.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
}

#[tokio::test]
async fn jwks_keys_verify_like_the_keys_handed_over() {
    for alg in [SigningAlgorithm::EdDsa, SigningAlgorithm::Es256] {
        let issuer = TokenIssuer::builder(ISS, AUD, SigningKey::generate(alg).unwrap()).build();
        issuer.rotate(SigningKey::generate(alg).unwrap());
        let direct = issuer.verification_keys();
        let published = keys_from_jwks(&issuer);
        let describe = |keys: &[Key]| {
            keys.iter()
                .map(|k| (k.kid().map(str::to_owned), k.algorithm()))
                .collect::<Vec<_>>()
        };
        assert_eq!(describe(&direct), describe(&published), "{alg}");

        let token = issuer.issue(&Grant::new("alice", "web")).unwrap();
        for keys in [direct, published] {
            let jwt = JwtAuthenticator::builder()
                .keys(keys)
                .issuer(ISS)
                .audience(AUD)
                .require_access_token_typ()
                .build()
                .unwrap();
            let MaybeReady::Ready(Ok(Some(principal))) = jwt.verify(token.as_str()) else {
                panic!("{alg}: the token does not verify");
            };
            assert_eq!(principal.subject(), "alice");
        }
    }
}

#[tokio::test]
async fn hmac_issuer_hands_its_secret_to_a_verifier_in_the_same_process() {
    let issuer = TokenIssuer::builder(
        ISS,
        AUD,
        SigningKey::generate(SigningAlgorithm::Hs256).unwrap(),
    )
    .build();
    assert!(keys_from_jwks(&issuer).is_empty(), "never published");
    let keys = issuer.verification_keys();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].is_symmetric());
    let jwt = JwtAuthenticator::builder()
        .keys(keys)
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .require_access_token_typ()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.subject().to_owned() }),
        )
        .route_layer(AuthLayer::new(jwt));
    let token = issuer.issue(&Grant::new("alice", "web")).unwrap();
    assert_eq!(status(&app, token.as_str()).await, StatusCode::OK);
    let forged = format!("{}x", &token.as_str()[..token.as_str().len() - 1]);
    assert_eq!(status(&app, &forged).await, StatusCode::UNAUTHORIZED);
}
