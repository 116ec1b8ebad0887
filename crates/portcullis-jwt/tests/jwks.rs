//! Remote keys against real HTTP providers on loopback: discovery, rotation, outages,
//! slow and hostile providers, and the unknown-`kid` storm.
#![cfg(feature = "jwks")]

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use portcullis_core::{AuthError, AuthEvent, Authentication, Events, Principal};
use portcullis_jwt::{
    JwtAuthenticator,
    jwks::{JwksErrorKind, RemoteKeys, RemoteKeysBuilder},
};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUDIENCE: &str = "api";

// ---------------------------------------------------------------- signing keys

struct Signer {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        })
    }

    fn token_for(&self, iss: &str, kid: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
        let claims = json!({
            "iss": iss, "aud": AUDIENCE, "sub": "alice", "scope": "read admin",
            "iat": now, "exp": now + 3600,
        });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn token(&self, iss: &str) -> String {
        self.token_for(iss, &self.kid)
    }
}

fn jwks(signers: &[&Signer]) -> String {
    json!({ "keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>() }).to_string()
}

// ---------------------------------------------------------------- the provider

#[derive(Clone, Debug)]
enum Mode {
    Normal,
    Status(u16),
    Hang,
    Malformed,
    /// 10 MB with a Content-Length.
    HugeDeclared,
    /// 10 MB, chunked (no Content-Length), produced lazily and counted.
    HugeStreamed,
}

struct ProviderState {
    /// The `issuer` the metadata claims; `None`: the provider's own.
    metadata_issuer: Option<String>,
    jwks_uri: Option<String>,
    oidc: bool,
    oauth: bool,
    jwks: String,
    cache_control: Option<&'static str>,
    mode: Mode,
}

struct Provider {
    addr: SocketAddr,
    /// The issuer: `http://127.0.0.1:<port><path>`.
    issuer: String,
    state: Mutex<ProviderState>,
    jwks_hits: AtomicUsize,
    oidc_hits: AtomicUsize,
    oauth_hits: AtomicUsize,
    streamed: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(path: &str, jwks: String) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, path, jwks)
    }

    fn serve(listener: tokio::net::TcpListener, path: &str, jwks: String) -> Arc<Self> {
        let addr = listener.local_addr().unwrap();
        let provider = Arc::new(Self {
            addr,
            issuer: format!("http://{addr}{path}"),
            state: Mutex::new(ProviderState {
                metadata_issuer: None,
                jwks_uri: None,
                oidc: true,
                oauth: true,
                jwks,
                cache_control: None,
                mode: Mode::Normal,
            }),
            jwks_hits: AtomicUsize::new(0),
            oidc_hits: AtomicUsize::new(0),
            oauth_hits: AtomicUsize::new(0),
            streamed: Arc::new(AtomicUsize::new(0)),
        });
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/redirect/{target}", get(redirect))
            .fallback(metadata)
            .with_state(Arc::clone(&provider));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        provider
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, f: impl FnOnce(&mut ProviderState)) {
        f(&mut self.state.lock().unwrap());
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    fn builder(&self) -> RemoteKeysBuilder {
        RemoteKeys::builder(self.issuer.clone())
    }
}

async fn metadata(State(p): State<Arc<Provider>>, uri: Uri) -> Response {
    let path = uri.path();
    let st = p.state.lock().unwrap();
    let served = if path.ends_with("/.well-known/openid-configuration") {
        p.oidc_hits.fetch_add(1, Ordering::SeqCst);
        st.oidc
            && path.trim_end_matches("/.well-known/openid-configuration")
                == p.issuer.trim_start_matches(&format!("http://{}", p.addr))
    } else if let Some(rest) = path.strip_prefix("/.well-known/oauth-authorization-server") {
        p.oauth_hits.fetch_add(1, Ordering::SeqCst);
        st.oauth && rest == p.issuer.trim_start_matches(&format!("http://{}", p.addr))
    } else {
        false
    };
    if !served {
        return StatusCode::NOT_FOUND.into_response();
    }
    let doc = json!({
        "issuer": st.metadata_issuer.clone().unwrap_or_else(|| p.issuer.clone()),
        "jwks_uri": st.jwks_uri.clone().unwrap_or_else(|| p.url("/jwks")),
        "response_types_supported": ["code"],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

async fn serve_jwks(State(p): State<Arc<Provider>>) -> Response {
    p.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let (mode, body, cache) = {
        let st = p.state.lock().unwrap();
        (st.mode.clone(), st.jwks.clone(), st.cache_control)
    };
    match mode {
        Mode::Normal => {
            let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(cc) = cache {
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
            }
            r
        }
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Malformed => r#"{"keys": [ {"kty": "EC", "#.into_response(),
        Mode::HugeDeclared => vec![b' '; 10 << 20].into_response(),
        Mode::HugeStreamed => Response::new(Body::new(Huge {
            left: 10 << 20,
            produced: Arc::clone(&p.streamed),
        })),
    }
}

async fn redirect(
    State(p): State<Arc<Provider>>,
    axum::extract::Path(target): axum::extract::Path<String>,
) -> Response {
    let location = match target.as_str() {
        "same" => p.url("/jwks"),
        "localhost" => format!("http://localhost:{}/jwks", p.addr.port()),
        // Another port on the same IP: another origin.
        port => format!("http://127.0.0.1:{port}/jwks"),
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A body of `left` spaces, 64 KiB at a time, counting what it produced.
struct Huge {
    left: usize,
    produced: Arc<AtomicUsize>,
}

impl http_body::Body for Huge {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        self.produced.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; n])))))
    }
}

