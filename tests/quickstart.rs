//! End to end: the compiled quickstart example, run as a process on loopback with a
//! temporary data directory (SQLite), driven over real HTTP. Under `CI=true` with
//! `DATABASE_URL` and `REDIS_URL`, the same flow runs on PostgreSQL and Redis.
//!
//! Passwords are hashed at the default argon2id cost, so the suite keeps the number of
//! hashes small (about 30).

#[path = "quickstart/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Options, Server};
use serde_json::{Value, json};

const ADMIN: &str = "Admin@Example.com";
const ADMIN_PW: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PW: &str = "bob's very long passphrase";
const BOB_NEW_PW: &str = "bob's even longer new passphrase";

/// A token pair from a login or refresh.
#[derive(Debug, Clone)]
struct Pair {
    access: String,
    refresh: String,
}

async fn login(s: &Server, email: &str, password: &str) -> Pair {
    let r = s
        .post("/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .go()
        .await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    Pair {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    }
}

async fn me_status(s: &Server, access: &str) -> u16 {
    s.get("/me").bearer(access).go().await.status.as_u16()
}

async fn register(s: &Server, email: &str, password: &str, name: Option<&str>) -> Value {
    let mut body = json!({ "email": email, "password": password });
    if let Some(name) = name {
        body["name"] = name.into();
    }
    let r = s.post("/auth/register").json(&body).go().await;
    r.expect(201);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_sqlite_survives_a_restart() {
    let mut s = Server::start(Options::default()).await;
    assert!(s.data_dir.path().join("quickstart.db").exists());
    full_flow(&mut s).await;
}

/// PostgreSQL and Redis, when configured (always under `CI=true`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_postgres_and_redis() {
    let (Ok(database), Ok(redis)) = (std::env::var("DATABASE_URL"), std::env::var("REDIS_URL"))
    else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true needs DATABASE_URL and REDIS_URL for the quickstart's PostgreSQL/Redis run"
        );
        eprintln!(
            "skipped: set DATABASE_URL and REDIS_URL to run the quickstart on PostgreSQL and Redis"
        );
        return;
    };
    // A schema and a key prefix of our own: the run starts from empty tables (the
    // first user becomes admin) and leaves other data alone.
    let unique = format!("{:x}", rand::random::<u64>());
    let schema = format!("qs_test_{unique}");
    let prefix = format!("quickstart-test:{unique}:");
    let mut s = Server::start(
        Options::default()
            .env("DATABASE_URL", &database)
            .env("DATABASE_SCHEMA", &schema)
            .env("REDIS_URL", &redis)
            .env("REDIS_PREFIX", &prefix),
    )
    .await;
    assert!(
        !s.data_dir.path().join("quickstart.db").exists(),
        "PostgreSQL was configured, yet a SQLite file was made"
    );
    let log = s.log();
    assert!(log.contains("storage:     postgres"), "{log}");
    assert!(log.contains("revocation:  redis"), "{log}");
    full_flow(&mut s).await;
    s.kill();
    drop_schema(&database, &schema).await;
}

async fn drop_schema(database: &str, schema: &str) {
    use portcullis_sql::sqlx::{self, Connection, postgres::PgConnection};
    let Ok(mut conn) = PgConnection::connect(database).await else {
        return;
    };
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await;
    let _ = conn.close().await;
}

