//! Keys never reach logs (captured at TRACE), `Debug` output or error bodies.

mod common;

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Body, routing::get};
use http::Request;
use http_body_util::BodyExt;
use portcullis_apikey::{ApiKeys, MemoryStore, NewApiKey};
use portcullis_core::{AuthLayer, Principal};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The parts of `key` that must never leak: the whole key, and the secret with and
/// without its checksum.
fn secrets_of(key: &str) -> Vec<String> {
    let secret_start = "pk_live_".len() + 11;
    vec![
        key.to_owned(),
        key[secret_start..].to_owned(),
        key[secret_start..key.len() - 6].to_owned(),
    ]
}

#[test]
fn no_key_material_in_trace_logs_debug_or_bodies() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut watched = Vec::new();
    let mut outputs = Vec::new();
    runtime.block_on(async {
        let keys = ApiKeys::new(MemoryStore::new(), common::format());
        let app = Router::new()
            .route(
                "/whoami",
                get(|p: Principal| async move { format!("{p:?}") }),
            )
            .route_layer(AuthLayer::new(keys.authenticator()));

        let issued = keys
            .issue(NewApiKey::owned_by("alice").name("laptop").scopes(["read"]))
            .await
            .unwrap();
        let key = issued.key().expose_secret().to_owned();
        let forged = common::forge_same_id(&key);
        let mut typo = key.clone();
        let flip = if typo.ends_with('Q') { "R" } else { "Q" };
        typo.replace_range(typo.len() - 1.., flip);
        let stranger = keys.format().generate().unwrap().expose_secret().to_owned();
        for k in [&key, &forged, &typo, &stranger] {
            watched.extend(secrets_of(k));
        }

        let bearer = format!("Bearer {key}");
        let requests: Vec<(&str, String)> = vec![
            ("x-api-key", key.clone()),
            ("authorization", bearer),
            ("x-api-key", forged.clone()),
            ("x-api-key", typo.clone()),
            ("x-api-key", stranger.clone()),
        ];
        for (name, value) in &requests {
            let mut value = http::HeaderValue::from_str(value).unwrap();
            value.set_sensitive(true);
            let req = Request::get("/whoami")
                .header(*name, value)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(req).await.unwrap();
            let (parts, body) = response.into_parts();
            outputs.push(format!("{parts:?}"));
            outputs.push(
                String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned(),
            );
        }
        // Both headers at once.
        let req = Request::get("/whoami")
            .header("x-api-key", issued.key().to_header_value())
            .header("authorization", issued.key().to_bearer_header_value())
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        outputs.push(format!("{response:?}"));
        outputs.push(
            String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
                .into_owned(),
        );

        let rotated = keys
            .rotate(issued.id(), Duration::from_secs(60))
            .await
            .unwrap();
        watched.extend(secrets_of(rotated.key().expose_secret()));
        keys.revoke(rotated.id()).await.unwrap();
        let req = Request::get("/whoami")
            .header("x-api-key", rotated.key().to_header_value())
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), 401);
        outputs.push(
            String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
                .into_owned(),
        );

        // Debug output of everything that holds or saw a key, logged at TRACE.
        let parsed = keys.format().parse(&key).unwrap();
        let auth = keys.authenticator();
        let record = keys.get(issued.id()).await.unwrap().unwrap();
        tracing::trace!(
            ?issued,
            ?rotated,
            ?parsed,
            ?auth,
            ?keys,
            ?record,
            "debug dump"
        );
        outputs.push(format!("{issued:?} {rotated:?} {parsed:?} {record:?}"));
        outputs.push(format!("{:?}", issued.key().to_header_value()));
        outputs.push(format!("{:?}", issued.key().to_bearer_header_value()));
        outputs.push(format!("{}", keys.format().parse(&typo).unwrap_err()));
    });

    let logs = buffer.text();
    // The capture works: it saw the layer's events and the refusal reasons.
    for expected in [
        "authenticated",
        "api_key_mismatch",
        "api_key_malformed",
        "api_key_unknown",
        "api_key_revoked",
        "api_key_issued",
        "api_key_rotated",
        "debug dump",
        "credentials_in_several_places",
    ] {
        assert!(
            logs.contains(expected),
            "missing {expected:?} in logs:\n{logs}"
        );
    }
    assert!(!watched.is_empty());
    for secret in &watched {
        assert!(
            !logs.contains(secret.as_str()),
            "key material in logs:\n{logs}"
        );
        for out in &outputs {
            assert!(
                !out.contains(secret.as_str()),
                "key material in output: {out}"
            );
        }
    }
}
