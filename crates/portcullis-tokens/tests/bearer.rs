//! Revocation honoured by the JWT bearer layer, including on verified-token cache hits,
//! with keys taken from the issuer's JWK Set.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, routing::get};
use http::{Request, StatusCode};
use portcullis_core::Principal;
use portcullis_jwt::{JwtAuthenticator, Key, KeySet};
use portcullis_tokens::{
    Grant, ManualClock, MemoryRefreshStore, MemoryRevocation, RefreshTokens, SigningAlgorithm,
    SigningKey, TokenIssuer, TokenService,
};
use tower::ServiceExt;

const ISS: &str = "https://auth.example.com";
const AUD: &str = "https://api.example.com";

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
        .keys(keys_from_jwks(&issuer))
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
        .route_layer(jwt.clone().into_layer());
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
    let pair = f
        .service
        .login(
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
    let pair = f.service.login(&Grant::new("alice", "web")).await.unwrap();
    let other = f
        .service
        .login(&Grant::new("alice", "phone"))
        .await
        .unwrap();
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, other.access.as_str()).await, StatusCode::OK);
    let cached = f.jwt.cached_tokens();
    assert!(cached >= 2, "both tokens are in the verified-token cache");

    // Logout as a handler would: with the principal the layer produced.
    let principal = match f.jwt.verify(pair.access.as_str()) {
        portcullis_core::Authentication::Ready(Ok(Some(p))) => p,
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
    let web = f.service.login(&Grant::new("alice", "web")).await.unwrap();
    let phone = f
        .service
        .login(&Grant::new("alice", "phone"))
        .await
        .unwrap();
    let bob = f.service.login(&Grant::new("bob", "web")).await.unwrap();
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
    let again = f.service.login(&Grant::new("alice", "web")).await.unwrap();
    assert_eq!(status(&f.app, again.access.as_str()).await, StatusCode::OK);
}

#[tokio::test]
async fn refreshed_access_token_works_and_rotated_key_keeps_old_tokens_valid() {
    let f = fixture();
    let pair = f.service.login(&Grant::new("alice", "web")).await.unwrap();
    f.service
        .issuer()
        .rotate(SigningKey::generate(SigningAlgorithm::Es256).unwrap());
    // The resource server picks up the new JWK Set.
    f.jwt
        .set_keys(KeySet::new(keys_from_jwks(f.service.issuer())).unwrap());

    let next = f
        .service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await
        .unwrap();
    assert_ne!(next.access.kid(), pair.access.kid());
    assert_eq!(status(&f.app, next.access.as_str()).await, StatusCode::OK);
    assert_eq!(status(&f.app, pair.access.as_str()).await, StatusCode::OK);
}