// ---------------------------------------------------------------- helpers

fn authenticator(keys: impl IntoIterator<Item = RemoteKeys>) -> JwtAuthenticator {
    keys.into_iter()
        .fold(JwtAuthenticator::builder(), |b, k| b.remote_keys(k))
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

async fn check(jwt: &JwtAuthenticator, token: &str) -> Result<Option<Principal>, AuthError> {
    match jwt.verify(token) {
        Authentication::Ready(r) => r,
        Authentication::Pending(f) => tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("a pending verification must finish"),
    }
}

fn is_pending(jwt: &JwtAuthenticator, token: &str) -> bool {
    matches!(jwt.verify(token), Authentication::Pending(_))
}

async fn reason(jwt: &JwtAuthenticator, token: &str) -> &'static str {
    check(jwt, token).await.unwrap_err().reason()
}

async fn status(jwt: &JwtAuthenticator, token: &str) -> StatusCode {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(jwt.clone().into_layer());
    let request = axum::http::Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// Moves tokio's clock (and every timer) forward without waiting, then lets real
/// time run again for the HTTP that follows.
async fn skip(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

// ---------------------------------------------------------------- discovery

#[tokio::test]
async fn discovers_openid_configuration_of_an_issuer_with_a_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("/realms/main", jwks(&[&k1])).await;
    let keys = RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    assert_eq!(keys.jwks_url().unwrap(), p.url("/jwks"));
    assert_eq!(p.oidc_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 0);
    let jwt = authenticator([keys]);
    assert_eq!(
        check(&jwt, &k1.token(&p.issuer))
            .await
            .unwrap()
            .unwrap()
            .subject(),
        "alice"
    );
    assert_eq!(status(&jwt, &k1.token(&p.issuer)).await, StatusCode::OK);
}

#[tokio::test]
async fn falls_back_to_rfc8414_with_the_well_known_segment_before_the_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("/tenant/a", jwks(&[&k1])).await;
    p.set(|s| s.oidc = false);
    let keys = RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    // Served only at /.well-known/oauth-authorization-server/tenant/a.
    assert_eq!(p.oidc_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 1);
    let jwt = authenticator([keys]);
    assert!(check(&jwt, &k1.token(&p.issuer)).await.unwrap().is_some());
}

