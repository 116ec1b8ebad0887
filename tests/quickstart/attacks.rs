//! The account-security attacks, replayed against the real quickstart process: each
//! test is one way in that must now stay shut.

use super::*;

async fn verified_login(s: &Server, email: &str, password: &str) -> Pair {
    let mail = s.mail(email, "verify_email", 0).await;
    verify_email(s, mail["token"].as_str().unwrap())
        .await
        .expect(204);
    login(s, email, password).await
}

async fn admin_status(s: &Server, access: &str) -> u16 {
    s.get("/admin").bearer(access).go().await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_admin_email_only_its_verified_owner_becomes_admin() {
    let s = Server::start(Options::default().env("ADMIN_EMAIL", "Boss@Example.com")).await;
    // The first stranger to register is no admin.
    register(&s, "stranger@example.com", BOB_PW, None).await;
    let stranger = login(&s, "stranger@example.com", BOB_PW).await;
    assert_eq!(admin_status(&s, &stranger.access).await, 403);
    // Registering the admin address (another letter case) grants nothing yet...
    register(&s, "BOSS@example.COM", ADMIN_PW, None).await;
    let unverified = login(&s, "boss@example.com", ADMIN_PW).await;
    assert_eq!(admin_status(&s, &unverified.access).await, 403);
    // ...until the mailbox's owner verifies it.
    let boss = verified_login(&s, "BOSS@example.COM", ADMIN_PW).await;
    assert_eq!(admin_status(&s, &boss.access).await, 200);
    assert_eq!(admin_status(&s, &stranger.access).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_email_only_the_first_user_is_admin() {
    let s = Server::start(Options::default()).await;
    register(&s, ADMIN, ADMIN_PW, None).await;
    register(&s, BOB, BOB_PW, None).await;
    let first = login(&s, ADMIN, ADMIN_PW).await;
    let second = verified_login(&s, BOB, BOB_PW).await;
    assert_eq!(admin_status(&s, &first.access).await, 200);
    assert_eq!(admin_status(&s, &second.access).await, 403);
}

async fn new_key(s: &Server, access: &str, body: Value) -> String {
    let r = s.post("/api-keys").bearer(access).json(&body).go().await;
    r.expect(201);
    let key = r.json();
    assert!(
        key["expires_at"].as_u64().is_some(),
        "a default lifetime: {key}"
    );
    key["key"].as_str().unwrap().to_owned()
}

async fn data_status(s: &Server, key: &str) -> u16 {
    s.get("/api/data")
        .header("x-api-key", key)
        .go()
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_end_with_a_password_reset_and_with_logout_all() {
    let s = Server::start(Options::default()).await;
    register(&s, BOB, BOB_PW, None).await;
    let session = login(&s, BOB, BOB_PW).await;
    // What a thief with the session would do: mint a key.
    let stolen = new_key(
        &s,
        &session.access,
        json!({ "name": "mine now", "scopes": ["data:read"] }),
    )
    .await;
    let kept = new_key(
        &s,
        &session.access,
        json!({ "name": "ci", "scopes": ["data:read"], "outlives_sessions": true }),
    )
    .await;
    assert_eq!(data_status(&s, &stolen).await, 200);
    let list = s.get("/api-keys").bearer(&session.access).go().await.json();
    assert_eq!(list["keys"][0]["ends_with_sessions"], true, "{list}");

    forgot_password(&s, BOB).await.expect(202);
    let mail = s.mail(BOB, "password_reset", 0).await;
    reset_password(&s, mail["token"].as_str().unwrap(), BOB_NEW_PW)
        .await
        .expect(204);
    assert_eq!(data_status(&s, &stolen).await, 401);
    assert_eq!(
        data_status(&s, &kept).await,
        200,
        "the owner's choice holds"
    );
    assert_eq!(me_status(&s, &session.access).await, 401);
    // The old session cannot mint a new key either.
    s.post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "too late" }))
        .go()
        .await
        .expect(401);

    let session = login(&s, BOB, BOB_NEW_PW).await;
    let second = new_key(
        &s,
        &session.access,
        json!({ "name": "again", "scopes": ["data:read"] }),
    )
    .await;
    assert_eq!(data_status(&s, &second).await, 200);
    s.post("/auth/logout-all")
        .bearer(&session.access)
        .go()
        .await
        .expect(204);
    assert_eq!(data_status(&s, &second).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_retried_after_its_answer_was_lost_keeps_the_session() {
    let s = Server::start(Options::default()).await;
    register(&s, BOB, BOB_PW, None).await;
    let first = login(&s, BOB, BOB_PW).await;
    // The first answer is lost on the way; the client retries with the same token.
    let lost = post_refresh(&s, &first.refresh).await;
    lost.expect(200);
    let retry = post_refresh(&s, &first.refresh).await;
    retry.expect(200);
    let retried = Pair::from_body(&retry.json());
    assert_eq!(retried.refresh, Pair::from_body(&lost.json()).refresh);
    assert_eq!(me_status(&s, &retried.access).await, 200);
    // The session goes on.
    let next = post_refresh(&s, &retried.refresh).await;
    next.expect(200);
    assert_eq!(
        me_status(&s, &Pair::from_body(&next.json()).access).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let s = Server::start(Options::default().env("PUBLIC_URL", "https://app.example.com")).await;
    register(&s, BOB, BOB_PW, None).await;
    let r = s
        .post("/auth/login")
        .json(&json!({ "email": BOB, "password": BOB_PW, "cookie": true }))
        .go()
        .await;
    r.expect(200);
    let cookie = r.set_cookie("qs_refresh").expect("a refresh cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_flood_is_answered_429() {
    let s = Server::start(Options::default()).await;
    let mut limited = 0;
    for _ in 0..80 {
        let r = post_refresh(&s, &"A".repeat(43)).await;
        match r.status.as_u16() {
            401 => {}
            429 => {
                assert!(r.header("retry-after").is_some());
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited >= 15, "only {limited} of 80 refreshes were limited");
    // Logout shares the same per-IP budget.
    let r = s
        .post("/auth/logout")
        .json(&json!({ "refresh_token": "A".repeat(43) }))
        .go()
        .await;
    assert_eq!(r.status.as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_a_password_reset_gets_no_usable_session() {
    use portcullis_sql::sqlx::{self, Connection, PgConnection};
    let Some((s, database, schema)) = on_postgres("race a login against a reset").await else {
        return;
    };
    register(&s, BOB, BOB_PW, None).await;
    forgot_password(&s, BOB).await.expect(202);
    let mail = s.mail(BOB, "password_reset", 0).await;
    let token = mail["token"].as_str().unwrap().to_owned();

    // Hold Bob's row: the reset hashes the new password, then waits to write it.
    let mut holder = PgConnection::connect(&database).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {schema}.quickstart_users WHERE email_key = 'bob@example.com' FOR UPDATE"
    )))
    .execute(&mut holder)
    .await
    .unwrap();
    let reset = tokio::spawn(
        s.post("/auth/reset-password")
            .json(&json!({ "token": token, "password": BOB_NEW_PW }))
            .go(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A login with the old password reads the old hash (reads are not blocked) and
    // starts checking it; the reset is let go while it does.
    let login = tokio::spawn(bob_logs_in(&s));
    tokio::time::sleep(Duration::from_millis(15)).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    reset.await.unwrap().expect(204);
    let login = login.await.unwrap();
    // Whichever finished first, the old password opened no session that survives.
    no_usable_session(&s, "a reset", &login).await;
    login_fails_with_old_password(&s).await;
}

/// Bob's login with his first password, to send off while something else happens.
fn bob_logs_in(s: &Server) -> impl Future<Output = Resp> + Send + 'static {
    s.post("/auth/login")
        .json(&json!({ "email": BOB, "password": BOB_PW }))
        .go()
}

/// A login that began before its sessions were ended got nothing that works now:
/// refused at the store (401), or a pair whose access and refresh tokens are dead.
async fn no_usable_session(s: &Server, ended_by: &str, login: &Resp) {
    eprintln!("the login racing {ended_by} answered {}", login.status);
    if login.status.as_u16() == 200 {
        let pair = Pair::from_body(&login.json());
        assert_eq!(me_status(s, &pair.access).await, 401);
        post_refresh(s, &pair.refresh).await.expect(401);
    } else {
        login.expect(401);
    }
}

async fn login_fails_with_old_password(s: &Server) {
    try_login(s, BOB, BOB_PW).await.expect(401);
    let fresh = login(s, BOB, BOB_NEW_PW).await;
    assert_eq!(me_status(s, &fresh.access).await, 200);
}

/// A client whose connections come from 127.0.`a`.`b`.
fn from_ip(s: &Server, a: u8, b: u8) -> harness::Http {
    harness::Http::from_ip(s.base.clone(), std::net::IpAddr::from([127, 0, a, b]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_on_many_ips_cannot_throttle_the_owner_or_other_accounts() {
    let s = Server::start(Options::default()).await;
    register(&s, BOB, BOB_PW, None).await;
    // A flood of attempts that never reach a password check (422: no password).
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..300u16 {
        let client = from_ip(&s, 1, (i % 15 + 1) as u8);
        flood.spawn(async move {
            client
                .post("/auth/login")
                .json(&json!({ "email": format!("user{i}@example.com") }))
                .go()
                .await
                .status
                .as_u16()
        });
    }
    while let Some(status) = flood.join_next().await {
        assert!(matches!(status.unwrap(), 422 | 429));
    }
    // Guesses at Bob's password from 60 addresses, twice each.
    let mut guesses = tokio::task::JoinSet::new();
    for ip in 0..60u8 {
        let client = from_ip(&s, 2, ip + 1);
        guesses.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..2 {
                let r = client
                    .post("/auth/login")
                    .json(&json!({ "email": BOB, "password": "a wrong guess at it" }))
                    .go()
                    .await;
                statuses.push(r.status.as_u16());
            }
            statuses
        });
    }
    let mut throttled = 0;
    while let Some(statuses) = guesses.join_next().await {
        for status in statuses.unwrap() {
            assert!(matches!(status, 401 | 429), "{status}");
            throttled += usize::from(status == 429);
        }
    }
    assert!(
        throttled > 0,
        "120 guesses at one account and none throttled"
    );
    // Bob, from an address with no failure on his account, gets in at once; so does
    // an account the flood named, from an address that flooded.
    let owner = from_ip(&s, 3, 1)
        .post("/auth/login")
        .json(&json!({ "email": BOB, "password": BOB_PW }))
        .go()
        .await;
    owner.expect(200);
    register(&s, "user7@example.com", ADMIN_PW, None).await;
    from_ip(&s, 4, 1)
        .post("/auth/login")
        .json(&json!({ "email": "user7@example.com", "password": ADMIN_PW }))
        .go()
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_retried_across_a_crash_keeps_the_session() {
    let mut s = Server::start(Options::default()).await;
    register(&s, BOB, BOB_PW, None).await;
    let first = login(&s, BOB, BOB_PW).await;
    // The rotation commits, then the process dies before the client reads the answer.
    post_refresh(&s, &first.refresh).await.expect(200);
    s.kill();
    s.restart().await;
    let retry = post_refresh(&s, &first.refresh).await;
    retry.expect(200);
    let retried = Pair::from_body(&retry.json());
    post_refresh(&s, &retried.refresh).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_logout_all_gets_no_usable_session() {
    let s = Server::start(Options::default()).await;
    register(&s, BOB, BOB_PW, None).await;
    for _ in 0..3 {
        let current = login(&s, BOB, BOB_PW).await;
        // A login starts (reads the stamp and the hash, then spends its time in
        // argon2) while the current session logs out everywhere.
        let racing = tokio::spawn(bob_logs_in(&s));
        tokio::time::sleep(Duration::from_millis(3)).await;
        s.post("/auth/logout-all")
            .bearer(&current.access)
            .go()
            .await
            .expect(204);
        let racing = racing.await.unwrap();
        no_usable_session(&s, "logout-all", &racing).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_within_the_deadline() {
    use portcullis_sql::sqlx::{self, Connection, PgConnection};
    let Some((s, database, schema)) = on_postgres("lock the quickstart's rows").await else {
        return;
    };
    register(&s, BOB, BOB_PW, None).await;
    let pair = login(&s, BOB, BOB_PW).await;
    let mut holder = PgConnection::connect(&database).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT hash FROM {schema}.portcullis_refresh_tokens FOR UPDATE"
    )))
    .execute(&mut holder)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = post_refresh(&s, &pair.refresh).await;
    let took = started.elapsed();
    r.problem(503, "unavailable");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // Nothing was lost: the same refresh token still works.
    post_refresh(&s, &pair.refresh).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_half_open_connections_do_not_stop_a_normal_request() {
    use tokio::{io::AsyncWriteExt, net::TcpStream};
    let s = Server::start(Options::default()).await;
    let mut held = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let mut stream = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        stream.write_all(b"POST /auth/login HT").await.unwrap();
        held.push(stream);
    }
    let started = std::time::Instant::now();
    s.get("/healthz").go().await.expect(200);
    let took = started.elapsed();
    eprintln!("/healthz answered in {took:?} with 10,000 half-open connections held");
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_password_hashes_leaves_memory_bounded_by_the_hashing_concurrency() {
    // argon2id's default cost: 19 MiB of working memory per hash, two at a time on this
    // machine's default (the hasher runs one per core); stated base: 64 MiB for
    // everything else a busy server holds (connections, SQLite's cache, buffers).
    const PER_HASH_MIB: f64 = 19.0;
    const BASE_MIB: f64 = 64.0;
    let s = Server::start(Options::default().env("LOGIN_ATTEMPTS_PER_MINUTE", "100000")).await;
    register(&s, BOB, BOB_PW, None).await;
    try_login(&s, BOB, "not bob's password").await.expect(401);
    let before = s.rss_mib();
    let concurrency = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = before + concurrency * PER_HASH_MIB + BASE_MIB;
    let peak = std::sync::Arc::new(std::sync::Mutex::new(before));
    // 500 registrations, then 500 failed logins, 16 at a time from 100 addresses (the
    // per-IP limits stay out of the way), RSS sampled throughout.
    for (phase, path) in [(0u8, "/auth/register"), (1, "/auth/login")] {
        let mut flood = tokio::task::JoinSet::new();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        for i in 0..500u16 {
            let client = from_ip(&s, 10 + phase, (i % 100 + 1) as u8);
            let gate = gate.clone();
            let body = json!({ "email": format!("flood{i}@example.com"),
                               "password": if phase == 0 { BOB_PW } else { "wrong guess, again" } });
            flood.spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                client.post(path).json(&body).go().await.status.as_u16()
            });
        }
        let mut answered = 0;
        while !flood.is_empty() {
            tokio::select! {
                done = flood.join_next() => {
                    let status = done.unwrap().unwrap();
                    assert_eq!(status, if phase == 0 { 201 } else { 401 }, "{path}");
                    answered += 1;
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let mut p = peak.lock().unwrap();
            *p = p.max(s.rss_mib());
        }
        assert_eq!(answered, 500);
    }
    let peak = *peak.lock().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = s.rss_mib();
    eprintln!(
        "RSS {before:.1} MiB before, {peak:.1} MiB at peak, {after:.1} MiB after idling; bound {bound:.1} MiB"
    );
    assert!(
        peak <= bound,
        "RSS peaked at {peak:.1} MiB, bound {bound:.1} MiB"
    );
    assert!(after <= bound, "RSS {after:.1} MiB after idling");
}

/// The quickstart on PostgreSQL (`DATABASE_URL`) in a schema of its own, with the URL
/// and the schema; `None` (after saying why) without a database, unless under CI.
async fn on_postgres(why: &str) -> Option<(Server, String, String)> {
    let Ok(database) = std::env::var("DATABASE_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true needs DATABASE_URL"
        );
        eprintln!("skipped: set DATABASE_URL to {why} on PostgreSQL");
        return None;
    };
    let schema = format!("qs_attack_{:x}", rand::random::<u64>());
    let s = Server::start(
        Options::default()
            .env("DATABASE_URL", &database)
            .env("DATABASE_SCHEMA", &schema),
    )
    .await;
    Some((s, database, schema))
}
