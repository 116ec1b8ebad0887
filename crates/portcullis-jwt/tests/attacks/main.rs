//! The attacks of SECURITY.md "Verifying tokens", one named test each, plus a
//! regression test for each gap of "jsonwebtoken's defaults are not enough".

mod claims;
#[path = "../common/mod.rs"]
mod common;
mod gaps;
mod issuers;
mod typ;

use std::{
    net::TcpListener,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use common::*;
use http::{Request, StatusCode};
use jsonwebtoken::{DecodingKey, EncodingKey, Validation, decode};
use portcullis_core::AuthLayer;
use portcullis_jwt::{Algorithm, Key};
use serde_json::json;

fn hs(header: &str, payload: &str) -> String {
    sign_raw(
        header,
        payload,
        jsonwebtoken::Algorithm::HS256,
        &EncodingKey::from_secret(SECRET),
    )
}

fn good_payload() -> String {
    claims().to_string()
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let auth = authenticator();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let payload = b64(good_payload().as_bytes());
        // With an empty signature, and with a signature someone attached anyway.
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.{}", b64(b"sig")),
        ] {
            let r = reason(&auth, &token);
            assert!(r == "alg_none" || r == "malformed_token", "{alg}: {r}");
        }
        assert_eq!(
            reason(&auth, &format!("{header}.{payload}.{}", b64(b"sig"))),
            "alg_none"
        );
        // Even signed with the real secret, `none` stays refused.
        let signed = hs(&format!(r#"{{"alg":"{alg}"}}"#), &good_payload());
        assert_eq!(reason(&auth, &signed), "alg_none", "{alg}");
    }
}

#[test]
fn key_confusion_hs256_signed_with_rsa_public_pem_is_refused() {
    let pem = read_key("test-only-rsa2048-public.pem");
    let auth = builder().keys([]).build().map(|_| ()).ok();
    let _ = auth;
    let rsa_auth = builder_with(Key::from_pem(Algorithm::RS256, &pem).unwrap())
        .build()
        .unwrap();
    let forged = sign_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &good_payload(),
        jsonwebtoken::Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
    );
    assert_eq!(reason(&rsa_auth, &forged), "alg_mismatch");
    // And a public key can never be configured as an HMAC secret.
    assert!(Key::from_pem(Algorithm::HS256, &pem).is_err());
    // The reverse: an RS256 token presented to an HMAC-only verifier.
    let rs = mint(&pair(Algorithm::RS256), &claims(), None);
    assert_eq!(reason(&authenticator(), &rs), "alg_mismatch");
}

#[test]
fn embedded_jwk_is_never_trusted() {
    // The attacker signs with their own P-256 key and embeds its public JWK.
    let attacker = pair(Algorithm::ES256);
    let header = json!({
        "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    });
    let token = sign_raw(
        &header.to_string(),
        &good_payload(),
        jsonwebtoken::Algorithm::ES256,
        &attacker.encoding,
    );
    // A verifier holding only the HMAC key: the header's alg is not the key's.
    assert_eq!(reason(&authenticator(), &token), "alg_mismatch");
    // A verifier holding another ES256 key: the embedded key is ignored, the signature fails.
    let other = Key::from_jwk(
        r#"{"kty":"EC","alg":"ES256","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#,
    )
    .unwrap();
    let auth = builder_with(other).build().unwrap();
    assert_eq!(reason(&auth, &token), "bad_signature");
}

#[test]
fn jku_and_x5u_are_never_fetched() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/keys.json", listener.local_addr().unwrap());
    let attacker = pair(Algorithm::RS256);
    let auth = builder_with(pair(Algorithm::ES256).key).build().unwrap();
    for member in ["jku", "x5u"] {
        let header = json!({"alg": "RS256", member: url, "kid": "attacker"});
        let token = sign_raw(
            &header.to_string(),
            &good_payload(),
            jsonwebtoken::Algorithm::RS256,
            &attacker.encoding,
        );
        assert_ne!(reason(&auth, &token), "ok");
        // And with an alg that matches the configured key, so verification gets further.
        let header = json!({"alg": "ES256", member: url, "x5c": ["MIIB"]});
        let token = sign_raw(
            &header.to_string(),
            &good_payload(),
            jsonwebtoken::Algorithm::ES256,
            &pair(Algorithm::ES384).encoding_for(Algorithm::ES256),
        );
        assert_eq!(reason(&auth, &token), "bad_signature");
    }
    std::thread::sleep(Duration::from_millis(50));
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the verifier connected to the URL in the header: {other:?}"),
    }
}

trait EncodingFor {
    fn encoding_for(&self, alg: Algorithm) -> EncodingKey;
}

impl EncodingFor for Pair {
    /// A fresh signing key of `alg` that is NOT the configured one (an attacker's).
    fn encoding_for(&self, alg: Algorithm) -> EncodingKey {
        assert_eq!(alg, Algorithm::ES256);
        // Any valid P-256 PKCS#8 key other than the configured one: sign with
        // aws-lc-rs's generator.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        EncodingKey::from_ec_der(pkcs8.as_ref())
    }
}

#[test]
fn kid_injection_is_a_plain_lookup() {
    let auth = portcullis_jwt::JwtAuthenticator::builder()
        .key(
            Key::hmac(Algorithm::HS256, SECRET)
                .unwrap()
                .with_kid("k1")
                .unwrap(),
        )
        .key(
            Key::hmac(Algorithm::HS256, [9u8; 32])
                .unwrap()
                .with_kid("k2")
                .unwrap(),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "k1' OR '1'='1",
        "k1\u{0000}",
        "http://127.0.0.1:1/key",
        "k1 ",
        "K1",
    ] {
        let header = json!({"alg": "HS256", "kid": kid});
        assert_eq!(
            reason(&auth, &hs(&header.to_string(), &good_payload())),
            "unknown_kid",
            "{kid:?}"
        );
    }
    let long = "k".repeat(300);
    let header = json!({"alg": "HS256", "kid": long});
    assert_eq!(
        reason(&auth, &hs(&header.to_string(), &good_payload())),
        "kid_too_long"
    );
    // The real kid works.
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256","kid":"k1"}"#, &good_payload())),
        "ok"
    );
}

