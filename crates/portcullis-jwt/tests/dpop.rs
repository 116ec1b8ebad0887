//! DPoP (RFC 9449): every check of §4.3 with a proof that fails only that check, the
//! downgrade to `Bearer`, the policy for unbound tokens, the cache, and the responses.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{Router, body::Body, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use http::{Request, StatusCode, request::Parts};
use http_body_util::BodyExt as _;
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis_core::{AuthError, AuthLayer, Authenticator, MaybeReady, Principal};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key, dpop::Dpop};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

#[path = "common/dpop_client.rs"]
mod dpop_client;
use dpop_client::DpopClient as Client;

const SECRET: &[u8] = b"a-dpop-test-secret-of-32-bytes!!";
const ISSUER: &str = "https://issuer.example";
const URL: &str = "https://api.example.com/me";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

/// An access token, bound to `jkt` when given.
fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": "api", "sub": "alice",
        "iat": now(), "exp": now() + 300, "jti": B64.encode(rand_bytes()),
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    signed(&claims)
}

/// `claims` as an HS256 token under the test secret.
fn signed(claims: &serde_json::Value) -> String {
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn authenticator(dpop: Dpop) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience("api")
        .dpop(dpop)
        .build()
        .unwrap()
}

fn public() -> Dpop {
    Dpop::new().public_url("https://api.example.com").unwrap()
}

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(()).unwrap().into_parts().0
}

async fn answer(jwt: &JwtAuthenticator, parts: &Parts) -> Result<Principal, AuthError> {
    match jwt.authenticate(parts) {
        MaybeReady::Ready(r) => r.map(|p| p.expect("a principal")),
        MaybeReady::Pending(f) => f.await.map(|p| p.expect("a principal")),
    }
}

/// The reason a DPoP request with `token` and `proof` is refused, or `"ok"`.
async fn reason(jwt: &JwtAuthenticator, token: &str, proof: &str) -> &'static str {
    let auth = format!("DPoP {token}");
    let p = parts("/me", &[("authorization", &auth), ("dpop", proof)]);
    match answer(jwt, &p).await {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

#[tokio::test]
async fn a_valid_proof_admits_the_bound_token_and_names_its_key() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let auth = format!("DPoP {token}");
    let p = parts(
        "/me",
        &[
            ("authorization", &auth),
            ("dpop", &client.proof("GET", URL, Some(&token))),
        ],
    );
    let principal = answer(&jwt, &p).await.unwrap();
    assert_eq!(principal.dpop_thumbprint(), Some(client.jkt().as_str()));
}

#[tokio::test]
async fn each_check_refuses_a_proof_that_fails_only_it() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    type Edit = fn(&mut Map<String, Value>, &mut Map<String, Value>);
    let cases: &[(&str, Edit)] = &[
        ("dpop_htm_mismatch", |_, c| {
            c["htm"] = json!("POST");
        }),
        ("dpop_htu_mismatch", |_, c| {
            c["htu"] = json!("https://evil.example.com/me");
        }),
        ("dpop_htu_mismatch", |_, c| {
            c["htu"] = json!("https://api.example.com:8443/me");
        }),
        ("dpop_htu_mismatch", |_, c| {
            c["htu"] = json!("https://api.example.com/admin");
        }),
        ("dpop_htu_mismatch", |_, c| {
            c["htu"] = json!("http://api.example.com/me");
        }),
        ("dpop_proof_expired", |_, c| {
            c["iat"] = json!(now() - 120);
        }),
        ("dpop_iat_in_future", |_, c| {
            c["iat"] = json!(now() + 120);
        }),
        ("dpop_iat_missing", |_, c| {
            c.remove("iat");
        }),
        ("dpop_jti_missing", |_, c| {
            c.remove("jti");
        }),
        ("dpop_ath_mismatch", |_, c| {
            c["ath"] = json!(B64.encode(Sha256::digest(b"another.access.token")));
        }),
        ("dpop_ath_missing", |_, c| {
            c.remove("ath");
        }),
        ("dpop_typ_mismatch", |h, _| {
            h["typ"] = json!("JWT");
        }),
        ("dpop_typ_mismatch", |h, _| {
            h.remove("typ");
        }),
        ("dpop_alg_not_allowed", |h, _| {
            h["alg"] = json!("none");
        }),
        ("dpop_alg_not_allowed", |h, _| {
            h["alg"] = json!("HS256");
        }),
        ("dpop_crit_unsupported", |h, _| {
            h.insert("crit".into(), json!(["exp"]));
        }),
        ("dpop_jwk_missing", |h, _| {
            h.remove("jwk");
        }),
        ("dpop_jwk_private", |h, _| {
            h["jwk"]["d"] = json!(B64.encode([7u8; 32]));
        }),
        ("dpop_jwk_invalid", |h, _| {
            h["jwk"]["crv"] = json!("P-384");
        }),
    ];
    // The baseline passes: each case differs from it in one member only.
    assert_eq!(
        reason(&jwt, &token, &client.proof("GET", URL, Some(&token))).await,
        "ok"
    );
    for (want, edit) in cases {
        let proof = client.proof_with("GET", URL, Some(&token), *edit);
        assert_eq!(reason(&jwt, &token, &proof).await, *want, "{want}");
    }
}

