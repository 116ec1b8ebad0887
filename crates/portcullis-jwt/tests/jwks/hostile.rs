//! Slow and hostile providers: timeouts, size caps, redirects.

use super::*;

#[tokio::test]
async fn slow_provider_times_out_and_no_request_hangs() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.mode = Mode::Hang);
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(5),
        p.builder().timeout(Duration::from_millis(300)).start(),
    )
    .await
    .expect("start must give up by itself")
    .unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Mid-run: a token waiting on a refetch from a hanging provider is answered.
    p.set(|s| s.mode = Mode::Normal);
    let keys = p
        .builder()
        .timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let jwt = authenticator([keys]);
    p.set(|s| s.mode = Mode::Hang);
    let unknown = k1.token_for(&p.issuer, "k-new");
    let answer = tokio::time::timeout(Duration::from_secs(5), check(&jwt, &unknown))
        .await
        .expect("no request hangs past the fetch timeout");
    assert_eq!(answer.unwrap_err().reason(), "unknown_kid");
    assert!(check(&jwt, &k1.token(&p.issuer)).await.is_ok());
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let p = Provider::start("", String::new()).await;
    p.set(|s| s.mode = Mode::Malformed);
    let e = p
        .builder()
        .jwks_url(p.url("/jwks"))
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Malformed, "{e}");
    p.set(|s| {
        s.mode = Mode::Normal;
        s.jwks = r#"{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","alg":"HS256"}]}"#.into();
    });
    let e = p.builder().start().await.unwrap_err();
    assert_eq!(
        e.kind(),
        JwksErrorKind::NoUsableKeys,
        "a remote secret is never used"
    );
}

#[tokio::test]
async fn ten_megabyte_documents_are_refused_by_the_size_cap() {
    let p = Provider::start("", String::new()).await;
    p.set(|s| s.mode = Mode::HugeDeclared);
    let started = std::time::Instant::now();
    let e = p.builder().start().await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::TooLarge, "{e}");

    p.set(|s| s.mode = Mode::HugeStreamed);
    let e = p.builder().start().await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::TooLarge, "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Reading stopped soon after the 256 KiB cap: the rest was never produced.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let produced = p.streamed.load(Ordering::SeqCst);
    eprintln!("the provider produced {produced} bytes of 10 MiB");
    assert!(produced < 10 << 20, "produced {produced} bytes");
}

#[tokio::test]
async fn redirects_leave_the_origin_never() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    let other = Provider::start("", jwks(&[&k1])).await;
    let start = |path: String| RemoteKeys::builder(p.issuer.clone()).jwks_url(path).start();

    // Same origin: followed.
    start(p.url("/redirect/same")).await.unwrap();
    assert_eq!(p.hits(), 1);
    // 127.0.0.1 -> localhost: another host.
    let e = start(p.url("/redirect/localhost")).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Redirect, "{e}");
    // Same IP, another port: another origin.
    let e = start(p.url(&format!("/redirect/{}", other.addr.port())))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Redirect, "{e}");
    assert_eq!(p.hits(), 1);
    assert_eq!(other.hits(), 0);
}
