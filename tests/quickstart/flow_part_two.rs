//! The full flow, continued from `flow.rs`: API keys, logout, logout everywhere,
//! password reset, and a restart on the same data.

use super::*;

/// The second half of `flow::full_flow`, with what it needs from the first.
pub(super) async fn full_flow_part_two(s: &mut Server, kid: String, admin_id: String, bob: Pair) {
    // API keys: shown once, scoped to what the owner holds, revocable.
    let session = login(s, ADMIN, ADMIN_PW).await;
    let r = s
        .post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "reporting", "scopes": ["data:read"], "expires_in": 86_400 }))
        .go()
        .await;
    r.expect(201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let reader = r.json();
    let reader_key = reader["key"].as_str().unwrap().to_owned();
    let reader_id = reader["id"].as_str().unwrap().to_owned();
    assert!(reader_key.starts_with("qs_"), "{reader}");
    assert!(reader["expires_at"].as_u64().is_some());
    let r = s
        .post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "no scopes" }))
        .go()
        .await;
    r.expect(201);
    let bare_key = r.json()["key"].as_str().unwrap().to_owned();
    s.post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "escalate", "scopes": ["admin"] }))
        .go()
        .await
        .problem(422, "invalid_scope");
    s.post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "  " }))
        .go()
        .await
        .problem(422, "invalid_name");
    s.post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "short", "expires_in": 5 }))
        .go()
        .await
        .problem(422, "invalid_expires_in");
    s.post("/api-keys")
        .json(&json!({ "name": "anonymous" }))
        .go()
        .await
        .problem(401, "missing_credentials");
    s.post("/api-keys")
        .header("x-api-key", &reader_key)
        .json(&json!({ "name": "keys cannot mint keys" }))
        .go()
        .await
        .expect(401);
    let list = s.get("/api-keys").bearer(&session.access).go().await;
    list.expect(200);
    let list_text = list.text();
    assert!(
        !list_text.contains(&reader_key) && !list_text.contains("digest"),
        "{list_text}"
    );
    assert_eq!(list.json()["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.get("/api-keys").bearer(&bob.access).go().await.json()["keys"],
        json!([])
    );

    // /api/data: an API key or a JWT, scope data:read.
    let r = s
        .get("/api/data")
        .header("x-api-key", &reader_key)
        .go()
        .await;
    r.expect(200);
    assert_eq!(r.json()["via"], "api_key");
    assert_eq!(r.json()["subject"], admin_id.as_str());
    let r = s.get("/api/data").bearer(&bob.access).go().await;
    r.expect(200);
    assert_eq!(r.json()["via"], "user");
    s.get("/api/data")
        .header("x-api-key", &bare_key)
        .go()
        .await
        .problem(403, "insufficient_scope");
    s.get("/api/data")
        .go()
        .await
        .problem(401, "missing_credentials");
    let mut typo = reader_key.clone();
    let last = if typo.ends_with('A') { "B" } else { "A" };
    typo.replace_range(typo.len() - 1.., last);
    s.get("/api/data")
        .header("x-api-key", &typo)
        .go()
        .await
        .problem(401, "invalid_token");
    s.delete(&format!("/api-keys/{reader_id}"))
        .bearer(&bob.access)
        .go()
        .await
        .problem(404, "not_found");
    s.delete("/api-keys/qs_nonexistent")
        .bearer(&session.access)
        .go()
        .await
        .problem(404, "not_found");
    s.delete(&format!("/api-keys/{reader_id}"))
        .bearer(&session.access)
        .go()
        .await
        .expect(204);
    s.get("/api/data")
        .header("x-api-key", &reader_key)
        .go()
        .await
        .problem(401, "invalid_token");

    // Logout: the refresh family and the presented access token die.
    s.post("/auth/logout")
        .bearer(&session.access)
        .json(&json!({ "refresh_token": session.refresh }))
        .go()
        .await
        .expect(204);
    assert_eq!(me_status(s, &session.access).await, 401);
    post_refresh(s, &session.refresh)
        .await
        .problem(401, "invalid_grant");
    s.post("/auth/logout")
        .json(&json!({ "refresh_token": "not-a-token" }))
        .go()
        .await
        .problem(400, "malformed_refresh_token");

    // Logout everywhere kills live access tokens (verified and cached before) and
    // every session of the user, and nobody else's.
    let one = login(s, ADMIN, ADMIN_PW).await;
    let two = login(s, ADMIN, ADMIN_PW).await;
    assert_eq!(me_status(s, &one.access).await, 200);
    assert_eq!(me_status(s, &two.access).await, 200);
    s.post("/auth/logout-all")
        .go()
        .await
        .problem(401, "missing_credentials");
    s.post("/auth/logout-all")
        .bearer(&one.access)
        .go()
        .await
        .expect(204);
    assert_eq!(me_status(s, &one.access).await, 401);
    assert_eq!(me_status(s, &two.access).await, 401);
    for dead in [&one.refresh, &two.refresh] {
        post_refresh(s, dead).await.problem(401, "invalid_grant");
    }
    assert_eq!(
        me_status(s, &bob.access).await,
        200,
        "other users are untouched"
    );
    // The server answered once the cut-off's second was over: logging in again at once
    // gives a token that works.
    let admin = login(s, ADMIN, ADMIN_PW).await;
    assert_eq!(me_status(s, &admin.access).await, 200);

    // Forgot password: 202 whether or not the address exists, same body.
    let unknown = forgot_password(s, "nobody@example.com").await;
    unknown.expect(202);
    let known = forgot_password(s, "BOB@example.com").await;
    known.expect(202);
    assert_eq!(known.body, unknown.body);
    forgot_password(s, "not an address").await.expect(202);
    let reset_mail = s.mail(BOB, "password_reset", 0).await;
    let reset = reset_mail["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.mail_count("nobody@example.com", "password_reset"), 0);

    // Reset: policy first (the link survives a weak password), then single use, and
    // every session of the account ends.
    let p = reset_password(s, reset, "short")
        .await
        .problem(422, "password_policy");
    assert_eq!(p["rule"], "too_short");
    reset_password(s, &"x".repeat(43), BOB_NEW_PW)
        .await
        .problem(400, "invalid_token");
    reset_password(s, reset, BOB_NEW_PW).await.expect(204);
    reset_password(s, reset, BOB_NEW_PW)
        .await
        .problem(400, "invalid_token");
    assert_eq!(me_status(s, &bob.access).await, 401);
    post_refresh(s, &bob.refresh)
        .await
        .problem(401, "invalid_grant");
    try_login(s, BOB, BOB_PW)
        .await
        .problem(401, "invalid_credentials");
    let bob = login(s, BOB, BOB_NEW_PW).await;

    // A key made before the restart.
    let r = s
        .post("/api-keys")
        .bearer(&admin.access)
        .json(&json!({ "name": "survivor", "scopes": ["data:read"] }))
        .go()
        .await;
    r.expect(201);
    let survivor = r.json()["key"].as_str().unwrap().to_owned();

    // Restart on the same data: keys, users, sessions, API keys and revocations persist.
    s.restart().await;
    assert!(
        s.log().contains(", loaded ("),
        "the signing key was not reloaded:\n{}",
        s.log()
    );
    let jwks = s.get("/.well-known/jwks.json").go().await.json();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    assert_eq!(
        me_status(s, &admin.access).await,
        200,
        "an access token from before the restart"
    );
    assert_eq!(me_status(s, &bob.access).await, 200);
    assert_eq!(
        me_status(s, &one.access).await,
        401,
        "logout-all forgotten by a restart"
    );
    assert_eq!(
        me_status(s, &session.access).await,
        401,
        "logout forgotten by a restart"
    );
    post_refresh(s, &admin.refresh).await.expect(200);
    let r = s.get("/api/data").header("x-api-key", &survivor).go().await;
    r.expect(200);
    s.get("/api/data")
        .header("x-api-key", &reader_key)
        .go()
        .await
        .problem(401, "invalid_token");
    let again = login(s, BOB, BOB_NEW_PW).await;
    assert_eq!(me_status(s, &again.access).await, 200);
}