#[tokio::test]
async fn a_query_and_fragment_do_not_count_and_equivalent_urls_match() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let auth = format!("DPoP {token}");
    for htu in [
        URL,
        "https://api.example.com/me?other=1",
        "HTTPS://API.example.com:443/me#x",
    ] {
        let proof = client.proof_with("GET", URL, Some(&token), |_, c| c["htu"] = json!(htu));
        let p = parts("/me?page=2", &[("authorization", &auth), ("dpop", &proof)]);
        assert!(answer(&jwt, &p).await.is_ok(), "{htu}");
    }
}

#[tokio::test]
async fn the_public_url_prefix_is_part_of_htu() {
    let client = Client::new();
    let jwt = authenticator(
        Dpop::new()
            .public_url("https://example.com:8443/api")
            .unwrap(),
    );
    let token = token(Some(&client.jkt()));
    let good = client.proof_with("GET", URL, Some(&token), |_, c| {
        c["htu"] = json!("https://example.com:8443/api/me")
    });
    assert_eq!(reason(&jwt, &token, &good).await, "ok");
    let unprefixed = client.proof_with("GET", URL, Some(&token), |_, c| {
        c["htu"] = json!("https://example.com:8443/me")
    });
    assert_eq!(reason(&jwt, &token, &unprefixed).await, "dpop_htu_mismatch");
}

#[tokio::test]
async fn without_a_public_url_the_host_header_names_the_service() {
    let client = Client::new();
    let jwt = authenticator(Dpop::new());
    let token = token(Some(&client.jkt()));
    let auth = format!("DPoP {token}");
    let proof = client.proof_with("GET", URL, Some(&token), |_, c| {
        c["htu"] = json!("http://127.0.0.1:3000/me")
    });
    let p = parts(
        "/me",
        &[
            ("authorization", &auth),
            ("dpop", &proof),
            ("host", "127.0.0.1:3000"),
        ],
    );
    assert!(answer(&jwt, &p).await.is_ok());
    let proof = client.proof_with("GET", URL, Some(&token), |_, c| {
        c["htu"] = json!("http://127.0.0.1:3000/me")
    });
    let p = parts(
        "/me",
        &[
            ("authorization", &auth),
            ("dpop", &proof),
            ("host", "127.0.0.1:4000"),
        ],
    );
    assert_eq!(
        answer(&jwt, &p).await.unwrap_err().reason(),
        "dpop_htu_mismatch"
    );
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let proof = client.proof("GET", URL, Some(&token));
    assert_eq!(reason(&jwt, &token, &proof).await, "ok");
    assert_eq!(reason(&jwt, &token, &proof).await, "dpop_proof_replayed");
    // Another proof with the same `jti` from another key is another proof.
    let other = Client::new();
    let other_token = self::token(Some(&other.jkt()));
    let jti =
        serde_json::from_slice::<Value>(&B64.decode(proof.split('.').nth(1).unwrap()).unwrap())
            .unwrap()["jti"]
            .clone();
    let same_jti = other.proof_with("GET", URL, Some(&other_token), |_, c| c["jti"] = jti);
    assert_eq!(reason(&jwt, &other_token, &same_jti).await, "ok");
}

#[tokio::test]
async fn a_proof_by_another_key_does_not_fit_the_token() {
    let (client, thief) = (Client::new(), Client::new());
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    assert_eq!(
        reason(&jwt, &token, &thief.proof("GET", URL, Some(&token))).await,
        "dpop_jkt_mismatch"
    );
}

