//! A key's life seen through the authenticator: revocation, expiry, rotation and
//! grace, changed records, last-use writes.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{CountingStore, Seen, app, key_status, send, setup, spec, t0};
use http::StatusCode;
use portcullis_apikey::{
    ApiKeyErrorKind, ApiKeyRecord, ApiKeyStore, ApiKeys, KeyRotation, MemoryStore, NewApiKey,
    StoreError, StoreFuture,
};
use portcullis_core::{AuthEvent, Events, MaybeReady};

#[tokio::test]
async fn revoked_keys_are_refused_and_reported() {
    let store = CountingStore::default();
    let clock = portcullis_apikey::ManualClock::new(t0());
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let log = revoked.clone();
    let keys = ApiKeys::new(store, common::format())
        .with_clock(clock)
        .with_events(Events::new(move |e: &AuthEvent<'_>| {
            if let AuthEvent::ApiKeyRevoked { key_id } = e {
                log.lock().unwrap().push(key_id.to_string());
            }
        }));
    let issued = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    assert_eq!(key_status(&app, key).await, StatusCode::OK);
    assert!(keys.revoke(issued.id()).await.unwrap());
    assert!(
        !keys.revoke(issued.id()).await.unwrap(),
        "second revoke is a no-op"
    );
    assert_eq!(*revoked.lock().unwrap(), [issued.id().to_owned()]);
    let (status, response, body) = send(&app, &[("x-api-key", key)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_revoked"));
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(body.contains("the credential is invalid"), "{body}");
    let record = keys.get(issued.id()).await.unwrap().unwrap();
    assert_eq!(record.revoked_at, Some(t0()));
    assert_eq!(
        keys.revoke("nope000000").await.unwrap_err().kind(),
        ApiKeyErrorKind::NotFound
    );
}

#[tokio::test]
async fn expired_keys_are_refused_at_the_instant_they_expire() {
    let (keys, clock, _) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    clock.advance(Duration::from_secs(3599));
    assert_eq!(key_status(&app, key).await, StatusCode::OK);
    clock.advance(Duration::from_secs(1));
    assert_eq!(key_status(&app, key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_expired"));
}

#[tokio::test]
async fn a_key_can_expire_at_an_instant() {
    let (keys, clock, _) = setup(CountingStore::default());
    let at = t0() + Duration::from_secs(120);
    let issued = keys
        .issue(NewApiKey::owned_by("svc-billing").expires_at(at))
        .await
        .unwrap();
    assert_eq!(issued.record().expires_at, Some(at));
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let key = issued.key().expose_secret();
    assert_eq!(key_status(&app, key).await, StatusCode::OK);
    clock.advance(Duration::from_secs(120));
    assert_eq!(key_status(&app, key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_expired"));
    // An instant that is not in the future is refused, like a zero lifetime.
    for past in [at, t0()] {
        assert_eq!(
            keys.issue(NewApiKey::owned_by("svc-billing").expires_at(past))
                .await
                .unwrap_err()
                .kind(),
            ApiKeyErrorKind::InvalidInput
        );
    }
}

#[tokio::test]
async fn every_record_change_is_seen_by_the_very_next_request() {
    let (keys, clock, _) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let key = issued.key().expose_secret();
    let seen = Seen::default();
    // Two clones of one authenticator, sharing what it keeps between requests.
    let auth = keys.authenticator();
    let twin = app(auth.clone(), &seen);
    let app = app(auth, &seen);
    for _ in 0..3 {
        assert_eq!(key_status(&app, key).await, StatusCode::OK);
    }
    assert_eq!(key_status(&twin, key).await, StatusCode::OK);
    // Rotation shortens the key's life: the next principal carries the new expiry.
    keys.rotate(issued.id(), Duration::from_secs(30))
        .await
        .unwrap();
    let (_, _, body) = send(&app, &[("x-api-key", key)]).await;
    let grace_end = (t0() + Duration::from_secs(30))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(body.ends_with(&format!("|{grace_end}")), "{body}");
    // Expiry is decided at every request.
    clock.advance(Duration::from_secs(30));
    assert_eq!(key_status(&twin, key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_expired"));

    // Revocation, on both clones, at once.
    let other = keys.issue(spec()).await.unwrap();
    let other_key = other.key().expose_secret();
    assert_eq!(key_status(&app, other_key).await, StatusCode::OK);
    assert_eq!(key_status(&twin, other_key).await, StatusCode::OK);
    keys.revoke(other.id()).await.unwrap();
    for app in [&app, &twin] {
        assert_eq!(
            send(app, &[("x-api-key", other_key)]).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(seen.last(), Some("api_key_revoked"));
    }
}

#[tokio::test]
async fn grants_changed_in_a_store_that_answers_fresh_records_are_seen_at_once() {
    // A store that answers a new `Arc` every time (as a network backend does), with
    // the scopes the test sets: the principal follows the record's content.
    let store = EditedStore::default();
    let scopes = store.scopes.clone();
    let keys = ApiKeys::new(store, common::format());
    let issued = keys.issue(spec()).await.unwrap();
    let key = issued.key().expose_secret();
    let app = app(keys.authenticator(), &Seen::default());
    let (_, _, body) = send(&app, &[("x-api-key", key)]).await;
    assert!(body.contains("|invoices:read invoices:write|"), "{body}");
    let (_, _, again) = send(&app, &[("x-api-key", key)]).await;
    assert_eq!(again, body);
    *scopes.lock().unwrap() = Some(vec!["invoices:read".into()]);
    let (_, _, body) = send(&app, &[("x-api-key", key)]).await;
    assert!(body.contains("|invoices:read|"), "{body}");
    *scopes.lock().unwrap() = None;
    let (_, _, body) = send(&app, &[("x-api-key", key)]).await;
    assert!(body.contains("|invoices:read invoices:write|"), "{body}");
}

/// A memory store whose `find` answers a copy of the record in a new `Arc`, with its
/// scopes replaced when the test says so.
#[derive(Clone, Default)]
struct EditedStore {
    inner: MemoryStore,
    scopes: Arc<Mutex<Option<Vec<String>>>>,
}

impl ApiKeyStore for EditedStore {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        self.inner.create(record)
    }
    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        let MaybeReady::Ready(found) = self.inner.find(id) else {
            unreachable!("the memory store answers at once")
        };
        let scopes = self.scopes.lock().unwrap().clone();
        MaybeReady::Ready(found.map(|record| {
            record.map(|record| {
                let mut record = ApiKeyRecord::clone(&record);
                if let Some(scopes) = scopes {
                    record.scopes = scopes;
                }
                Arc::new(record)
            })
        }))
    }
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        self.inner.list_by_owner(owner)
    }
    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        self.inner.revoke(id, at)
    }
    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        self.inner.rotate(rotation)
    }
    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        self.inner.record_last_use(id, at)
    }
}

#[tokio::test]
async fn rotated_key_works_within_grace_and_fails_after() {
    let (keys, clock, _) = setup(CountingStore::default());
    let old = keys.issue(spec()).await.unwrap();
    let seen = Seen::default();
    let app = app(keys.authenticator(), &seen);
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let old_key = old.key().expose_secret();
    let (status, _, body) = send(&app, &[("x-api-key", old_key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with(&format!("|{}", secs(t0() + Duration::from_secs(3600)))));
    clock.advance(Duration::from_secs(600));
    let new = keys
        .rotate(old.id(), Duration::from_secs(300))
        .await
        .unwrap();
    // The very next request with the old key sees its shortened lifetime.
    let (status, _, body) = send(&app, &[("x-api-key", old_key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.ends_with(&format!("|{}", secs(t0() + Duration::from_secs(900)))),
        "{body}"
    );
    assert_ne!(new.id(), old.id());
    assert_ne!(new.key().expose_secret(), old.key().expose_secret());
    // Same owner and grants; a fresh lifetime of the same length.
    assert_eq!(new.record().owner, "svc-billing");
    assert_eq!(new.record().scopes, old.record().scopes);
    assert_eq!(
        new.record().expires_at,
        Some(t0() + Duration::from_secs(600 + 3600))
    );
    let old_record = keys.get(old.id()).await.unwrap().unwrap();
    assert_eq!(old_record.rotated_to.as_deref(), Some(new.id()));
    assert_eq!(old_record.expires_at, Some(t0() + Duration::from_secs(900)));

    let new_key = new.key().expose_secret();
    clock.advance(Duration::from_secs(299));
    assert_eq!(key_status(&app, old_key).await, StatusCode::OK);
    assert_eq!(key_status(&app, new_key).await, StatusCode::OK);
    clock.advance(Duration::from_secs(1));
    assert_eq!(key_status(&app, old_key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.last(), Some("api_key_expired"));
    assert_eq!(key_status(&app, new_key).await, StatusCode::OK);

    // The old key cannot be rotated again (expired), nor can a key rotated earlier.
    assert_eq!(
        keys.rotate(old.id(), Duration::ZERO)
            .await
            .unwrap_err()
            .kind(),
        ApiKeyErrorKind::Inactive
    );
    let other = keys.issue(spec()).await.unwrap();
    keys.rotate(other.id(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        keys.rotate(other.id(), Duration::from_secs(60))
            .await
            .unwrap_err()
            .kind(),
        ApiKeyErrorKind::Conflict
    );
    keys.revoke(new.id()).await.unwrap();
    assert_eq!(
        keys.rotate(new.id(), Duration::ZERO)
            .await
            .unwrap_err()
            .kind(),
        ApiKeyErrorKind::Inactive
    );
}

#[tokio::test]
async fn grace_never_extends_a_key_beyond_its_own_expiry() {
    let (keys, clock, _) = setup(CountingStore::default());
    let old = keys.issue(spec()).await.unwrap();
    clock.advance(Duration::from_secs(3000));
    keys.rotate(old.id(), Duration::from_secs(86_400))
        .await
        .unwrap();
    let record = keys.get(old.id()).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(t0() + Duration::from_secs(3600)));
}

#[tokio::test]
async fn concurrent_rotations_give_at_most_one_success() {
    let (keys, _, _) = setup(CountingStore::default());
    let old = keys.issue(spec()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let keys = keys.clone();
        let id = old.id().to_owned();
        tasks.push(tokio::spawn(async move {
            keys.rotate(&id, Duration::from_secs(60)).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
    // The failed attempts left no stray records behind.
    assert_eq!(keys.list("svc-billing").await.unwrap().len(), 2);
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let (keys, clock, calls) = setup(CountingStore::default());
    let issued = keys.issue(spec()).await.unwrap();
    let app = app(keys.authenticator(), &Seen::default());
    let key = issued.key().expose_secret();
    for _ in 0..5 {
        assert_eq!(key_status(&app, key).await, StatusCode::OK);
    }
    assert_eq!(calls.touches(), 1);
    assert_eq!(
        keys.get(issued.id()).await.unwrap().unwrap().last_used_at,
        Some(t0())
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(key_status(&app, key).await, StatusCode::OK);
    assert_eq!(calls.touches(), 1);
    clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(key_status(&app, key).await, StatusCode::OK);
    }
    assert_eq!(calls.touches(), 2);
    assert_eq!(
        keys.get(issued.id()).await.unwrap().unwrap().last_used_at,
        Some(t0() + Duration::from_secs(60))
    );
}