async fn full_flow(s: &mut Server) {
    // Bare routes, fallbacks, the JWK Set.
    let r = s.get("/healthz").go().await;
    r.expect(200);
    assert_eq!(r.text(), "ok");
    s.get("/no-such-route").go().await.problem(404, "not_found");
    s.delete("/healthz")
        .go()
        .await
        .problem(405, "method_not_allowed");
    let jwks = s.get("/.well-known/jwks.json").go().await;
    jwks.expect(200);
    let jwks = jwks.json();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "private key published: {jwks}"
    );
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();

    // Registration: bad bodies and policy failures, each a problem.
    s.post("/auth/register")
        .raw("text/plain", "hello")
        .go()
        .await
        .problem(415, "unsupported_media_type");
    s.post("/auth/register")
        .raw("application/json", r#"{"email": "#)
        .go()
        .await
        .problem(400, "malformed_json");
    let p = s
        .post("/auth/register")
        .json(&json!({ "email": "x@example.com" }))
        .go()
        .await
        .problem(422, "invalid_body");
    assert_eq!(p["detail"], "missing field `password`");
    let p = s
        .post("/auth/register")
        .json(&json!({ "email": "x@example.com", "password": 123_456_789_012_u64 }))
        .go()
        .await
        .problem(422, "invalid_body");
    assert!(!p.to_string().contains("123456789012"), "value echoed: {p}");
    s.post("/auth/register")
        .json(&json!({ "email": "x@example.com", "password": ADMIN_PW, "admin": true }))
        .go()
        .await
        .problem(422, "invalid_body");
    s.post("/auth/register")
        .json(&json!({ "email": "not-an-address", "password": ADMIN_PW }))
        .go()
        .await
        .problem(422, "invalid_email");
    let p = s
        .post("/auth/register")
        .json(&json!({ "email": ADMIN, "password": "short" }))
        .go()
        .await
        .problem(422, "password_policy");
    assert_eq!(p["rule"], "too_short");
    assert_eq!(p["limit"], 8);
    let p = s
        .post("/auth/register")
        .json(&json!({ "email": ADMIN, "password": "password1" }))
        .go()
        .await
        .problem(422, "password_policy");
    assert_eq!(p["rule"], "common");
    let p = s
        .post("/auth/register")
        .json(&json!({ "email": ADMIN, "password": ADMIN }))
        .go()
        .await
        .problem(422, "password_policy");
    assert_eq!(p["rule"], "context_specific");
    let huge = json!({ "email": "x@example.com", "password": "p".repeat(20_000) });
    s.post("/auth/register")
        .json(&huge)
        .go()
        .await
        .problem(413, "payload_too_large");

    // The first user is an admin; a taken address (any case) answers exactly like a
    // new one, and its owner is told by mail instead.
    let created = register(s, ADMIN, ADMIN_PW, Some("Ada")).await;
    let duplicate = register(s, "admin@example.COM", "another long passphrase", None).await;
    assert_eq!(
        created["message"], duplicate["message"],
        "a taken address must answer like a new one"
    );
    assert_eq!(
        created.as_object().unwrap().keys().collect::<Vec<_>>(),
        duplicate.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    s.mail(ADMIN, "already_registered", 0).await;
    let verify_mail = s.mail(ADMIN, "verify_email", 0).await;
    assert_eq!(s.mail_count(ADMIN, "verify_email"), 1);
    register(s, BOB, BOB_PW, None).await;

    // Login: one generic 401 for a wrong password and an unknown account.
    let wrong = s
        .post("/auth/login")
        .json(&json!({ "email": ADMIN, "password": "another long passphrase" }))
        .go()
        .await;
    let wrong_body = wrong.problem(401, "invalid_credentials");
    assert!(wrong.header("www-authenticate").is_some());
    let unknown = s
        .post("/auth/login")
        .json(&json!({ "email": "nobody@example.com", "password": ADMIN_PW }))
        .go()
        .await;
    assert_eq!(unknown.problem(401, "invalid_credentials"), wrong_body);
    s.post("/auth/login")
        .json(&json!({ "email": ADMIN }))
        .go()
        .await
        .problem(422, "invalid_body");

    let admin = login(s, "ADMIN@example.com", ADMIN_PW).await;
    let bob = login(s, BOB, BOB_PW).await;

    // /me and /admin.
    let r = s.get("/me").go().await;
    r.problem(401, "missing_credentials");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="quickstart""#)
    );
    let r = s.get("/me").bearer("not.a.jwt").go().await;
    r.problem(401, "invalid_token");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let me = s.get("/me").bearer(&admin.access).go().await;
    me.expect(200);
    let me = me.json();
    let admin_id = me["subject"].as_str().unwrap().to_owned();
    assert!(admin_id.starts_with("usr_"), "{me}");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["roles"], json!(["admin", "user"]));
    assert_eq!(me["scopes"], json!(["data:read"]));
    assert_eq!(me["issuer"], s.base.as_str());
    let bob_me = s.get("/me").bearer(&bob.access).go().await.json();
    assert_eq!(bob_me["roles"], json!(["user"]));
    let r = s.get("/admin").bearer(&bob.access).go().await;
    // A missing role is named as a role, never as an OAuth scope.
    assert_eq!(r.problem(403, "insufficient_role")["role"], "admin");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(!challenge.contains("scope=\"admin\""), "{challenge}");
    let r = s.get("/admin").bearer(&admin.access).go().await;
    r.expect(200);
    assert_eq!(r.json()["users"], 2);

    // E-mail verification: the token from the mail works once.
    let token = verify_mail["token"].as_str().unwrap();
    s.post("/auth/verify-email")
        .json(&json!({ "token": token }))
        .go()
        .await
        .expect(204);
    s.post("/auth/verify-email")
        .json(&json!({ "token": token }))
        .go()
        .await
        .problem(400, "invalid_token");
    s.post("/auth/verify-email")
        .json(&json!({ "token": "abc" }))
        .go()
        .await
        .problem(400, "invalid_token");

    // Refresh rotates; presenting a spent token revokes the whole family.
    let r = s
        .post("/auth/refresh")
        .json(&json!({ "refresh_token": admin.refresh }))
        .go()
        .await;
    r.expect(200);
    let body = r.json();
    let rotated = Pair {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    };
    assert_ne!(rotated.refresh, admin.refresh);
    assert_eq!(me_status(s, &rotated.access).await, 200);
    let r = s
        .post("/auth/refresh")
        .json(&json!({ "refresh_token": admin.refresh }))
        .go()
        .await;
    r.problem(401, "invalid_grant");
    assert!(r.header("www-authenticate").is_some());
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": rotated.refresh }))
        .go()
        .await
        .problem(401, "invalid_grant");
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": "garbage" }))
        .go()
        .await
        .problem(401, "invalid_grant");
    s.post("/auth/refresh")
        .json(&json!({}))
        .go()
        .await
        .problem(400, "missing_refresh_token");

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
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": session.refresh }))
        .go()
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
        s.post("/auth/refresh")
            .json(&json!({ "refresh_token": dead }))
            .go()
            .await
            .problem(401, "invalid_grant");
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
    let unknown = s
        .post("/auth/forgot-password")
        .json(&json!({ "email": "nobody@example.com" }))
        .go()
        .await;
    unknown.expect(202);
    let known = s
        .post("/auth/forgot-password")
        .json(&json!({ "email": "BOB@example.com" }))
        .go()
        .await;
    known.expect(202);
    assert_eq!(known.body, unknown.body);
    s.post("/auth/forgot-password")
        .json(&json!({ "email": "not an address" }))
        .go()
        .await
        .expect(202);
    let reset_mail = s.mail(BOB, "password_reset", 0).await;
    let reset = reset_mail["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.mail_count("nobody@example.com", "password_reset"), 0);

    // Reset: policy first (the link survives a weak password), then single use, and
    // every session of the account ends.
    let p = s
        .post("/auth/reset-password")
        .json(&json!({ "token": reset, "password": "short" }))
        .go()
        .await
        .problem(422, "password_policy");
    assert_eq!(p["rule"], "too_short");
    s.post("/auth/reset-password")
        .json(&json!({ "token": "x".repeat(43), "password": BOB_NEW_PW }))
        .go()
        .await
        .problem(400, "invalid_token");
    s.post("/auth/reset-password")
        .json(&json!({ "token": reset, "password": BOB_NEW_PW }))
        .go()
        .await
        .expect(204);
    s.post("/auth/reset-password")
        .json(&json!({ "token": reset, "password": BOB_NEW_PW }))
        .go()
        .await
        .problem(400, "invalid_token");
    assert_eq!(me_status(s, &bob.access).await, 401);
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": bob.refresh }))
        .go()
        .await
        .problem(401, "invalid_grant");
    s.post("/auth/login")
        .json(&json!({ "email": BOB, "password": BOB_PW }))
        .go()
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
    let r = s
        .post("/auth/refresh")
        .json(&json!({ "refresh_token": admin.refresh }))
        .go()
        .await;
    r.expect(200);
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

/// The login throttle: a burst of failures for one account ends in `429` with
/// `Retry-After`, the same for an account that does not exist, and the right password
/// does not get through while the account is backing off.
///
/// The guesses are sent at once: the throttle counts an attempt when it arrives, not
/// when its (slow, argon2) answer is ready, so a parallel burst is throttled too, and
/// the test does not depend on how fast this machine hashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttle_answers_429_with_retry_after() {
    let s = Server::start(Options::default()).await;
    register(&s, "victim@example.com", ADMIN_PW, None).await;
    let mut bodies = Vec::new();
    for account in ["victim@example.com", "ghost@example.com"] {
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let request = s
                .client
                .post("/auth/login")
                .json(&json!({ "email": account, "password": "not the password at all" }));
            burst.spawn(request.go());
        }
        if account == "victim@example.com" {
            // The burst is counted on arrival and is still being hashed: the account
            // is backing off now, and the right password waits too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.post("/auth/login")
                .json(&json!({ "email": account, "password": ADMIN_PW }))
                .go()
                .await
                .problem(429, "rate_limited");
        }
        let mut failures = 0;
        let mut refused = Vec::new();
        while let Some(r) = burst.join_next().await {
            let r = r.expect("request task");
            match r.status.as_u16() {
                401 => failures += 1,
                429 => refused.push(r),
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
        assert!(
            failures >= 5,
            "only {failures} attempts reached the password check"
        );
        assert!(
            !refused.is_empty(),
            "10 parallel failures for {account} and no 429"
        );
        for r in &refused {
            let retry: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("Retry-After in seconds");
            assert!((1..=900).contains(&retry), "Retry-After {retry}");
            assert!(r.header("ratelimit-policy").is_some());
            let mut body = r.problem(429, "rate_limited");
            // The body names the wait, as the header does; the wait itself may differ
            // by the second that passed between the two floods.
            assert_eq!(body["retry_after"], retry, "{body}");
            body.as_object_mut().unwrap().remove("retry_after");
            bodies.push(body);
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "existing and unknown accounts look alike"
    );
}

/// The cookie mode of the browser flow over plain HTTP: the refresh token only in an
/// `HttpOnly` cookie, and CSRF protection on cookie-authenticated writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_the_csrf_token() {
    let s = Server::start(
        Options::default()
            .arg("--admin-email")
            .arg("carol@example.com"),
    )
    .await;
    // Dave registers first, Carol second: ADMIN_EMAIL makes her admin anyway.
    register(&s, "dave@example.com", BOB_PW, None).await;
    register(&s, "Carol@Example.com", ADMIN_PW, Some("Carol")).await;

    let page = s.get("/").go().await;
    page.expect(200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("script-src");
    assert!(script_src.starts_with("script-src 'sha256-"), "{csp}");
    assert!(!script_src.contains("unsafe"), "{csp}");

    let r = s
        .post("/auth/login")
        .json(&json!({ "email": "carol@example.com", "password": ADMIN_PW, "cookie": true }))
        .go()
        .await;
    r.expect(200);
    let body = r.json();
    assert!(
        body.get("refresh_token").is_none(),
        "refresh token in the body: {body}"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let set = r.set_cookie("qs_refresh").expect("refresh cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "loopback serves plain HTTP: {set}");
    assert_eq!(r.cookie_value("qs_csrf").as_deref(), Some(csrf.as_str()));
    let refresh = r.cookie_value("qs_refresh").unwrap();
    let me = s.get("/me").bearer(&access).go().await.json();
    assert_eq!(me["roles"], json!(["admin", "user"]));

    let cookie = format!("qs_refresh={refresh}; qs_csrf={csrf}");
    let attempt = |extra: &[(&str, &str)]| {
        let mut req = s
            .post("/auth/refresh")
            .header("cookie", &cookie)
            .json(&json!({}));
        for (k, v) in extra {
            req = req.header(k, v);
        }
        req.go()
    };
    attempt(&[]).await.problem(403, "csrf");
    attempt(&[("x-csrf-token", "forged")])
        .await
        .problem(403, "csrf");
    attempt(&[("x-csrf-token", &csrf), ("origin", "http://evil.example")])
        .await
        .problem(403, "csrf");
    attempt(&[("x-csrf-token", &csrf), ("sec-fetch-site", "cross-site")])
        .await
        .problem(403, "csrf");
    // Two refresh cookies (one planted): neither is trusted.
    s.post("/auth/refresh")
        .header("cookie", &format!("{cookie}; qs_refresh=planted"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .go()
        .await
        .problem(400, "missing_refresh_token");

    let r = attempt(&[("x-csrf-token", &csrf), ("origin", &s.base)]).await;
    r.expect(200);
    let body = r.json();
    let new_refresh = r.cookie_value("qs_refresh").unwrap();
    let new_csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    assert_ne!(new_csrf, csrf);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        me_status(&s, body["access_token"].as_str().unwrap()).await,
        200
    );

    // Logout by cookie: CSRF needed too; the cookies are cleared.
    let cookie = format!("qs_refresh={new_refresh}; qs_csrf={new_csrf}");
    s.post("/auth/logout")
        .header("cookie", &cookie)
        .json(&json!({}))
        .go()
        .await
        .problem(403, "csrf");
    let r = s
        .post("/auth/logout")
        .header("cookie", &cookie)
        .header("x-csrf-token", &new_csrf)
        .json(&json!({}))
        .go()
        .await;
    r.expect(204);
    assert!(r.set_cookie("qs_refresh").unwrap().contains("Max-Age=0"));
    s.post("/auth/refresh")
        .json(&json!({ "refresh_token": new_refresh }))
        .go()
        .await
        .problem(401, "invalid_grant");
}

/// `REQUIRE_VERIFIED_EMAIL`: the right password is not enough until the address is
/// verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_email_can_be_required() {
    let s = Server::start(Options::default().env("REQUIRE_VERIFIED_EMAIL", "true")).await;
    register(&s, "erin@example.com", ADMIN_PW, None).await;
    s.post("/auth/login")
        .json(&json!({ "email": "erin@example.com", "password": ADMIN_PW }))
        .go()
        .await
        .problem(403, "email_not_verified");
    s.post("/auth/login")
        .json(&json!({ "email": "erin@example.com", "password": BOB_PW }))
        .go()
        .await
        .problem(401, "invalid_credentials");
    let mail = s.mail("erin@example.com", "verify_email", 0).await;
    s.post("/auth/verify-email")
        .json(&json!({ "token": mail["token"] }))
        .go()
        .await
        .expect(204);
    login(&s, "erin@example.com", ADMIN_PW).await;
}