#[tokio::test]
async fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    let (client, other) = (Client::new(), Client::new());
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let honest = client.proof("GET", URL, Some(&token));
    let (input, _) = honest.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", other.signature(input));
    assert_eq!(reason(&jwt, &token, &forged).await, "dpop_bad_signature");
}

#[tokio::test]
async fn an_hmac_proof_is_refused() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": B64.encode(SECRET)}});
    let claims = json!({"jti": "x", "htm": "GET", "htu": URL, "iat": now(), "ath": B64.encode(Sha256::digest(token.as_bytes()))});
    let proof = encode(
        &serde_json::from_value::<Header>(header).unwrap(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(reason(&jwt, &token, &proof).await, "dpop_alg_not_allowed");
    let unsigned = format!("{}.", proof.rsplit_once('.').unwrap().0);
    assert_eq!(
        reason(&jwt, &token, &unsigned).await,
        "malformed_dpop_proof"
    );
}

#[tokio::test]
async fn a_missing_or_repeated_proof_is_refused() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let auth = format!("DPoP {token}");
    let p = parts("/me", &[("authorization", &auth)]);
    assert_eq!(
        answer(&jwt, &p).await.unwrap_err().reason(),
        "missing_dpop_proof"
    );
    let (a, b) = (
        client.proof("GET", URL, Some(&token)),
        client.proof("GET", URL, Some(&token)),
    );
    let p = parts(
        "/me",
        &[("authorization", &auth), ("dpop", &a), ("dpop", &b)],
    );
    assert_eq!(
        answer(&jwt, &p).await.unwrap_err().reason(),
        "multiple_dpop_proofs"
    );
}

#[tokio::test]
async fn an_unbound_token_with_a_proof_is_refused() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(None);
    assert_eq!(
        reason(&jwt, &token, &client.proof("GET", URL, Some(&token))).await,
        "token_not_dpop_bound"
    );
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    let auth = format!("Bearer {token}");
    for _ in 0..2 {
        // Twice: the second time the token comes from the verified-token cache.
        let p = parts(
            "/me",
            &[
                ("authorization", &auth),
                ("dpop", &client.proof("GET", URL, Some(&token))),
            ],
        );
        let err = answer(&jwt, &p).await.unwrap_err();
        assert_eq!(err.reason(), "dpop_bound_token_as_bearer");
    }
}

#[tokio::test]
async fn a_token_naming_a_key_in_no_usable_form_is_bound_all_the_same() {
    let jwt = authenticator(public());
    for jkt in [json!(5), json!(["k"]), json!(null)] {
        let claims = json!({
            "iss": ISSUER, "aud": "api", "sub": "alice",
            "iat": now(), "exp": now() + 300, "cnf": {"jkt": jkt},
        });
        let token = signed(&claims);
        // As a bearer token: a downgrade.
        let bearer = format!("Bearer {token}");
        let err = answer(&jwt, &parts("/me", &[("authorization", &bearer)]))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "dpop_bound_token_as_bearer", "{jkt}");
        // With a proof: no key matches it.
        let client = Client::new();
        assert_eq!(
            reason(&jwt, &token, &client.proof("GET", URL, Some(&token))).await,
            "dpop_jkt_mismatch",
            "{jkt}"
        );
    }
}

#[tokio::test]
async fn unbound_bearer_tokens_pass_unless_dpop_is_required() {
    let token = token(None);
    let auth = format!("Bearer {token}");
    let p = parts("/me", &[("authorization", &auth)]);
    let principal = answer(&authenticator(public()), &p).await.unwrap();
    assert_eq!(principal.dpop_thumbprint(), None);
    let strict = authenticator(public().require_dpop());
    assert_eq!(
        answer(&strict, &p).await.unwrap_err().reason(),
        "dpop_required"
    );
}

