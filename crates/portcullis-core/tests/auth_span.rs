//! Each authentication runs in a `DEBUG` span `authenticate` (target
//! `portcullis::auth`) that ends up holding the fields an operator filters on.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Body, routing::get};
use http::{Request, StatusCode, request::Parts};
use portcullis_core::{
    AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind, credentials,
};
use tower::ServiceExt;
use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    EnvFilter, Layer,
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
};

/// `Bearer letmein` is user "demo" of issuer "https://issuer.test".
struct Demo;

impl Authenticator for Demo {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(match credentials::authorization_bearer(&parts.headers) {
            Ok(Some("letmein")) => Ok(Some(
                Principal::builder("demo", PrincipalKind::User)
                    .issuer("https://issuer.test")
                    .build(),
            )),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        })
    }
}

type Fields = BTreeMap<String, String>;

/// Keeps the fields of every `authenticate` span, as recorded by the time it closes.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Fields>>>);

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        values.record(&mut Collect(extensions.get_mut::<Fields>().unwrap()));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        if span.name() == "authenticate" {
            let fields = span.extensions_mut().remove::<Fields>().unwrap();
            self.0.lock().unwrap().push(fields);
        }
    }
}

async fn send(filter: &str, authorization: Option<&str>) -> (StatusCode, Vec<Fields>) {
    let spans = Spans::default();
    let subscriber =
        tracing_subscriber::registry().with(spans.clone().with_filter(EnvFilter::new(filter)));
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(AuthLayer::new(Demo));
    let mut request = Request::get("/");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let seen = spans.0.lock().unwrap().clone();
    (response.status(), seen)
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn an_allowed_request_names_its_subject_and_issuer() {
    let (status, spans) = send("portcullis::auth=debug", Some("Bearer letmein")).await;
    assert_eq!(status, StatusCode::OK);
    let expected = fields(&[
        ("layer", "auth"),
        ("outcome", "allowed"),
        ("subject", "demo"),
        ("issuer", "https://issuer.test"),
    ]);
    assert_eq!(spans, [expected]);
}

#[tokio::test]
async fn a_refusal_names_its_code_and_reason_and_no_subject() {
    let (status, spans) = send("portcullis::auth=debug", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let expected = fields(&[
        ("layer", "auth"),
        ("outcome", "rejected"),
        ("code", "missing_credentials"),
        ("reason", "missing_credentials"),
    ]);
    assert_eq!(spans, [expected]);
}

#[tokio::test]
async fn at_info_there_is_no_span() {
    let (status, spans) = send("info", Some("Bearer letmein")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(spans.is_empty(), "{spans:?}");
}
