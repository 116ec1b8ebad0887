//! The full flow, on SQLite and on PostgreSQL with Redis: routes, registration, login,
//! roles, e-mail verification and refresh here; the rest in `flow_part_two.rs`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_sqlite_survives_a_restart() {
    let mut s = Server::start(Options::default().env("REFRESH_REUSE_SECONDS", "1")).await;
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
            .env("REFRESH_REUSE_SECONDS", "1")
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
    assert!(log.contains("revocation:  database"), "{log}");
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
    let wrong = try_login(s, ADMIN, "another long passphrase").await;
    let wrong_body = wrong.problem(401, "invalid_credentials");
    assert!(wrong.header("www-authenticate").is_some());
    let unknown = try_login(s, "nobody@example.com", ADMIN_PW).await;
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
    // The quickstart takes bearer and DPoP-bound tokens: both schemes are offered.
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="quickstart", DPoP realm="quickstart", algs="ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512""#
        )
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
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(!challenge.contains("scope=\"admin\""), "{challenge}");
    let r = s.get("/admin").bearer(&admin.access).go().await;
    r.expect(200);
    assert_eq!(r.json()["users"], 2);

    // E-mail verification: the token from the mail works once.
    let token = verify_mail["token"].as_str().unwrap();
    verify_email(s, token).await.expect(204);
    verify_email(s, token).await.problem(400, "invalid_token");
    verify_email(s, "abc").await.problem(400, "invalid_token");

    // Refresh rotates; presenting a spent token again (past the reuse interval, one
    // second here) revokes the whole family.
    let r = post_refresh(s, &admin.refresh).await;
    r.expect(200);
    let rotated = Pair::from_body(&r.json());
    assert_ne!(rotated.refresh, admin.refresh);
    assert_eq!(me_status(s, &rotated.access).await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = post_refresh(s, &admin.refresh).await;
    r.problem(401, "invalid_grant");
    assert!(r.header("www-authenticate").is_some());
    post_refresh(s, &rotated.refresh)
        .await
        .problem(401, "invalid_grant");
    post_refresh(s, "garbage")
        .await
        .problem(401, "invalid_grant");
    s.post("/auth/refresh")
        .json(&json!({}))
        .go()
        .await
        .problem(400, "missing_refresh_token");

    flow_part_two::full_flow_part_two(s, kid, admin_id, bob).await;
}
