//! Remote keys against real HTTP providers on loopback: discovery, rotation, outages,
//! slow and hostile providers, and the unknown-`kid` storm.
#![cfg(feature = "jwks")]

mod discovery;
mod hostile;
mod issuers;
mod rotation;

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
use portcullis_core::{AuthError, AuthEvent, AuthLayer, Events, MaybeReady, Principal};
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

/// Log lines written while the guard lives, on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures every event of this thread (a current-thread test runtime, where the
    /// refresh task runs too) until the guard drops.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn authenticator(keys: impl IntoIterator<Item = RemoteKeys>) -> JwtAuthenticator {
    keys.into_iter()
        .fold(JwtAuthenticator::builder(), |b, k| b.remote_keys(k))
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

async fn check(jwt: &JwtAuthenticator, token: &str) -> Result<Option<Principal>, AuthError> {
    match jwt.verify(token) {
        MaybeReady::Ready(r) => r,
        MaybeReady::Pending(f) => tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("a pending verification must finish"),
    }
}

/// The principal `token` verifies to; panics on a refusal.
async fn principal(jwt: &JwtAuthenticator, token: &str) -> Principal {
    check(jwt, token).await.unwrap().unwrap()
}

fn is_pending(jwt: &JwtAuthenticator, token: &str) -> bool {
    matches!(jwt.verify(token), MaybeReady::Pending(_))
}

async fn reason(jwt: &JwtAuthenticator, token: &str) -> &'static str {
    check(jwt, token).await.unwrap_err().reason()
}

async fn status(jwt: &JwtAuthenticator, token: &str) -> StatusCode {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(AuthLayer::new(jwt.clone()));
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
