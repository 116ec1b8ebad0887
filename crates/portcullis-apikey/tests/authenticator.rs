//! The authenticator through axum: header forms, refusals, store contact, outages.

mod common;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, UNIX_EPOCH},
};

use common::{CountingStore, Seen, app, key_status, send, setup, spec, t0};
use http::{HeaderName, StatusCode};
use portcullis_apikey::{
    ApiKeyAuthenticator, ApiKeyErrorKind, ApiKeyStore, ApiKeys, KeyHasher, MemoryStore, NewApiKey,
};
use portcullis_core::{Authenticator, MaybeReady};

#[tokio::test]
async fn x_api_key_header_yields_an_api_key_principal() {
    let (keys, _, calls) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let (status, _, body) = send(&app, &[("x-api-key", issued.key().expose_secret())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exp = (t0() + Duration::from_secs(3600))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        body,
        format!(
            "svc-billing|api_key|{}|invoices:read invoices:write|service|{exp}",
            issued.id()
        )
    );
    assert_eq!(calls.find.load(Ordering::SeqCst), 1);
    // The memory store answers at once, and so does the authenticator: no future.
    let (parts, ()) = http::Request::get("/")
        .header("x-api-key", issued.key().to_header_value())
        .body(())
        .unwrap()
        .into_parts();
    assert!(matches!(
        keys.authenticator().authenticate(&parts),
        MaybeReady::Ready(Ok(Some(_)))
    ));
}

#[tokio::test]
async fn bearer_with_the_prefix_is_accepted() {
    let (keys, _, _) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let app = app(keys.authenticator(), &Seen::default());
    let bearer = format!("Bearer {}", issued.key().expose_secret());
    let (status, _, body) = send(&app, &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("svc-billing|api_key|"), "{body}");
    let lower = format!("bearer {}", issued.key().expose_secret());
    assert_eq!(
        send(&app, &[("authorization", &lower)]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bearer_without_the_prefix_is_not_ours_and_touches_no_store() {
    let (keys, _, calls) = setup(CountingStore::default());
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let (status, response, _) = send(&app, &[("authorization", "Bearer eyJ.eyJ.sig")]).await;
    // Alone, the layer calls an unrecognised bearer token invalid.
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(seen.last(), Some("unrecognized_credential"));
    assert_eq!(calls.total(), 0);
}

#[tokio::test]
async fn custom_header_name_and_bearer_switch() {
    let (keys, _, _) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let auth = keys
        .authenticator()
        .with_header(HeaderName::from_static("x-acme-key"))
        .without_bearer();
    let app = app(auth, &Seen::default());
    let key = issued.key().expose_secret();
    assert_eq!(send(&app, &[("x-acme-key", key)]).await.0, StatusCode::OK);
    // The default header is no longer read, and neither is Bearer.
    assert_eq!(key_status(&app, key).await, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {key}");
    let (status, _, _) = send(&app, &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn both_headers_or_a_repeated_header_are_invalid_request() {
    let (keys, _, calls) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let before = calls.total();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    let bearer = format!("Bearer {key}");
    let malformed = "the request's credentials are malformed";
    for (headers, reason, description) in [
        (
            vec![("x-api-key", key), ("authorization", bearer.as_str())],
            "credentials_in_several_places",
            malformed,
        ),
        (
            vec![("x-api-key", key), ("authorization", "Bearer eyJ.eyJ.sig")],
            "conflicting_credentials",
            "the request carries more than one kind of credential",
        ),
        (
            vec![("x-api-key", key), ("x-api-key", key)],
            "duplicate_api_key_header",
            malformed,
        ),
        (vec![("x-api-key", "  ")], "empty_api_key_header", malformed),
    ] {
        let (status, response, body) = send(&app, &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_request""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(r#"error_description="{description}""#)),
            "{challenge}"
        );
        assert!(body.contains(description), "{body}");
        assert!(!body.contains(key), "{body}");
        assert_eq!(seen.last(), Some(reason));
    }
    assert_eq!(
        calls.total(),
        before,
        "no store call for malformed requests"
    );
}

#[tokio::test]
async fn a_key_header_next_to_a_bearer_token_conflicts_even_without_bearer_keys() {
    let (keys, _, _) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    // Bearer keys switched off: a prefixed bearer token is then not a key, so the
    // request carries a key and some other credential.
    let app = app(keys.authenticator().without_bearer(), &seen);
    let key = issued.key().expose_secret();
    let bearer = format!("Bearer {key}");
    let (status, _, body) = send(&app, &[("x-api-key", key), ("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("the request carries more than one kind of credential"),
        "{body}"
    );
    assert_eq!(seen.last(), Some("conflicting_credentials"));
    // Another authorization scheme is not a bearer credential: the key decides.
    let (status, _, _) = send(
        &app,
        &[("x-api-key", key), ("authorization", "Basic YWxpY2U6cHc=")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_keys_are_refused_without_any_store_call() {
    let (keys, _, calls) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let before = calls.total();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    let mut typo = key.to_owned();
    let flip = if typo.as_bytes()[20] == b'x' {
        "y"
    } else {
        "x"
    };
    typo.replace_range(20..21, flip);
    let bad = [
        typo,
        key[..key.len() - 1].to_owned(),
        format!("{key}A"),
        key.replace("pk_live_", "pk_test_"),
        "pk_live_".to_owned(),
        "not-a-key".to_owned(),
        key.replacen('_', "-", 3),
    ];
    for candidate in &bad {
        let (status, response, body) = send(&app, &[("x-api-key", candidate)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{candidate}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        assert!(!body.contains(candidate.as_str()));
        assert_eq!(seen.last(), Some("api_key_malformed"));
    }
    // Bearer tokens carrying the prefix are ours, so they are refused the same way.
    let bearer = format!("Bearer {}", bad[0]);
    assert_eq!(
        send(&app, &[("authorization", &bearer)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("api_key_malformed"));
    assert_eq!(calls.total(), before, "the store must not be touched");
}

#[tokio::test]
async fn right_id_wrong_secret_is_refused_by_the_digest_compare() {
    let (keys, _, calls) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let forged = common::forge_same_id(issued.key().expose_secret());
    assert_eq!(keys.format().parse(&forged).unwrap().id(), issued.id());
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let (status, _, forged_body) = send(&app, &[("x-api-key", &forged)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The store was consulted and the digest comparison refused it.
    assert_eq!(calls.lookups(), 1);
    assert_eq!(seen.last(), Some("api_key_mismatch"));

    // An unknown id gets exactly the same answer.
    let stranger = keys.format().generate().unwrap();
    let (status, _, unknown_body) = send(&app, &[("x-api-key", stranger.expose_secret())]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_unknown"));
    assert_eq!(forged_body, unknown_body);
}

#[tokio::test]
async fn concurrent_requests_write_last_use_once() {
    let (keys, _, calls) = setup(CountingStore::async_only());
    let issued = keys.issue(spec()).await.unwrap();
    let app = app(keys.authenticator(), &Seen::default());
    let key = issued.key().expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let app = app.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move { key_status(&app, &key).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(calls.touches(), 1);
}

#[tokio::test]
async fn async_only_store_takes_the_pending_path_with_the_same_answers() {
    let (keys, clock, calls) = setup(CountingStore::async_only());
    let issued = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    let (status, _, body) = send(&app, &[("x-api-key", key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("svc-billing|api_key|"));
    assert_eq!(calls.find.load(Ordering::SeqCst), 1);
    assert_eq!(calls.touch.load(Ordering::SeqCst), 1);

    let forged = common::forge_same_id(key);
    assert_eq!(key_status(&app, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_mismatch"));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(key_status(&app, key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_expired"));
}

#[tokio::test]
async fn store_outage_is_503_not_401() {
    for store in [CountingStore::default(), CountingStore::async_only()] {
        let failing = store.failing.clone();
        let (keys, _, _) = setup(store);
        let issued = keys.issue(spec()).await.unwrap();
        failing.store(true, Ordering::SeqCst);
        let app = app(keys.authenticator(), &Seen::default());
        let (status, response, _) =
            send(&app, &[("x-api-key", issued.key().expose_secret())]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().get("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn peppered_digests_need_the_same_pepper() {
    let store = MemoryStore::new();
    let keys = ApiKeys::new(store.clone(), common::format())
        .with_pepper(&[42u8; 32])
        .unwrap();
    let issued = keys.issue(spec()).await.unwrap();
    let key = issued.key().expose_secret();
    let stored = store.find(issued.id()).await.unwrap().unwrap();
    assert_eq!(
        stored.digest,
        KeyHasher::hmac_sha256(&[42u8; 32])
            .unwrap()
            .digest(&issued.key().parsed())
    );
    assert_ne!(
        stored.digest,
        KeyHasher::sha256().digest(&issued.key().parsed())
    );

    let same = app(keys.authenticator(), &Seen::default());
    assert_eq!(key_status(&same, key).await, StatusCode::OK);
    let standalone = ApiKeyAuthenticator::new(store.clone(), common::format())
        .with_hasher(KeyHasher::hmac_sha256(&[42u8; 32]).unwrap());
    let standalone = app(standalone, &Seen::default());
    assert_eq!(key_status(&standalone, key).await, StatusCode::OK);
    let unpeppered = app(
        ApiKeyAuthenticator::new(store, common::format()),
        &Seen::default(),
    );
    assert_eq!(key_status(&unpeppered, key).await, StatusCode::UNAUTHORIZED);
    assert!(
        ApiKeys::new(MemoryStore::new(), common::format())
            .with_pepper(b"short")
            .is_err()
    );
}

#[tokio::test]
async fn management_lists_by_owner_and_guards_ownership() {
    let (keys, clock, _) = setup(CountingStore::default());
    let a1 = keys
        .issue(NewApiKey::owned_by("alice").name("one"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let a2 = keys
        .issue(NewApiKey::owned_by("alice").name("two"))
        .await
        .unwrap();
    let b = keys
        .issue(NewApiKey::owned_by("bob").name("b"))
        .await
        .unwrap();
    let listed: Vec<_> = keys
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [a1.id(), a2.id()]);
    assert_eq!(
        keys.revoke_owned("alice", b.id()).await.unwrap_err().kind(),
        ApiKeyErrorKind::NotFound
    );
    assert!(
        keys.get(b.id())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(keys.revoke_owned("bob", b.id()).await.unwrap());
    assert_eq!(
        keys.issue(NewApiKey::owned_by("").name("x"))
            .await
            .unwrap_err()
            .kind(),
        ApiKeyErrorKind::InvalidInput
    );
    assert_eq!(
        keys.issue(NewApiKey::owned_by("a").expires_in(Duration::ZERO))
            .await
            .unwrap_err()
            .kind(),
        ApiKeyErrorKind::InvalidInput
    );
    // The store keeps a digest, never the key.
    let json = serde_json::to_string(&keys.get(a1.id()).await.unwrap().unwrap()).unwrap();
    assert!(!json.contains(a1.key().expose_secret()));
    assert!(
        json.contains(
            &keys
                .store()
                .inner
                .find(a1.id())
                .await
                .unwrap()
                .unwrap()
                .digest
                .to_hex()
        )
    );
}

#[tokio::test]
async fn arc_dyn_store_works() {
    let store: Arc<dyn ApiKeyStore> = Arc::new(MemoryStore::new());
    let keys = ApiKeys::new(store, common::format());
    let issued = keys.issue(spec()).await.unwrap();
    let app = app(keys.authenticator(), &Seen::default());
    assert_eq!(
        send(&app, &[("x-api-key", issued.key().expose_secret())])
            .await
            .0,
        StatusCode::OK
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ApiKeyAuthenticator<MemoryStore>>();
    assert_send_sync::<ApiKeys<MemoryStore>>();
    assert_send_sync::<portcullis_apikey::SecretKey>();
    fn assert_send<T: Send>(_: &T) {}
    let keys = ApiKeys::new(MemoryStore::new(), common::format());
    assert_send(&keys.issue(NewApiKey::owned_by("a")));
    assert_send(&keys.rotate("x", Duration::ZERO));
}
