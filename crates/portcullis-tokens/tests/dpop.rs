//! DPoP-bound issuance: the access token carries `cnf.jkt` and is handed out as
//! `DPoP`; the refresh family is bound to the same key.

use base64::Engine as _;
use portcullis_tokens::{
    ErrorKind, Grant, MemoryRefreshStore, MemoryRevocation, RefreshTokens, SigningAlgorithm,
    SigningKey, TokenIssuer, TokenService, dpop_client_id,
};
use serde_json::Value;

const KEY_A: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const KEY_B: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

fn service() -> TokenService<MemoryRefreshStore> {
    let key = SigningKey::generate(SigningAlgorithm::EdDsa).unwrap();
    let issuer = TokenIssuer::builder("https://auth.example", "api", key).build();
    TokenService::new(
        issuer,
        RefreshTokens::new(MemoryRefreshStore::new()),
        MemoryRevocation::new(),
    )
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn grant(jkt: Option<&str>) -> impl Fn(&str) -> Grant {
    let jkt = jkt.map(str::to_owned);
    move |subject| {
        let grant = Grant::new(subject, "web");
        match &jkt {
            Some(jkt) => grant.dpop_jkt(jkt.clone()),
            None => grant,
        }
    }
}

#[tokio::test]
async fn a_bound_login_issues_a_dpop_token_with_cnf_jkt() {
    let service = service();
    let stamp = service.session_stamp("alice").await.unwrap();
    let pair = service
        .login(&Grant::new("alice", "web").dpop_jkt(KEY_A), stamp)
        .await
        .unwrap();
    assert_eq!(claims(pair.access.as_str())["cnf"]["jkt"], KEY_A);
    assert_eq!(pair.access.token_type(), "DPoP");
    assert_eq!(pair.to_json()["token_type"], "DPoP");

    let stamp = service.session_stamp("bob").await.unwrap();
    let plain = service
        .login(&Grant::new("bob", "web"), stamp)
        .await
        .unwrap();
    assert!(claims(plain.access.as_str()).get("cnf").is_none());
    assert_eq!(plain.to_json()["token_type"], "Bearer");
}

#[tokio::test]
async fn a_bound_refresh_token_needs_the_same_key_and_does_not_rotate_otherwise() {
    let service = service();
    let stamp = service.session_stamp("alice").await.unwrap();
    let pair = service
        .login(&Grant::new("alice", "web").dpop_jkt(KEY_A), stamp)
        .await
        .unwrap();
    let token = pair.refresh.token.as_str();
    // Another key, or no proof at all: refused, and nothing rotates.
    for (client, jkt) in [
        (dpop_client_id("web", Some(KEY_B)), Some(KEY_B)),
        (dpop_client_id("web", None), None),
    ] {
        let err = service
            .refresh(token, &client, grant(jkt))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ClientMismatch, "{jkt:?}");
    }
    // The right key: rotated (so the refusals above did not spend it), still bound.
    let next = service
        .refresh(
            token,
            &dpop_client_id("web", Some(KEY_A)),
            grant(Some(KEY_A)),
        )
        .await
        .unwrap();
    assert_eq!(claims(next.access.as_str())["cnf"]["jkt"], KEY_A);
    assert_eq!(next.to_json()["token_type"], "DPoP");
}

#[tokio::test]
async fn an_unbound_refresh_token_is_refused_with_a_proof() {
    let service = service();
    let stamp = service.session_stamp("alice").await.unwrap();
    let pair = service
        .login(&Grant::new("alice", "web"), stamp)
        .await
        .unwrap();
    let token = pair.refresh.token.as_str();
    let err = service
        .refresh(
            token,
            &dpop_client_id("web", Some(KEY_A)),
            grant(Some(KEY_A)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClientMismatch);
    assert!(service.refresh(token, "web", grant(None)).await.is_ok());
}
