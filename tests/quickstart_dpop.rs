//! The quickstart issuing DPoP-bound tokens (RFC 9449) over real HTTP: a login with a
//! proof binds the access token and the refresh family to the proof's key; a refresh
//! with another key, or none, is refused and spends nothing.

#[path = "../crates/portcullis-jwt/tests/common/dpop_client.rs"]
mod dpop_client;
#[path = "quickstart/harness.rs"]
mod harness;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use dpop_client::DpopClient;
use harness::{Options, Server};
use serde_json::{Value, json};

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
    let (key, other) = (DpopClient::new(), DpopClient::new());
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
