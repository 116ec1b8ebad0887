//! Opaque tokens by RFC 7662 introspection against an endpoint on loopback: client
//! authentication, the checks, the cache, coalescing, revocation and outages.
#![cfg(feature = "introspection")]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use portcullis_core::{
    AuthError, AuthErrorKind, MaybeReady, Principal, PrincipalKind, Revocation, RevocationQuery,
};
use portcullis_jwt::{
    Algorithm, JwtAuthenticator, Key,
    introspection::{
        Introspected, IntrospectionAuthenticator, IntrospectionAuthenticatorBuilder,
        IntrospectionError, IntrospectionErrorKind,
    },
};
use serde_json::{Value, json};

const ISSUER: &str = "https://as.example";

#[derive(Default)]
struct Endpoint {
    hits: AtomicUsize,
    /// The form of the last call, and its Authorization header.
    last: Mutex<(String, Option<String>)>,
    /// What it answers, by token.
    answers: Mutex<Vec<(String, Value)>>,
    delay: Mutex<Duration>,
    huge: AtomicBool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn introspect(State(e): State<Arc<Endpoint>>, headers: HeaderMap, body: String) -> Response {
    e.hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    *e.last.lock().unwrap() = (body.clone(), auth);
    let delay = *e.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if e.huge.load(Ordering::SeqCst) {
        return ([("content-type", "application/json")], vec![b' '; 10 << 20]).into_response();
    }
    let token: String = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let answer = e
        .answers
        .lock()
        .unwrap()
        .iter()
        .find(|(t, _)| *t == token)
        .map(|(_, a)| a.clone())
        .unwrap_or(json!({"active": false}));
    (StatusCode::OK, axum::Json(answer)).into_response()
}

async fn start() -> (Arc<Endpoint>, SocketAddr) {
    let endpoint = Arc::new(Endpoint::default());
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(Arc::clone(&endpoint));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, addr)
}

fn answer(e: &Endpoint, token: &str, value: Value) {
    e.answers.lock().unwrap().push((token.to_owned(), value));
}

fn builder(addr: SocketAddr) -> IntrospectionAuthenticatorBuilder {
    IntrospectionAuthenticator::builder(format!("http://{addr}/introspect"))
        .client_secret_basic("resource server", "s3cret:&=")
        .issuer(ISSUER)
        .audience("api")
}

async fn check(auth: &IntrospectionAuthenticator, token: &str) -> Result<Principal, AuthError> {
    match auth.introspect(token) {
        MaybeReady::Ready(r) => r.map(|p| p.expect("a principal")),
        MaybeReady::Pending(f) => f.await.map(|p| p.expect("a principal")),
    }
}

fn source_kind(e: &AuthError) -> IntrospectionErrorKind {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<IntrospectionError>())
        .expect("an IntrospectionError source")
        .kind()
}

fn alice() -> Value {
    json!({"active": true, "sub": "alice", "aud": "api", "scope": "read write",
        "client_id": "web", "exp": now() + 300, "jti": "op-1", "token_type": "Bearer"})
}

#[tokio::test]
async fn active_token_authenticates_with_client_secret_basic() {
    let (e, addr) = start().await;
    answer(&e, "opaque-1", alice());
    let auth = builder(addr).build().unwrap();
    let p = check(&auth, "opaque-1").await.unwrap();
    assert_eq!((p.subject(), p.kind()), ("alice", PrincipalKind::User));
    assert_eq!(p.issuer(), Some(ISSUER));
    assert!(p.has_scope("read") && p.has_scope("write"));
    assert!(p.claims::<Introspected>().is_some());
    let (form, basic) = e.last.lock().unwrap().clone();
    assert!(form.contains("token=opaque-1") && form.contains("token_type_hint=access_token"));
    assert!(!form.contains("client_secret"));
    // RFC 6749 §2.3.1: id and secret form-encoded, then Base64.
    use base64::Engine as _;
    let expected =
        base64::engine::general_purpose::STANDARD.encode("resource+server:s3cret%3A%26%3D");
    assert_eq!(basic, Some(format!("Basic {expected}")));
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_form() {
    let (e, addr) = start().await;
    answer(&e, "opaque-2", alice());
    let auth = builder(addr)
        .client_secret_post("rs", "pw")
        .build()
        .unwrap();
    check(&auth, "opaque-2").await.unwrap();
    let (form, basic) = e.last.lock().unwrap().clone();
    assert!(form.contains("client_id=rs") && form.contains("client_secret=pw"));
    assert_eq!(basic, None);
}

#[tokio::test]
async fn client_credentials_token_is_the_client() {
    let (e, addr) = start().await;
    answer(
        &e,
        "cc",
        json!({"active": true, "client_id": "billing", "aud": ["api"], "exp": now() + 60}),
    );
    let p = check(&builder(addr).build().unwrap(), "cc").await.unwrap();
    assert_eq!((p.subject(), p.kind()), ("billing", PrincipalKind::Service));
}

#[tokio::test]
async fn refusals_are_invalid_token_and_cached_briefly() {
    let (e, addr) = start().await;
    answer(
        &e,
        "other-aud",
        json!({"active": true, "sub": "a", "aud": "other"}),
    );
    answer(
        &e,
        "foreign",
        json!({"active": true, "sub": "a", "aud": "api", "iss": "https://x"}),
    );
    answer(
        &e,
        "refresh",
        json!({"active": true, "sub": "a", "aud": "api", "token_type": "refresh_token"}),
    );
    let auth = builder(addr).build().unwrap();
    for (token, reason) in [
        ("inactive", "token_inactive"),
        ("other-aud", "wrong_audience"),
        ("foreign", "wrong_issuer"),
        ("refresh", "wrong_token_type"),
    ] {
        let err = check(&auth, token).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (AuthErrorKind::InvalidToken, reason)
        );
    }
    let calls = auth.calls();
    assert!(check(&auth, "inactive").await.is_err());
    assert_eq!(auth.calls(), calls, "the refusal came from the cache");
}

