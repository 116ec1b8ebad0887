//! Shared test helpers: a store wrapper that counts calls, and request helpers.
#![allow(dead_code, unreachable_pub)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Router, body::Body, routing::get};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyFormat, KeyRotation, ManualClock, MemoryStore,
    NewApiKey, StoreError, StoreFuture,
};
use portcullis_core::{AuthEvent, AuthLayer, Events, MaybeReady, Principal};
use tower::ServiceExt;

/// Wraps a [`MemoryStore`], counting every call; can answer the authenticator's calls
/// later, like a network backend (to exercise the pending path), or fail every call
/// (to exercise outages).
#[derive(Clone, Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub calls: Arc<Calls>,
    pub async_only: bool,
    pub failing: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Calls {
    pub create: AtomicUsize,
    pub find: AtomicUsize,
    pub list: AtomicUsize,
    pub revoke: AtomicUsize,
    pub rotate: AtomicUsize,
    pub touch: AtomicUsize,
}

impl Calls {
    pub fn lookups(&self) -> usize {
        self.find.load(Ordering::SeqCst)
    }
    pub fn total(&self) -> usize {
        [
            &self.create,
            &self.find,
            &self.list,
            &self.revoke,
            &self.rotate,
            &self.touch,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
    pub fn touches(&self) -> usize {
        self.touch.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct Outage;
impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Outage {}

impl CountingStore {
    pub fn async_only() -> Self {
        Self {
            async_only: true,
            ..Self::default()
        }
    }
    fn down(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }
}

impl ApiKeyStore for CountingStore {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        self.calls.create.fetch_add(1, Ordering::SeqCst);
        self.inner.create(record)
    }
    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        self.calls.find.fetch_add(1, Ordering::SeqCst);
        let down = self.down();
        if !self.async_only {
            if down {
                return MaybeReady::Ready(Err(StoreError::backend(Outage)));
            }
            return self.inner.find(id);
        }
        let inner = self.inner.clone();
        let id = id.to_owned();
        // A real await point, like a network backend.
        MaybeReady::pending(async move {
            tokio::task::yield_now().await;
            if down {
                return Err(StoreError::backend(Outage));
            }
            inner.find(&id).await
        })
    }
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        self.calls.list.fetch_add(1, Ordering::SeqCst);
        self.inner.list_by_owner(owner)
    }
    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        self.calls.revoke.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke(id, at)
    }
    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        self.calls.rotate.fetch_add(1, Ordering::SeqCst);
        self.inner.rotate(rotation)
    }
    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        self.calls.touch.fetch_add(1, Ordering::SeqCst);
        if !self.async_only {
            return self.inner.record_last_use(id, at);
        }
        let inner = self.inner.clone();
        let id = id.to_owned();
        MaybeReady::pending(async move {
            tokio::task::yield_now().await;
            inner.record_last_use(&id, at).await
        })
    }
}

/// A service key with grants and a one-hour lifetime.
pub fn spec() -> NewApiKey {
    NewApiKey::owned_by("svc-billing")
        .name("exporter")
        .scopes(["invoices:read", "invoices:write"])
        .roles(["service"])
        .expires_in(Duration::from_secs(3600))
}

pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn format() -> KeyFormat {
    KeyFormat::new("pk_live_").unwrap()
}

/// An `ApiKeys` over a counting store with a manual clock at [`t0`].
pub fn setup(store: CountingStore) -> (ApiKeys<CountingStore>, ManualClock, Arc<Calls>) {
    let clock = ManualClock::new(t0());
    let calls = store.calls.clone();
    let keys = ApiKeys::new(store, format()).with_clock(clock.clone());
    (keys, clock, calls)
}

/// Records the reasons of rejections and the principals let in.
#[derive(Clone, Default)]
pub struct Seen {
    pub rejected: Arc<Mutex<Vec<&'static str>>>,
}

impl Seen {
    pub fn events(&self) -> Events {
        let rejected = self.rejected.clone();
        Events::new(move |event: &AuthEvent<'_>| {
            if let AuthEvent::Rejected { error, .. } = event {
                rejected.lock().unwrap().push(error.reason());
            }
        })
    }
    pub fn last(&self) -> Option<&'static str> {
        self.rejected.lock().unwrap().last().copied()
    }
}

/// `/whoami` answering `subject|kind|token_id|scopes|roles|expires_at_secs`.
pub fn app<A: portcullis_core::Authenticator>(auth: A, seen: &Seen) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move {
                let exp = p
                    .expires_at()
                    .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs().to_string())
                    .unwrap_or_default();
                format!(
                    "{}|{}|{}|{}|{}|{}",
                    p.subject(),
                    p.kind().as_str(),
                    p.token_id().unwrap_or(""),
                    p.scopes().collect::<Vec<_>>().join(" "),
                    p.roles().collect::<Vec<_>>().join(" "),
                    exp
                )
            }),
        )
        .route_layer(AuthLayer::new(auth).with_events(seen.events()))
}

pub async fn send(app: &Router, headers: &[(&str, &str)]) -> (StatusCode, Response<()>, String) {
    let mut req = Request::get("/whoami");
    for (k, v) in headers {
        let mut value = http::HeaderValue::from_str(v).unwrap();
        value.set_sensitive(true);
        req = req.header(*k, value);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        Response::from_parts(parts, ()),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The status `app` answers a request carrying `key` in `X-Api-Key` with.
pub async fn key_status(app: &Router, key: &str) -> StatusCode {
    send(app, &[("x-api-key", key)]).await.0
}

/// The same key with one character of the secret changed, checksum recomputed: passes
/// the format check, has the right id, but is not the key.
pub fn forge_same_id(key: &str) -> String {
    let f = format();
    let body_start = f.prefix().len();
    let secret_pos = body_start + 10 + 1 + 5;
    let mut bytes = key.as_bytes().to_vec();
    bytes[secret_pos] = if bytes[secret_pos] == b'a' {
        b'b'
    } else {
        b'a'
    };
    let without_crc = &bytes[..bytes.len() - 6];
    let crc = crc32(without_crc);
    let mut out = String::from_utf8(without_crc.to_vec()).unwrap();
    out.push_str(&base62_6(crc));
    assert!(
        f.parse(&out).is_ok(),
        "forged key must pass the format check"
    );
    out
}

/// Bitwise CRC-32 (IEEE), written independently of the crate's.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn base62_6(mut n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}
