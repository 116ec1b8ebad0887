//! The routers every comparison serves: the same hello-world route, bare, behind a
//! Portcullis layer, or behind a peer crate (feature `peers`).

use axum::{Router, routing::get};
use portcullis_core::AuthLayer;
use portcullis_jwt::JwtAuthenticator;

use crate::keys::{AUDIENCE, Alg, ISSUER};

/// The body every route answers.
pub const HELLO: &str = "Hello, World!";

/// The bare route.
pub fn hello() -> Router {
    Router::new().route("/", get(|| async { HELLO }))
}

/// The JWT authenticator for `alg`'s bench key: the default configuration (verified
/// tokens cached), or with the cache off.
pub fn jwt(alg: Alg, cache: bool) -> JwtAuthenticator {
    let builder = JwtAuthenticator::builder()
        .key(alg.verifying_key())
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let builder = if cache {
        builder
    } else {
        builder.without_cache()
    };
    builder.build().expect("configuration")
}

/// The route behind the JWT layer, as the README puts it (`route_layer`).
pub fn portcullis(alg: Alg, cache: bool) -> Router {
    hello().route_layer(AuthLayer::new(jwt(alg, cache)))
}

/// The peer crates, each in the configuration its documentation shows, on the same
/// route and tokens.
#[cfg(feature = "peers")]
pub mod peers {
    use std::sync::Arc;

    use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
    use jsonwebtoken10::{DecodingKey, Validation};
    use jwt_authorizer::{IntoLayer, JwtAuthorizer};

    use super::*;
    use crate::keys::{BenchClaims, SECRET};

    /// axum-jwt-auth: its `Claims` extractor in the handler, the decoder in the state.
    pub fn axum_jwt_auth(alg: Alg) -> Router {
        let (key, alg10) = match alg {
            Alg::Hs256 => (
                DecodingKey::from_secret(SECRET),
                jsonwebtoken10::Algorithm::HS256,
            ),
            Alg::Es256 => (
                DecodingKey::from_ec_pem(&alg.public_pem().unwrap()).unwrap(),
                jsonwebtoken10::Algorithm::ES256,
            ),
            Alg::EdDsa => (
                DecodingKey::from_ed_pem(&alg.public_pem().unwrap()).unwrap(),
                jsonwebtoken10::Algorithm::EdDSA,
            ),
            Alg::Rs256 => (
                DecodingKey::from_rsa_pem(&alg.public_pem().unwrap()).unwrap(),
                jsonwebtoken10::Algorithm::RS256,
            ),
        };
        let mut validation = Validation::new(alg10);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let decoder = LocalDecoder::builder()
            .keys(vec![key])
            .validation(validation)
            .build()
            .expect("axum-jwt-auth decoder");
        let decoder: Decoder<BenchClaims> = Arc::new(decoder);
        Router::new()
            .route(
                "/",
                get(|claims: Claims<BenchClaims>| async move {
                    std::hint::black_box(claims);
                    HELLO
                }),
            )
            .with_state(decoder)
    }

    /// The bare route on axum 0.7, which jwt-authorizer 0.15 is built on.
    pub fn axum07_hello() -> axum07::Router {
        axum07::Router::new().route("/", axum07::routing::get(|| async { HELLO }))
    }

    /// jwt-authorizer: its layer on the route (axum 0.7).
    pub async fn jwt_authorizer(alg: Alg) -> axum07::Router {
        let pem = alg.public_pem_text();
        let builder = match alg {
            Alg::Hs256 => JwtAuthorizer::<BenchClaims>::from_secret(
                std::str::from_utf8(SECRET).expect("ASCII secret"),
            ),
            Alg::Es256 => JwtAuthorizer::from_ec_pem_text(pem.as_deref().unwrap()),
            Alg::EdDsa => JwtAuthorizer::from_ed_pem_text(pem.as_deref().unwrap()),
            Alg::Rs256 => JwtAuthorizer::from_rsa_pem_text(pem.as_deref().unwrap()),
        };
        let authorizer = builder
            .validation(
                jwt_authorizer::Validation::new()
                    .iss(&[ISSUER])
                    .aud(&[AUDIENCE]),
            )
            .build()
            .await
            .expect("jwt-authorizer");
        axum07_hello().route_layer(authorizer.into_layer())
    }
}