#[tokio::test]
async fn a_cached_token_still_needs_its_own_valid_proof() {
    let client = Client::new();
    let jwt = authenticator(public());
    let token = token(Some(&client.jkt()));
    assert_eq!(
        reason(&jwt, &token, &client.proof("GET", URL, Some(&token))).await,
        "ok"
    );
    assert_eq!(jwt.cached_tokens(), 1);
    let wrong = client.proof_with("GET", URL, Some(&token), |_, c| c["htm"] = json!("DELETE"));
    assert_eq!(reason(&jwt, &token, &wrong).await, "dpop_htm_mismatch");
    let thief = Client::new();
    assert_eq!(
        reason(&jwt, &token, &thief.proof("GET", URL, Some(&token))).await,
        "dpop_jkt_mismatch"
    );
    assert_eq!(
        reason(&jwt, &token, &client.proof("GET", URL, Some(&token))).await,
        "ok"
    );
}

#[tokio::test]
async fn refusals_carry_a_dpop_challenge_and_a_problem_body() {
    let client = Client::new();
    let jwt = authenticator(
        public()
            .algorithms([Algorithm::ES256, Algorithm::EdDSA])
            .unwrap(),
    );
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.dpop_thumbprint().unwrap_or("-").to_owned() }),
        )
        .route_layer(AuthLayer::new(jwt));
    let token = token(Some(&client.jkt()));
    let send = |proof: String, grpc: bool| {
        let mut req = Request::get("/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof);
        if grpc {
            req = req.header("content-type", "application/grpc");
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };

    let ok = send(client.proof("GET", URL, Some(&token)), false)
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body = ok.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, client.jkt().as_bytes());

    let stale = client.proof_with("GET", URL, Some(&token), |_, c| {
        c["iat"] = json!(now() - 3600)
    });
    let refused = send(stale.clone(), false).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"DPoP realm="api", error="invalid_dpop_proof", error_description="the DPoP proof is invalid", algs="ES256 EdDSA""#
    );
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "invalid_dpop_proof");
    assert!(
        !body.to_string().contains(&token),
        "the token is never echoed"
    );

    let grpc = send(stale, true).await.unwrap();
    assert_eq!(grpc.headers()["grpc-status"], "16", "{:?}", grpc.headers());
    assert!(
        grpc.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_dpop_proof""#)
    );
}

/// Without any credential the challenge offers both schemes (RFC 9449 §7.2); an
/// optional layer still lets the request through, and in a tuple the next
/// authenticator still gets its turn.
#[tokio::test]
async fn no_credential_is_challenged_with_bearer_and_dpop_and_stays_optional() {
    let jwt = authenticator(public().algorithms([Algorithm::ES256]).unwrap());
    let who = |p: Option<Principal>| async move {
        p.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
    };
    let strict = Router::new()
        .route("/me", get(who))
        .route_layer(AuthLayer::new(jwt.clone()));
    let refused = strict
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer realm="api", DPoP realm="api", algs="ES256""#
    );
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "missing_credentials");

    let optional = Router::new()
        .route("/me", get(who))
        .route_layer(AuthLayer::new(jwt.clone()).optional());
    let open = optional
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let body = open.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"anonymous");

    // A second authenticator after the DPoP one still decides.
    struct Header;
    impl Authenticator for Header {
        fn authenticate(&self, parts: &Parts) -> MaybeReady<portcullis_core::AuthResult> {
            MaybeReady::Ready(Ok(parts.headers.contains_key("x-service").then(|| {
                Principal::builder("service", portcullis_core::PrincipalKind::Service).build()
            })))
        }
    }
    let both = Router::new()
        .route("/me", get(who))
        .route_layer(AuthLayer::new((jwt, Header)));
    let served = both
        .clone()
        .oneshot(
            Request::get("/me")
                .header("x-service", "1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let refused = both
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("DPoP realm=")
    );
}

#[tokio::test]
async fn an_expired_token_under_dpop_is_an_invalid_token_with_a_dpop_challenge() {
    let client = Client::new();
    let jwt = authenticator(public());
    let claims = json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now() - 3600, "cnf": {"jkt": client.jkt()}});
    let token = signed(&claims);
    let auth = format!("DPoP {token}");
    let p = parts(
        "/me",
        &[
            ("authorization", &auth),
            ("dpop", &client.proof("GET", URL, Some(&token))),
        ],
    );
    let err = answer(&jwt, &p).await.unwrap_err();
    assert_eq!(err.reason(), "token_expired");
    let challenge = err.challenge("api").unwrap();
    assert!(
        challenge
            .to_str()
            .unwrap()
            .starts_with("DPoP realm=\"api\", error=\"invalid_token\"")
    );
}