#[tokio::test]
async fn falls_back_to_rfc8414_for_an_issuer_without_a_path() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.oidc = false);
    RemoteKeys::discover(p.issuer.clone()).await.unwrap();
    assert_eq!(p.oauth_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_metadata_at_all_is_a_status_error() {
    let p = Provider::start("/x", jwks(&[&Signer::new("k")])).await;
    p.set(|s| {
        s.oidc = false;
        s.oauth = false;
    });
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Status);
    assert_eq!(e.status(), Some(404));
    assert_eq!(p.hits(), 0);
}

#[tokio::test]
async fn issuer_mismatch_is_refused() {
    let p = Provider::start("/realms/main", jwks(&[&Signer::new("k")])).await;
    // A trailing slash makes another issuer.
    let other = format!("{}/", p.issuer);
    p.set(|s| s.metadata_issuer = Some(other));
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::IssuerMismatch, "{e}");
    assert_eq!(
        p.hits(),
        0,
        "jwks_uri of a mismatched document is never fetched"
    );
}

#[tokio::test]
async fn discovered_plain_http_jwks_uri_off_loopback_is_refused_without_connecting() {
    let p = Provider::start("", jwks(&[&Signer::new("k")])).await;
    p.set(|s| s.jwks_uri = Some("http://jwks.example.com/keys".into()));
    let e = RemoteKeys::discover(p.issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::InsecureUrl);
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_before_any_request() {
    for builder in [
        RemoteKeys::builder("http://id.example.com"),
        RemoteKeys::builder("https://id.example.com").jwks_url("http://id.example.com/jwks"),
        RemoteKeys::builder("http://10.1.2.3/realm"),
    ] {
        assert_eq!(
            builder.start_lazy().unwrap_err().kind(),
            JwksErrorKind::InsecureUrl
        );
    }
    assert_eq!(
        RemoteKeys::builder("https://id.example.com/?tenant=a")
            .start_lazy()
            .unwrap_err()
            .kind(),
        JwksErrorKind::InvalidUrl
    );
}

// ---------------------------------------------------------------- rotation

#[tokio::test]
async fn rotation_new_kid_via_refetch_old_kid_until_it_leaves() {
    let (k1, k2) = (Signer::new("k1"), Signer::new("k2"));
    let p = Provider::start("", jwks(&[&k1])).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |e: &AuthEvent<'_>| {
        if let AuthEvent::KeysRotated { keys, .. } = e {
            log.lock().unwrap().push(*keys);
        }
    });
    let keys = p.builder().events(events).start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    let old = k1.token(&p.issuer);
    assert!(check(&jwt, &old).await.is_ok());
    assert_eq!(jwt.cached_tokens(), 1);
    let generation = jwt.key_generation();

    // The provider publishes k2; a token signed with it waits for one refetch.
    p.set(|s| s.jwks = jwks(&[&k1, &k2]));
    let new = k2.token(&p.issuer);
    assert!(is_pending(&jwt, &new));
    assert_eq!(check(&jwt, &new).await.unwrap().unwrap().subject(), "alice");
    assert_eq!(p.hits(), 2);
    // Adding a key flushes nothing: the old token is still a cache hit.
    assert_eq!(jwt.key_generation(), generation);
    assert_eq!(jwt.cached_tokens(), 2);
    assert!(check(&jwt, &old).await.is_ok());

    // An identical refresh changes nothing either.
    keys.refresh().await.unwrap();
    assert_eq!(jwt.key_generation(), generation);

    // k1 leaves the set: its tokens die, cached or not.
    p.set(|s| s.jwks = jwks(&[&k2]));
    keys.refresh().await.unwrap();
    assert_ne!(jwt.key_generation(), generation);
    assert_eq!(reason(&jwt, &old).await, "unknown_kid");
    assert!(check(&jwt, &new).await.is_ok());
    assert_eq!(*seen.lock().unwrap(), [1, 2, 1], "one event per change");
}

