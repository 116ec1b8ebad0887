//! The API-key authenticator's hot path with the memory store, the cost of refusing a
//! malformed key, and the floors beside them (CRC-32, SHA-256, map lookup).

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, request::Parts};
use portcullis_apikey::{ApiKeyStore, ApiKeys, KeyFormat, KeyHasher, MemoryStore, NewApiKey};
use portcullis_core::{AuthResult, Authenticator, MaybeReady};

fn parts(header: &str, value: &str) -> Parts {
    let mut value = http::HeaderValue::from_str(value).unwrap();
    value.set_sensitive(true);
    Request::get("/hello")
        .header(header, value)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn ok(auth: MaybeReady<AuthResult>) -> bool {
    matches!(auth, MaybeReady::Ready(Ok(Some(_))))
}

fn refused(auth: MaybeReady<AuthResult>) -> bool {
    matches!(auth, MaybeReady::Ready(Err(_)))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let keys = ApiKeys::new(store.clone(), KeyFormat::new("pk_live_").unwrap());
    // A realistic store: 10,000 keys, the one under test among them.
    let issued = runtime.block_on(async {
        for i in 0..10_000 {
            keys.issue(NewApiKey::owned_by(format!("owner-{i}")).name("bulk"))
                .await
                .unwrap();
        }
        keys.issue(
            NewApiKey::owned_by("svc-billing")
                .name("exporter")
                .scopes(["invoices:read", "invoices:write"])
                .roles(["service"]),
        )
        .await
        .unwrap()
    });
    let key = issued.key().expose_secret().to_owned();
    let auth = keys.authenticator();

    let valid = parts("x-api-key", &key);
    let bearer = parts("authorization", &format!("Bearer {key}"));
    let mut typo = key.clone();
    let flip = if typo.ends_with('A') { "B" } else { "A" };
    typo.replace_range(typo.len() - 1.., flip);
    let malformed = parts("x-api-key", &typo);
    let unknown_key = keys.format().generate().unwrap();
    let unknown = parts("x-api-key", unknown_key.expose_secret());
    let none = Request::get("/hello").body(()).unwrap().into_parts().0;
    assert!(ok(auth.authenticate(&valid)));
    assert!(ok(auth.authenticate(&bearer)));
    assert!(refused(auth.authenticate(&malformed)));
    assert!(refused(auth.authenticate(&unknown)));

    let mut g = c.benchmark_group("apikey");
    g.bench_function("authenticate/valid_x_api_key", |b| {
        b.iter(|| ok(auth.authenticate(black_box(&valid))))
    });
    g.bench_function("authenticate/valid_bearer", |b| {
        b.iter(|| ok(auth.authenticate(black_box(&bearer))))
    });
    g.bench_function("authenticate/refuse_malformed_checksum", |b| {
        b.iter(|| refused(auth.authenticate(black_box(&malformed))))
    });
    g.bench_function("authenticate/refuse_unknown_id", |b| {
        b.iter(|| refused(auth.authenticate(black_box(&unknown))))
    });
    g.bench_function("authenticate/no_credential", |b| {
        b.iter(|| {
            matches!(
                auth.authenticate(black_box(&none)),
                MaybeReady::Ready(Ok(None))
            )
        })
    });

    // Floors: the parts of the valid path on their own.
    let format = keys.format().clone();
    let hasher = KeyHasher::sha256();
    let parsed = format.parse(&key).unwrap();
    g.bench_function("floor/parse_format_and_crc32", |b| {
        b.iter(|| format.parse(black_box(&key)).is_ok())
    });
    g.bench_function("floor/crc32_of_key", |b| {
        b.iter(|| crc32fast::hash(black_box(key.as_bytes())))
    });
    g.bench_function("floor/sha256_of_id_and_secret", |b| {
        b.iter(|| hasher.digest(black_box(&parsed)))
    });
    let peppered = KeyHasher::hmac_sha256(&[7u8; 32]).unwrap();
    g.bench_function("floor/hmac_sha256_of_id_and_secret", |b| {
        b.iter(|| peppered.digest(black_box(&parsed)))
    });
    let id = issued.id().to_owned();
    g.bench_function("floor/memory_store_find", |b| {
        b.iter(|| matches!(store.find(black_box(&id)), MaybeReady::Ready(Ok(Some(_)))))
    });
    let MaybeReady::Ready(Ok(Some(record))) = store.find(&id) else {
        panic!("the key is in the memory store");
    };
    g.bench_function("floor/principal_build", |b| {
        b.iter(|| {
            let r = black_box(&record);
            portcullis_core::Principal::builder(
                r.owner.as_str(),
                portcullis_core::PrincipalKind::ApiKey,
            )
            .token_id(r.id.as_str())
            .scopes(r.scopes.iter().map(String::as_str))
            .roles(r.roles.iter().map(String::as_str))
            .issued_at(r.created_at)
            .build()
        })
    });
    g.bench_function("floor/system_time_now", |b| {
        b.iter(std::time::SystemTime::now)
    });
    g.finish();

    // The whole layer in an axum router, side by side with the bare router (in-process,
    // no sockets): what the layer adds to a request.
    let bare: axum::Router =
        axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let guarded = bare
        .clone()
        .route_layer(portcullis_core::AuthLayer::new(keys.authenticator()));
    let fixed = bare
        .clone()
        .route_layer(portcullis_core::AuthLayer::new(Fixed(
            portcullis_core::Principal::builder("svc", portcullis_core::PrincipalKind::ApiKey)
                .build(),
        )));
    let header = issued.key().to_header_value();
    let request = |with_key: bool| {
        let mut req = Request::get("/hello");
        if with_key {
            req = req.header("x-api-key", header.clone());
        }
        req.body(axum::body::Body::empty()).unwrap()
    };
    let mut g = c.benchmark_group("router");
    for (name, app, with_key) in [
        ("bare", &bare, true),
        ("apikey_layer", &guarded, true),
        ("core_layer_fixed_principal", &fixed, true),
        ("bare_again", &bare, true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let response =
                    runtime.block_on(tower::ServiceExt::oneshot(app.clone(), request(with_key)));
                assert_eq!(response.unwrap().status(), 200);
            })
        });
    }
    g.finish();
}

/// The core layer's own cost: an authenticator that always answers one principal.
struct Fixed(portcullis_core::Principal);

impl Authenticator for Fixed {
    fn authenticate(&self, _: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(Ok(Some(self.0.clone())))
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
