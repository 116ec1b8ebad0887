//! The policy layer authenticates inside the same `authenticate` span as the auth
//! layer, with `layer = "policy"` and the outcome recorded on it.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use http::{Request, request::Parts};
use portcullis_core::{AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
use portcullis_guard::policy::{Access, PolicyLayer};
use tower::{Layer as _, ServiceExt, service_fn};
use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{EnvFilter, Layer, layer::Context, prelude::*, registry::LookupSpan};

struct Demo;

impl Authenticator for Demo {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let known = parts.headers.contains_key("authorization");
        MaybeReady::Ready(Ok(
            known.then(|| Principal::builder("demo", PrincipalKind::User).build())
        ))
    }
}

/// `layer=…,outcome=…` of every `authenticate` span, as closed.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

struct Fields(Vec<String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(field.name(), "layer" | "outcome") {
            self.0.push(format!("{}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        values.record(span.extensions_mut().get_mut::<Fields>().unwrap());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        if span.name() == "authenticate" {
            let fields = span.extensions_mut().remove::<Fields>().unwrap();
            self.0.lock().unwrap().push(fields.0.join(","));
        }
    }
}

#[tokio::test]
async fn a_policy_decision_has_its_authenticate_span() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(
        spans
            .clone()
            .with_filter(EnvFilter::new("portcullis::auth=debug")),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let policy = PolicyLayer::new(Demo)
        .route("/private", Access::authenticated())
        .route("/open", Access::open());
    let service = policy.layer(service_fn(|_: Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let call = |path: &str, token: bool| {
        let mut request = Request::get(path);
        if token {
            request = request.header("authorization", "Bearer x");
        }
        service
            .clone()
            .oneshot(request.body(String::new()).unwrap())
    };
    assert_eq!(call("/private", true).await.unwrap().status(), 200);
    assert_eq!(call("/private", false).await.unwrap().status(), 401);
    assert_eq!(call("/open", false).await.unwrap().status(), 200);
    let seen = spans.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "layer=\"policy\",outcome=\"allowed\"",
            "layer=\"policy\",outcome=\"rejected\""
        ],
        "one span per authentication; none for an open method"
    );
}