#[tokio::test]
async fn a_changed_key_under_the_same_kid_flushes_the_cache() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    let keys = p.builder().start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&p.issuer);
    check(&jwt, &token).await.unwrap();
    let impostor = Signer::new("k1");
    p.set(|s| s.jwks = jwks(&[&impostor]));
    keys.refresh().await.unwrap();
    assert_eq!(reason(&jwt, &token).await, "bad_signature");
}

// ---------------------------------------------------------------- outages

#[tokio::test]
async fn provider_down_at_start_typed_error_then_lazy_503_until_it_answers() {
    let k1 = Signer::new("k1");
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let issuer = format!("http://{addr}");

    let e = RemoteKeys::discover(issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("unreachable"), "{e}");

    let keys = RemoteKeys::builder(issuer.clone())
        .retry_interval(Duration::from_secs(3600))
        .start_lazy()
        .unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&issuer);
    assert_eq!(status(&jwt, &token).await, StatusCode::SERVICE_UNAVAILABLE);
    let e = check(&jwt, &token).await.unwrap_err();
    assert_eq!(
        (e.status(), e.reason()),
        (StatusCode::SERVICE_UNAVAILABLE, "jwks_unavailable")
    );
    assert!(keys.key_set().is_none());

    // The provider comes up on that port; after the cooldown a token fetches.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let p = Provider::serve(listener, "", jwks(&[&k1]));
    skip(Duration::from_secs(31)).await;
    assert_eq!(status(&jwt, &token).await, StatusCode::OK);
    assert_eq!(p.hits(), 1);
}

#[tokio::test]
async fn provider_down_mid_run_stale_keys_serve_then_recovery() {
    let (k1, k2) = (Signer::new("k1"), Signer::new("k2"));
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.cache_control = Some("max-age=60"));
    let keys = p
        .builder()
        .stale_if_error(Duration::from_secs(600))
        .retry_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&p.issuer);

    p.set(|s| s.mode = Mode::Status(500));
    let e = keys.refresh().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (JwksErrorKind::Status, Some(500)));
    assert_eq!(
        status(&jwt, &token).await,
        StatusCode::OK,
        "stale keys still serve"
    );

    // Back up: the next refresh recovers, and rotation works again.
    p.set(|s| {
        s.mode = Mode::Normal;
        s.jwks = jwks(&[&k1, &k2]);
    });
    keys.refresh().await.unwrap();
    assert_eq!(status(&jwt, &k2.token(&p.issuer)).await, StatusCode::OK);
}

#[tokio::test]
async fn stale_keys_stop_serving_past_the_bound() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.cache_control = Some("max-age=60"));
    let keys = p
        .builder()
        .stale_if_error(Duration::from_secs(600))
        .retry_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&p.issuer);
    check(&jwt, &token).await.unwrap();

    p.set(|s| s.mode = Mode::Status(503));
    // Expired (60 s) but within the bound: still served.
    skip(Duration::from_secs(120)).await;
    assert!(keys.refresh().await.is_err());
    assert!(keys.key_set().is_some());
    assert!(check(&jwt, &token).await.is_ok());
    // Past expiry + 600 s: no longer trusted, even from the cache.
    skip(Duration::from_secs(600)).await;
    assert!(keys.refresh().await.is_err());
    assert!(keys.key_set().is_none());
    assert_eq!(status(&jwt, &token).await, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn background_refresh_runs_before_expiry_and_stops_with_the_last_handle() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.cache_control = Some("public, max-age=120"));
    let keys = p.builder().start().await.unwrap();
    assert_eq!(p.hits(), 1);
    // Refreshes at three quarters of the 120 s lifetime.
    skip(Duration::from_secs(89)).await;
    tokio::task::yield_now().await;
    assert_eq!(p.hits(), 1);
    skip(Duration::from_secs(2)).await;
    eventually("the background refresh", || p.hits() == 2).await;

    let jwt = authenticator([keys.clone()]);
    drop(keys);
    drop(jwt);
    skip(Duration::from_secs(3600)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(p.hits(), 2, "no refresh once every handle is gone");
}

