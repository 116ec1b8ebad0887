//! Guarding the login and the session: the login throttle, cookie sessions with CSRF
//! protection, and a required verified e-mail address.

use super::*;

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
            try_login(&s, account, ADMIN_PW)
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
    // Dave registers first, Carol second: ADMIN_EMAIL makes her admin anyway, once
    // she has verified the address.
    register(&s, "dave@example.com", BOB_PW, None).await;
    register(&s, "Carol@Example.com", ADMIN_PW, Some("Carol")).await;
    let mail = s.mail("Carol@Example.com", "verify_email", 0).await;
    verify_email(&s, mail["token"].as_str().unwrap())
        .await
        .expect(204);

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
    post_refresh(&s, &new_refresh)
        .await
        .problem(401, "invalid_grant");
}

/// `REQUIRE_VERIFIED_EMAIL`: the right password is not enough until the address is
/// verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_email_can_be_required() {
    let s = Server::start(Options::default().env("REQUIRE_VERIFIED_EMAIL", "true")).await;
    register(&s, "erin@example.com", ADMIN_PW, None).await;
    try_login(&s, "erin@example.com", ADMIN_PW)
        .await
        .problem(403, "email_not_verified");
    try_login(&s, "erin@example.com", BOB_PW)
        .await
        .problem(401, "invalid_credentials");
    let mail = s.mail("erin@example.com", "verify_email", 0).await;
    verify_email(&s, mail["token"].as_str().unwrap())
        .await
        .expect(204);
    login(&s, "erin@example.com", ADMIN_PW).await;
}