#[test]
fn hmac_proof_algorithms_are_a_configuration_error() {
    assert!(Dpop::new().algorithms([Algorithm::HS256]).is_err());
    assert!(Dpop::new().algorithms([]).is_err());
    assert!(Dpop::new().public_url("ftp://example.com").is_err());
}

#[tokio::test]
async fn a_token_endpoint_proof_names_its_key_once() {
    let client = Client::new();
    let dpop = public();
    let proof = client.proof_with("GET", URL, Some(""), |_, c| {
        c["htm"] = json!("POST");
        c["htu"] = json!("https://api.example.com/auth/login");
        c.remove("ath");
    });
    let request = |proof: Option<&str>| {
        let mut req = Request::post("/auth/login");
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        req.body(()).unwrap().into_parts().0
    };
    let jkt = dpop.verify_proof(&request(Some(&proof))).await.unwrap();
    assert_eq!(jkt, Some(client.jkt()));
    let replayed = dpop.verify_proof(&request(Some(&proof))).await.unwrap_err();
    assert_eq!(replayed.reason(), "dpop_proof_replayed");
    assert_eq!(dpop.verify_proof(&request(None)).await.unwrap(), None);
    let elsewhere = client.proof_with("GET", URL, Some(""), |_, c| c["htm"] = json!("POST"));
    let err = dpop
        .verify_proof(&request(Some(&elsewhere)))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "dpop_htu_mismatch");
}

#[tokio::test]
async fn nonces_round_trip_across_instances_and_expire() {
    use std::time::Duration;

    const NONCE_SECRET: &[u8] = b"a-dpop-nonce-secret-of-32-bytes!";
    let clock = portcullis_jwt::ManualClock::starting_now();
    let with_nonces = || {
        JwtAuthenticator::builder()
            .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
            .issuer(ISSUER)
            .audience("api")
            .clock(clock.clone())
            .dpop(
                public()
                    .nonces(NONCE_SECRET, Duration::from_secs(60))
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let (first, second) = (with_nonces(), with_nonces());
    let client = Client::new();
    let token = token(Some(&client.jkt()));
    let at = |clock: &portcullis_jwt::ManualClock| {
        use portcullis_core::clock::Clock as _;
        portcullis_core::internal::unix_secs(clock.now())
    };
    let proof = |nonce: Option<&str>, iat: i64| {
        client.proof_with("GET", URL, Some(&token), |_, c| {
            c["iat"] = json!(iat);
            if let Some(nonce) = nonce {
                c.insert("nonce".into(), json!(nonce));
            }
        })
    };

    // Without a nonce: 401 use_dpop_nonce, and one to use in DPoP-Nonce.
    let refused = reason_err(&first, &token, &proof(None, at(&clock))).await;
    assert_eq!(refused.reason(), "use_dpop_nonce");
    let response = refused.to_http_response("api");
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP ") && challenge.contains(r#"error="use_dpop_nonce""#));
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["code"], "use_dpop_nonce");

    // With it: accepted by this instance and by another sharing only the secret.
    assert_eq!(
        reason(&first, &token, &proof(Some(&nonce), at(&clock))).await,
        "ok"
    );
    assert_eq!(
        reason(&second, &token, &proof(Some(&nonce), at(&clock))).await,
        "ok"
    );
    // A nonce never issued, or a stale one: a fresh nonce comes back.
    let forged = reason_err(
        &first,
        &token,
        &proof(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), at(&clock)),
    )
    .await;
    assert_eq!(forged.reason(), "use_dpop_nonce");
    clock.advance(Duration::from_secs(150));
    let stale = reason_err(&first, &token, &proof(Some(&nonce), at(&clock))).await;
    assert_eq!(stale.reason(), "use_dpop_nonce");
    let fresh = stale.dpop_nonce().unwrap().to_str().unwrap().to_owned();
    assert_ne!(fresh, nonce);
    assert_eq!(
        reason(&second, &token, &proof(Some(&fresh), at(&clock))).await,
        "ok"
    );
}

async fn reason_err(jwt: &JwtAuthenticator, token: &str, proof: &str) -> AuthError {
    let auth = format!("DPoP {token}");
    let p = parts("/me", &[("authorization", &auth), ("dpop", proof)]);
    answer(jwt, &p).await.unwrap_err()
}