#[tokio::test]
async fn max_age_is_clamped_to_the_configured_bounds() {
    let p = Provider::start("", jwks(&[&Signer::new("k1")])).await;
    p.set(|s| s.cache_control = Some("max-age=1"));
    let _keys = p.builder().start().await.unwrap();
    // max-age=1 is raised to the 60 s minimum: no refresh at 40 s, one by 46 s.
    skip(Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(p.hits(), 1);
    skip(Duration::from_secs(6)).await;
    eventually("the refresh at 45 s", || p.hits() == 2).await;
}

// ---------------------------------------------------------------- hostile or slow

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

// ---------------------------------------------------------------- several issuers

#[tokio::test]
async fn tokens_are_routed_by_iss_among_configured_issuers_only() {
    let (ka, kb, kx) = (Signer::new("a1"), Signer::new("b1"), Signer::new("x1"));
    let a = Provider::start("/a", jwks(&[&ka])).await;
    let b = Provider::start("/b", jwks(&[&kb])).await;
    let stranger = Provider::start("/x", jwks(&[&kx])).await;
    let jwt = authenticator([
        RemoteKeys::discover(a.issuer.clone()).await.unwrap(),
        RemoteKeys::discover(b.issuer.clone()).await.unwrap(),
    ]);
    assert_eq!(
        check(&jwt, &ka.token(&a.issuer))
            .await
            .unwrap()
            .unwrap()
            .issuer(),
        Some(&*a.issuer)
    );
    assert_eq!(
        check(&jwt, &kb.token(&b.issuer))
            .await
            .unwrap()
            .unwrap()
            .issuer(),
        Some(&*b.issuer)
    );
    // A's key claiming B's issuer: B's keys do not have it (one refetch of B, no more).
    assert_eq!(
        reason(&jwt, &ka.token_for(&b.issuer, "a1")).await,
        "unknown_kid"
    );
    // An unconfigured issuer: refused, and nothing is fetched from anywhere.
    let (ha, hb) = (a.hits(), b.hits());
    assert_eq!(
        reason(&jwt, &kx.token(&stranger.issuer)).await,
        "wrong_issuer"
    );
    assert_eq!((a.hits(), b.hits(), stranger.hits()), (ha, hb, 0));
    assert_eq!(stranger.oidc_hits.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------- the storm

#[tokio::test]
async fn a_thousand_unknown_kids_cause_one_fetch_per_cooldown() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    let keys = p.builder().start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    assert_eq!(p.hits(), 1);

    let storm = |jwt: &JwtAuthenticator| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..1000u32 {
            let kid = format!("kid-{:08x}", i.wrapping_mul(2_654_435_761) ^ rand_seed());
            let token = k1.token_for(&p.issuer, &kid);
            let jwt = jwt.clone();
            set.spawn(async move { check(&jwt, &token).await });
        }
        set
    };

    let results = storm(&jwt).join_all().await;
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().reason() == "unknown_kid")
    );
    assert_eq!(p.hits(), 2, "1,000 misses shared one fetch");

    // Within the cooldown: refused at once, no fetch, nothing pending.
    assert!(!is_pending(&jwt, &k1.token_for(&p.issuer, "another")));
    storm(&jwt).join_all().await;
    assert_eq!(p.hits(), 2);

    // After it: one more fetch for the next storm.
    skip(Duration::from_secs(31)).await;
    storm(&jwt).join_all().await;
    assert_eq!(p.hits(), 3);
    // Known tokens kept working throughout.
    assert!(check(&jwt, &k1.token(&p.issuer)).await.is_ok());
}

fn rand_seed() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}
