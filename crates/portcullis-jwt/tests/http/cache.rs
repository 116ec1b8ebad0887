//! The verified-token cache and revocation: hits, expiry, key changes, bounds.

use super::*;

/// Revokes a `jti` once `revoked` is set; counts its calls.
#[derive(Default)]
struct FlagRevocation {
    revoked: AtomicBool,
    calls: AtomicUsize,
    pending: bool,
}

impl Revocation for FlagRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(query.token_id, Some("token-1"));
        assert_eq!(query.issuer, Some(ISSUER));
        let revoked = self.revoked.load(Ordering::SeqCst);
        if self.pending {
            return MaybeReady::pending(async move {
                tokio::task::yield_now().await;
                if revoked {
                    Err(AuthError::invalid_token("token_revoked"))
                } else {
                    Ok(())
                }
            });
        }
        MaybeReady::Ready(if revoked {
            Err(AuthError::revoked())
        } else {
            Ok(())
        })
    }
}

#[tokio::test]
async fn revocation_is_consulted_on_cache_hits() {
    let pair = pair(Algorithm::ES256);
    let revocation = Arc::new(FlagRevocation::default());
    let auth = builder_with(pair.key.clone())
        .revocation(revocation.clone())
        .build()
        .unwrap();
    let app = app(AuthLayer::new(auth.clone()));
    let token = mint(&pair, &claims(), None);
    assert_eq!(send(&app, bearer(&token)).await.status(), StatusCode::OK);
    assert_eq!(auth.cached_tokens(), 1);
    assert_eq!(send(&app, bearer(&token)).await.status(), StatusCode::OK);
    assert_eq!(revocation.calls.load(Ordering::SeqCst), 2);
    revocation.revoked.store(true, Ordering::SeqCst);
    assert_invalid_token(&send(&app, bearer(&token)).await);
    assert_eq!(revocation.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn pending_revocation_maps_to_pending_authentication() {
    let revocation = Arc::new(FlagRevocation {
        pending: true,
        ..Default::default()
    });
    let auth = builder().revocation(revocation.clone()).build().unwrap();
    assert!(matches!(
        auth.verify(&hs256(&claims())),
        MaybeReady::Pending(_)
    ));
    let app = app(AuthLayer::new(auth));
    assert_eq!(
        send(&app, bearer(&hs256(&claims()))).await.status(),
        StatusCode::OK
    );
    revocation.revoked.store(true, Ordering::SeqCst);
    assert_invalid_token(&send(&app, bearer(&hs256(&claims()))).await);
}

#[tokio::test]
async fn changing_keys_drops_the_cache() {
    let es = pair(Algorithm::ES256);
    let auth = builder_with(es.key.clone()).build().unwrap();
    let token = mint(&es, &claims(), None);
    assert_eq!(reason(&auth, &token), "ok");
    assert_eq!(auth.cached_tokens(), 1);
    let generation = auth.key_generation();
    auth.set_keys(KeySet::new([pair(Algorithm::ES384).key]).unwrap());
    assert_eq!(auth.key_generation(), generation + 1);
    assert_eq!(auth.cached_tokens(), 0);
    assert_eq!(reason(&auth, &token), "alg_mismatch");
}

#[test]
fn cache_entries_die_at_exp_by_the_clock() {
    let now = Arc::new(AtomicUsize::new(NOW as usize));
    let clock = {
        let now = now.clone();
        move || {
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(now.load(Ordering::SeqCst) as u64)
        }
    };
    let es = pair(Algorithm::ES256);
    let auth = builder_with(es.key.clone()).clock(clock).build().unwrap();
    let token = mint(&es, &claims(), None); // exp = NOW + 600
    assert_eq!(reason(&auth, &token), "ok");
    assert_eq!(auth.cached_tokens(), 1);
    now.store((NOW + 600 + 59) as usize, Ordering::SeqCst);
    assert_eq!(reason(&auth, &token), "ok", "within leeway, from the cache");
    now.store((NOW + 600 + 60) as usize, Ordering::SeqCst);
    assert_eq!(reason(&auth, &token), "token_expired");
}

#[test]
fn cache_is_bounded_and_can_be_turned_off() {
    let auth = builder()
        .cache_capacity(NonZeroUsize::new(16).unwrap())
        .build()
        .unwrap();
    for i in 0..200 {
        let mut c = claims();
        c["jti"] = json!(format!("t{i}"));
        assert_eq!(reason(&auth, &hs256(&c)), "ok");
        assert!(auth.cached_tokens() <= 16);
    }
    let off = builder().without_cache().build().unwrap();
    assert_eq!(reason(&off, &hs256(&claims())), "ok");
    assert_eq!(off.cached_tokens(), 0);
}

/// A token in the cache is looked up from the header's raw bytes first: that shortcut
/// must answer exactly as the full path does for every request shape around it.
#[tokio::test]
async fn cached_tokens_get_the_same_answers_as_fresh_ones() {
    let auth = builder().build().unwrap();
    let router = app(AuthLayer::new(auth.clone()));
    let token = hs256(&claims());
    assert_eq!(send(&router, bearer(&token)).await.status(), StatusCode::OK);
    assert_eq!(auth.cached_tokens(), 1);

    let with = |values: &[String]| {
        let mut req = Request::get("/me");
        for v in values {
            req = req.header("authorization", v);
        }
        req.body(Body::empty()).unwrap()
    };
    // Other spellings of the same credential still work.
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer  {token}"),
        format!("Bearer {token} "),
    ] {
        let response = send(&router, with(std::slice::from_ref(&value))).await;
        assert_eq!(response.status(), StatusCode::OK, "{value:?}");
    }
    // Malformed requests around a cached token are still refused as such.
    let twice = [format!("Bearer {token}"), format!("Bearer {token}")];
    let response = send(&router, with(&twice)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(&router, with(&[format!("Bearer {token} x")])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A token that is the cached one plus or minus a byte is not the cached one.
    let response = send(&router, with(&[format!("Bearer {token}x")])).await;
    assert_invalid_token(&response);
    let response = send(
        &router,
        with(&[format!("Bearer {}", &token[..token.len() - 1])]),
    )
    .await;
    assert_invalid_token(&response);

    // With a cookie source configured too, a token in both places is refused even
    // when the header's token is cached.
    let sources = TokenSources::default().with_cookie("at");
    let auth = builder().token_sources(sources).build().unwrap();
    let router = app(AuthLayer::new(auth.clone()));
    assert_eq!(send(&router, bearer(&token)).await.status(), StatusCode::OK);
    assert_eq!(auth.cached_tokens(), 1);
    let mut req = bearer(&token);
    req.headers_mut()
        .insert("cookie", format!("at={token}").parse().unwrap());
    assert_eq!(send(&router, req).await.status(), StatusCode::BAD_REQUEST);
}

/// A token that had to wait for its second sight to enter a full cache is served from
/// it like any other: revocation is consulted on each hit, and it dies at its `exp`.
#[test]
fn revocation_and_expiry_apply_to_a_token_admitted_on_second_sight() {
    let now = Arc::new(AtomicUsize::new(NOW as usize));
    let clock = {
        let now = now.clone();
        move || {
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(now.load(Ordering::SeqCst) as u64)
        }
    };
    let revocation = Arc::new(FlagRevocation::default());
    let auth = builder()
        .cache_capacity(NonZeroUsize::new(2).unwrap())
        .clock(clock)
        .revocation(revocation.clone())
        .build()
        .unwrap();
    // Two other users fill both places of the one set, and keep using them.
    let others: Vec<String> = (0..2)
        .map(|i| {
            let mut c = claims();
            c["sub"] = json!(format!("user-{i}"));
            c["exp"] = json!(NOW + 6_000);
            hs256(&c)
        })
        .collect();
    for token in others.iter().chain(&others) {
        assert_eq!(reason(&auth, token), "ok");
    }
    assert_eq!(auth.cached_tokens(), 2);

    let token = hs256(&claims()); // exp = NOW + 600
    assert_eq!(reason(&auth, &token), "ok", "verified, not yet admitted");
    assert_eq!(reason(&auth, &token), "ok", "verified again, now admitted");
    assert_eq!(auth.cached_tokens(), 2, "in place of one other");
    let calls = revocation.calls.load(Ordering::SeqCst);
    assert_eq!(reason(&auth, &token), "ok");
    assert_eq!(revocation.calls.load(Ordering::SeqCst), calls + 1);
    revocation.revoked.store(true, Ordering::SeqCst);
    assert_ne!(reason(&auth, &token), "ok", "revoked, though cached");
    revocation.revoked.store(false, Ordering::SeqCst);
    now.store((NOW + 600 + 59) as usize, Ordering::SeqCst);
    assert_eq!(reason(&auth, &token), "ok");
    now.store((NOW + 600 + 60) as usize, Ordering::SeqCst);
    assert_eq!(reason(&auth, &token), "token_expired");
}
