//! The quickstart issuing DPoP-bound tokens (RFC 9449) over real HTTP: a login with a
//! proof binds the access token and the refresh family to the proof's key; a refresh
//! with another key, or none, is refused and spends nothing.

#[path = "quickstart/harness.rs"]
mod harness;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use harness::{Options, Server};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A client's DPoP key.
struct Key {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl Key {
    fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        Self { pair, jwk }
    }

    fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        B64.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A fresh proof for `method` `url`, naming `token` when given.
    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let mut claims = json!({"jti": B64.encode(jti), "htm": method, "htu": url, "iat": iat});
        if let Some(token) = token {
            claims["ath"] = json!(B64.encode(Sha256::digest(token.as_bytes())));
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn claims(token: &str) -> Value {
    let payload = B64.decode(token.split('.').nth(1).unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test]
async fn dpop_login_binds_access_and_refresh_tokens_to_the_key() {
    let s = Server::start(Options::default()).await;
    let (email, password) = ("dora@example.com", "dora's long enough passphrase");
    s.post("/auth/register")
        .json(&json!({ "email": email, "password": password }))
        .go()
        .await
        .expect(201);
    let (key, other) = (Key::new(), Key::new());
    let url = |path: &str| format!("{}{path}", s.base);

    let login = s
        .post("/auth/login")
        .header("dpop", &key.proof("POST", &url("/auth/login"), None))
        .json(&json!({ "email": email, "password": password }))
        .go()
        .await;
    login.expect(200);
    let body = login.json();
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["cnf"]["jkt"], key.jkt());

    let me = s
        .get("/me")
        .header("authorization", &format!("DPoP {access}"))
        .header("dpop", &key.proof("GET", &url("/me"), Some(&access)))
        .go()
        .await;
    me.expect(200);
    assert_eq!(me.json()["dpop_jkt"], key.jkt());
    s.get("/me")
        .bearer(&access)
        .go()
        .await
        .problem(401, "invalid_token");

    // Another key, or no proof: refused, and the refresh token is not spent.
    let refresh_body = json!({ "refresh_token": refresh });
    for proof in [Some(other.proof("POST", &url("/auth/refresh"), None)), None] {
        let mut request = s.post("/auth/refresh").json(&refresh_body);
        if let Some(proof) = &proof {
            request = request.header("dpop", proof);
        }
        request.go().await.problem(401, "invalid_grant");
    }
    // A proof for another URL is no proof.
    s.post("/auth/refresh")
        .header("dpop", &key.proof("POST", &url("/auth/login"), None))
        .json(&refresh_body)
        .go()
        .await
        .problem(401, "invalid_dpop_proof");
    let next = s
        .post("/auth/refresh")
        .header("dpop", &key.proof("POST", &url("/auth/refresh"), None))
        .json(&refresh_body)
        .go()
        .await;
    next.expect(200);
    let next = next.json();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(
        claims(next["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}