#[tokio::test]
async fn a_thousand_concurrent_requests_cause_one_call() {
    let (e, addr) = start().await;
    answer(&e, "popular", alice());
    *e.delay.lock().unwrap() = Duration::from_millis(200);
    let auth = builder(addr).build().unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let auth = auth.clone();
        set.spawn(async move {
            check(&auth, "popular")
                .await
                .map(|p| p.subject().to_owned())
        });
    }
    let all = set.join_all().await;
    assert!(all.iter().all(|r| r.as_deref().ok() == Some("alice")));
    assert_eq!(e.hits.load(Ordering::SeqCst), 1);
    assert_eq!(auth.calls(), 1);
    // Later requests hit the cache.
    check(&auth, "popular").await.unwrap();
    assert_eq!(e.hits.load(Ordering::SeqCst), 1);
}

struct Switch(AtomicBool);

impl Revocation for Switch {
    fn check(&self, q: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        let revoked =
            self.0.load(Ordering::SeqCst) && q.issuer == Some(ISSUER) && q.subject == "alice";
        MaybeReady::Ready(if revoked {
            Err(AuthError::revoked())
        } else {
            Ok(())
        })
    }
}

#[tokio::test]
async fn revocation_is_honoured_on_cache_hits() {
    let (e, addr) = start().await;
    answer(&e, "t", alice());
    let switch = Arc::new(Switch(AtomicBool::new(false)));
    let auth = builder(addr).revocation(switch.clone()).build().unwrap();
    check(&auth, "t").await.unwrap();
    switch.0.store(true, Ordering::SeqCst);
    assert!(check(&auth, "t").await.is_err());
    assert_eq!(auth.calls(), 1, "refused from the cache, not by a new call");
}

#[tokio::test]
async fn endpoint_down_is_503_and_cached_tokens_keep_working() {
    let (e, addr) = start().await;
    answer(&e, "known", alice());
    let auth = builder(addr).build().unwrap();
    check(&auth, "known").await.unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = builder(closed).build().unwrap();
    let err = check(&down, "unseen").await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
    assert_eq!(source_kind(&err), IntrospectionErrorKind::Unreachable);
    assert_eq!(down.cached(), 0, "failures are not cached");
    assert!(check(&auth, "known").await.is_ok());
}

#[tokio::test]
async fn slow_endpoint_times_out() {
    let (e, addr) = start().await;
    answer(&e, "slow", alice());
    *e.delay.lock().unwrap() = Duration::from_secs(5);
    let auth = builder(addr)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = check(&auth, "slow").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
    assert_eq!(source_kind(&err), IntrospectionErrorKind::Timeout);
}

#[tokio::test]
async fn ten_megabyte_answer_is_refused_by_the_cap() {
    let (e, addr) = start().await;
    e.huge.store(true, Ordering::SeqCst);
    let auth = builder(addr).build().unwrap();
    let err = check(&auth, "huge").await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
    assert_eq!(source_kind(&err), IntrospectionErrorKind::TooLarge);
}

#[tokio::test]
async fn insecure_or_incomplete_configuration_is_refused() {
    let err = IntrospectionAuthenticator::builder("http://as.example/introspect")
        .client_secret_basic("a", "b")
        .issuer(ISSUER)
        .audience("api")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), IntrospectionErrorKind::InsecureUrl);
    let err = IntrospectionAuthenticator::builder("https://as.example/introspect")
        .issuer(ISSUER)
        .audience("api")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), IntrospectionErrorKind::Config);
}

#[tokio::test]
async fn jwt_and_introspection_compose_in_a_tuple() {
    use portcullis_core::Authenticator;
    let (e, addr) = start().await;
    answer(&e, "opaque", alice());
    let secret = [7u8; 32];
    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, secret).unwrap())
        .issuer(ISSUER)
        .audience("api")
        .build()
        .unwrap();
    let opaque = builder(addr).build().unwrap();
    let both = (jwt, opaque.clone());
    let claims = json!({"iss": ISSUER, "aud": "api", "sub": "bob", "exp": now() + 60});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let run = |token: String| {
        let both = &both;
        async move {
            let (parts, ()) = http::Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap()
                .into_parts();
            match both.authenticate(&parts) {
                MaybeReady::Ready(r) => r,
                MaybeReady::Pending(f) => f.await,
            }
        }
    };
    let p = run(token).await.unwrap().unwrap();
    assert_eq!(
        (p.subject(), p.claims::<Introspected>().is_some()),
        ("bob", false)
    );
    assert_eq!(
        opaque.calls(),
        0,
        "a JWT never reaches the introspection endpoint"
    );
    let p = run("opaque".into()).await.unwrap().unwrap();
    assert_eq!(
        (p.subject(), p.claims::<Introspected>().is_some()),
        ("alice", true)
    );
    // A forged JWT is refused by the JWT verifier, never introspected.
    assert!(run("a.b.c".into()).await.is_err());
    assert_eq!(opaque.calls(), 1);
}
