//! Every key type and key form through the router, and keys chosen by `kid`.

use super::*;

#[tokio::test]
async fn every_key_type_verifies_through_the_router() {
    for alg in ALL_ALGS {
        let pair = pair(alg);
        let token = mint(&pair, &claims(), None);
        let auth = builder_with(pair.key.clone()).build().unwrap();
        let app = app(AuthLayer::new(auth));
        let response = send(&app, bearer(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{alg:?}");
        // Tampered payload: refused.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = b64(
            json!({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 600})
                .to_string()
                .as_bytes(),
        );
        parts[1] = &other;
        assert_invalid_token(&send(&app, bearer(&parts.join("."))).await);
    }
}

#[test]
fn es512_verifies_from_pem_der_and_jwk() {
    let pair = pair(Algorithm::ES512);
    let token = mint(&pair, &claims(), None);
    let pem = read_key("test-only-p521-public.pem");
    let der = ::pem::parse(&pem).unwrap().into_contents();
    let keys = [
        Key::from_pem(Algorithm::ES512, &pem).unwrap(),
        Key::from_der(Algorithm::ES512, &der).unwrap(),
        Key::from_jwk(&p521_jwk(Some("ES512"), "k").to_string()).unwrap(),
        Key::from_jwk_value(&p521_jwk(None, "k"), Some(Algorithm::ES512)).unwrap(),
    ];
    for key in keys {
        assert_eq!(key.algorithm(), Algorithm::ES512);
        let auth = builder_with(key).build().unwrap();
        assert_eq!(reason(&auth, &token), "ok");
        // A flipped signature bit, or the same key pinned to ES384's header: refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 3;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            reason(&auth, std::str::from_utf8(&forged).unwrap()),
            "bad_signature"
        );
    }
    // A P-521 key cannot be pinned to ES256/ES384, nor a P-256 key to ES512.
    assert!(Key::from_pem(Algorithm::ES384, &pem).is_err());
    assert!(Key::from_pem(Algorithm::ES512, read_key("test-only-p256-public.pem")).is_err());
    let es384_header = sign_es512(r#"{"alg":"ES384"}"#, &claims().to_string());
    let auth = builder_with(pair.key.clone()).build().unwrap();
    assert_eq!(reason(&auth, &es384_header), "alg_mismatch");
}

#[tokio::test]
async fn keys_from_der_and_jwk_verify() {
    let cases = [
        (Algorithm::RS256, Some("test-only-rsa2048-public.der")),
        (Algorithm::PS384, Some("test-only-rsa2048-public.der")),
        (Algorithm::ES256, Some("test-only-p256-public.der")),
        (Algorithm::ES384, None),
        (Algorithm::EdDSA, Some("test-only-ed25519-public.der")),
    ];
    for (alg, der) in cases {
        let pair = pair(alg);
        let token = mint(&pair, &claims(), Some("k"));
        let mut keys = Vec::new();
        if let Some(der) = der {
            keys.push(
                Key::from_der(alg, read_key(der))
                    .unwrap()
                    .with_kid("k")
                    .unwrap(),
            );
        }
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&pair.encoding, jwt_alg(alg)).unwrap())
                .unwrap();
        jwk["kid"] = json!("k");
        keys.push(Key::from_jwk(&jwk.to_string()).unwrap());
        for key in keys {
            let auth = builder_with(key).build().unwrap();
            assert_eq!(
                send(&app(AuthLayer::new(auth)), bearer(&token))
                    .await
                    .status(),
                StatusCode::OK,
                "{alg:?}"
            );
        }
    }
}

#[tokio::test]
async fn several_keys_are_chosen_by_kid() {
    let es = pair(Algorithm::ES256);
    let auth = JwtAuthenticator::builder()
        .key(es.key.clone().with_kid("ec").unwrap())
        .key(
            Key::hmac(Algorithm::HS256, SECRET)
                .unwrap()
                .with_kid("hs")
                .unwrap(),
        )
        .key(pair(Algorithm::RS256).key.with_kid("rsa").unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    assert_eq!(reason(&auth, &mint(&es, &claims(), Some("ec"))), "ok");
    // The right key type under the wrong kid: alg mismatch, not a fallback.
    assert_eq!(
        reason(&auth, &mint(&es, &claims(), Some("hs"))),
        "alg_mismatch"
    );
    // No kid, but only one ES256 key: that one.
    assert_eq!(reason(&auth, &mint(&es, &claims(), None)), "ok");
    assert_eq!(
        reason(&auth, &mint(&es, &claims(), Some("nope"))),
        "unknown_kid"
    );
}
