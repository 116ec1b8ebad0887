//! The bodies of Portcullis responses: [`ResponseBody`], the inner service's body or a
//! rejection's, and [`BodyMode`], which chooses between it and the inner body type
//! itself.
//!
//! Every layer answers with a [`ResponseBody`] by default ([`Wrapped`]), which works
//! with any body: axum's, tonic's, hyper's. With axum, `same_body()` on a layer
//! ([`SameBody`]) makes it answer in the inner service's own body type instead: axum
//! then has no foreign body to box again (one allocation and free fewer per request),
//! and a layered `Router` still answers `Response<axum::body::Body>`, so it can wrap a
//! whole router handed to `axum::serve`.
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::Response;
//! use portcullis_core::{AuthLayer, Authentication, Authenticator, body::SameBody};
//! use tower::{Layer, Service};
//! # struct Anyone;
//! # impl Authenticator for Anyone {
//! #     fn authenticate(&self, _: &http::request::Parts) -> Authentication {
//! #         Authentication::Ready(Ok(None))
//! #     }
//! # }
//!
//! let router: Router = Router::new().route("/", get(|| async { "hello" }));
//! // Wrapping the whole router: its responses stay `Response<Body>`.
//! let app = AuthLayer::new(Anyone).same_body().layer(router);
//! fn answers_axum_bodies<S: Service<http::Request<Body>, Response = Response<Body>>>(_: &S) {}
//! answers_axum_bodies(&app);
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of Portcullis middleware: either the inner service's body,
    /// untouched, or the small body of a rejection.
    ///
    /// Works wherever the inner body does: axum routes and tonic servers alike.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
        },
        Rejection {
            body: Option<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A rejection body.
    pub fn rejection(body: Bytes) -> Self {
        Self {
            kind: Kind::Rejection {
                body: (!body.is_empty()).then_some(body),
            },
        }
    }
}

/// How a layer's responses carry their bodies: [`Wrapped`] in a [`ResponseBody`] (the
/// default, for any body type) or in the inner service's own body type ([`SameBody`]).
pub trait BodyMode<B> {
    /// The body of the layer's responses.
    type Body;

    /// The inner service's body, as the layer answers it.
    fn inner(body: B) -> Self::Body;

    /// A rejection's body (empty for gRPC's trailers-only answers).
    fn rejection(body: Bytes) -> Self::Body;

    /// The inner service's whole response, as the layer answers it: its body passed
    /// through [`inner`](Self::inner), unless the mode keeps the response as it is.
    fn response(response: http::Response<B>) -> http::Response<Self::Body> {
        response.map(Self::inner)
    }

    /// Polls the inner service's response future and answers its response as
    /// [`response`](Self::response) does. A mode that keeps responses as they are
    /// returns the inner poll itself, so that the response is not moved through the
    /// layer's frame.
    fn poll_response<F, E>(
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::Response<Self::Body>, E>>
    where
        F: Future<Output = Result<http::Response<B>, E>>,
    {
        future.poll(cx).map_ok(Self::response)
    }
}

/// The default [`BodyMode`]: responses carry a [`ResponseBody`], whatever the inner
/// service's body type is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrapped;

impl<B> BodyMode<B> for Wrapped {
    type Body = ResponseBody<B>;

    fn inner(body: B) -> ResponseBody<B> {
        ResponseBody::inner(body)
    }

    fn rejection(body: Bytes) -> ResponseBody<B> {
        ResponseBody::rejection(body)
    }
}

/// A [`BodyMode`] for inner body types that can be built from bytes (axum's `Body`,
/// `http_body_util::Full<Bytes>`): responses carry the inner service's own body type,
/// and a rejection's body is made with `From<Bytes>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SameBody;

impl<B: From<Bytes>> BodyMode<B> for SameBody {
    type Body = B;

    fn inner(body: B) -> B {
        body
    }

    fn rejection(body: Bytes) -> B {
        B::from(body)
    }

    fn response(response: http::Response<B>) -> http::Response<B> {
        response
    }

    fn poll_response<F, E>(
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::Response<B>, E>>
    where
        F: Future<Output = Result<http::Response<B>, E>>,
    {
        future.poll(cx)
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("ResponseBody::Inner(..)"),
            Kind::Rejection { body } => f
                .debug_struct("ResponseBody::Rejection")
                .field("len", &body.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Rejection { body } => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Rejection { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Rejection { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