#[test]
fn es256_signature_r_s_zero_is_refused() {
    let p = pair(Algorithm::ES256);
    let auth = builder_with(p.key).build().unwrap();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256"}"#),
        b64(good_payload().as_bytes())
    );
    for sig in [vec![0u8; 64], vec![0u8; 0], vec![0u8; 8], vec![0u8; 72]] {
        let token = format!("{input}.{}", b64(&sig));
        let r = reason(&auth, &token);
        assert!(r == "bad_signature" || r == "malformed_token", "{r}");
    }
    assert_eq!(
        reason(&auth, &format!("{input}.{}", b64(&[0u8; 64]))),
        "bad_signature"
    );
}

#[test]
fn unknown_crit_is_refused() {
    let auth = authenticator();
    let t = hs(
        r#"{"alg":"HS256","crit":["exp-ext"],"exp-ext":1}"#,
        &good_payload(),
    );
    assert_eq!(reason(&auth, &t), "crit_unsupported");
}

#[test]
fn empty_crit_is_refused() {
    let auth = authenticator();
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256","crit":[]}"#, &good_payload())),
        "crit_unsupported"
    );
}

#[test]
fn b64_header_is_refused() {
    let auth = authenticator();
    for header in [
        r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
        r#"{"alg":"HS256","b64":true}"#,
    ] {
        let r = reason(&auth, &hs(header, &good_payload()));
        assert!(r == "crit_unsupported" || r == "b64_unsupported", "{r}");
    }
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256","b64":true}"#, &good_payload())),
        "b64_unsupported"
    );
}

#[test]
fn duplicate_claims_are_refused() {
    let auth = authenticator();
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","sub":"admin","exp":{}}}"#,
        NOW + 600
    );
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256"}"#, &payload)),
        "duplicate_claim"
    );
    let nested = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{},"realm_access":{{"roles":["user"],"roles":["admin"]}}}}"#,
        NOW + 600
    );
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256"}"#, &nested)),
        "duplicate_claim"
    );
    // Duplicate header members too, e.g. two algs.
    assert_eq!(
        reason(
            &auth,
            &hs(r#"{"alg":"HS256","alg":"none"}"#, &good_payload())
        ),
        "duplicate_header_member"
    );
}

#[tokio::test]
async fn token_of_200_kb_gets_a_fast_4xx_before_decoding() {
    let app = app(AuthLayer::new(authenticator()));
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(100_000),
        "b".repeat(100_000),
        "c".repeat(100)
    );
    let started = Instant::now();
    let response = send(&app, bearer(&huge)).await;
    let took = started.elapsed();
    assert!(response.status().is_client_error());
    assert_invalid_token(&response);
    assert!(took < Duration::from_millis(200), "took {took:?}");
    assert_eq!(reason(&authenticator(), &huge), "token_too_large");
    // Rejected before decoding: even invalid base64 and JSON give the size reason, so
    // no part of it was decoded or parsed (no allocation proportional to the token).
    let junk = format!("{}.{}.{}", "*".repeat(150_000), "%".repeat(50_000), "!");
    assert_eq!(reason(&authenticator(), &junk), "token_too_large");
    // A token without dots is not ours, but a huge one is still refused outright.
    assert_eq!(
        reason(&authenticator(), &"x".repeat(200_000)),
        "token_too_large"
    );
}

#[test]
fn hundred_thousand_deep_json_header_and_payload_are_refused() {
    let auth = builder()
        .max_token_len(NonZeroUsize::new(2_000_000).unwrap())
        .build()
        .unwrap();
    let deep = format!(
        r#"{{"alg":"HS256","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        reason(&auth, &hs(&deep, &good_payload())),
        "malformed_token"
    );
    let deep_obj = format!(
        r#"{{"alg":"HS256","x":{}1{}}}"#,
        r#"{"a":"#.repeat(100_000),
        "}".repeat(100_000)
    );
    assert_eq!(
        reason(&auth, &hs(&deep_obj, &good_payload())),
        "malformed_token"
    );
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"a","exp":{},"x":{}{}}}"#,
        NOW + 600,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        reason(&auth, &hs(r#"{"alg":"HS256"}"#, &payload)),
        "malformed_token"
    );
    // With the default length cap such a token never even reaches the parser.
    assert_eq!(
        reason(&authenticator(), &hs(&deep, &good_payload())),
        "token_too_large"
    );
}

#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let app = app(AuthLayer::new(authenticator()));
    let token = hs256(&claims());
    let req = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = send(&app, req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(www(&response).contains(r#"error="invalid_request""#));
}

#[test]
fn padded_or_whitespace_base64_is_refused() {
    let auth = authenticator();
    let token = hs256(&claims());
    let (head, rest) = token.split_once('.').unwrap();
    for bad in [
        format!("{head}=.{rest}"),
        format!("{head} .{rest}"),
        format!("{head}\n.{rest}"),
        format!("{}+{}.{rest}", &head[..4], &head[4..]),
        format!("{token}="),
        format!("{token}."),
        format!(".{token}"),
    ] {
        let r = reason(&auth, &bad);
        assert_ne!(r, "ok", "{bad:?}");
    }
}
