//! Response bodies: how a Portcullis layer writes a refusal into the inner service's
//! own body type.
//!
//! Every Portcullis layer answers in the body type of the service it wraps, so a
//! layered axum `Router` still answers `Response<axum::body::Body>` and a layered tonic
//! server still answers `tonic::body::Body`. All a layer needs from that type is a way
//! to hold a refusal's few bytes: [`RejectionBody`]. It is implemented for axum's body,
//! `http_body_util::Full<Bytes>`, the boxed bodies of `http-body-util`, `String`,
//! `Bytes`, tonic's body (feature `tonic`) and [`ResponseBody`].
//!
//! A body that cannot hold bytes (hyper's `Incoming`, for a proxy) is wrapped in
//! [`ResponseBody`] first:
//!
//! ```
//! use http::{Request, Response};
//! use http_body_util::Empty;
//! use bytes::Bytes;
//! use portcullis_core::{AuthLayer, Authenticator, MaybeReady, body::ResponseBody};
//! use tower::{ServiceBuilder, service_fn};
//! # struct Anyone;
//! # impl Authenticator for Anyone {
//! #     fn authenticate(&self, _: &http::request::Parts) -> MaybeReady<portcullis_core::AuthResult> {
//! #         MaybeReady::Ready(Ok(None))
//! #     }
//! # }
//!
//! // `Empty` cannot hold a refusal's bytes: wrap it, inside the auth layer.
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(Anyone))
//!     .map_response(|response: Response<Empty<Bytes>>| response.map(ResponseBody::new))
//!     .service(service_fn(|_: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
//!     }));
//! # let _ = service;
//! ```

use std::{
    convert::Infallible,
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{
    BodyExt, Full,
    combinators::{BoxBody, UnsyncBoxBody},
};
use pin_project_lite::pin_project;

/// A response body type that a refusal can be written into.
///
/// Portcullis layers answer in the inner service's body type; this is the one thing
/// they need from it. `bytes` is a small problem+json document, or empty for gRPC's
/// trailers-only answers.
#[diagnostic::on_unimplemented(
    message = "Portcullis cannot write a refusal into the response body type `{Self}`",
    note = "wrap the inner service's body in `portcullis_core::body::ResponseBody` (see the `body` module docs)",
    note = "for tonic's `tonic::body::Body`, enable Portcullis' `tonic` feature"
)]
pub trait RejectionBody: Sized {
    /// A body holding `bytes`.
    fn from_rejection(bytes: Bytes) -> Self;
}

impl RejectionBody for axum_core::body::Body {
    fn from_rejection(bytes: Bytes) -> Self {
        Self::from(bytes)
    }
}

impl RejectionBody for Full<Bytes> {
    fn from_rejection(bytes: Bytes) -> Self {
        Full::new(bytes)
    }
}

impl RejectionBody for Bytes {
    fn from_rejection(bytes: Bytes) -> Self {
        bytes
    }
}

impl RejectionBody for String {
    fn from_rejection(bytes: Bytes) -> Self {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl<E: 'static> RejectionBody for BoxBody<Bytes, E> {
    fn from_rejection(bytes: Bytes) -> Self {
        Full::new(bytes)
            .map_err(|never: Infallible| match never {})
            .boxed()
    }
}

impl<E: 'static> RejectionBody for UnsyncBoxBody<Bytes, E> {
    fn from_rejection(bytes: Bytes) -> Self {
        Full::new(bytes)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync()
    }
}

#[cfg(feature = "tonic")]
impl RejectionBody for tonic::body::Body {
    fn from_rejection(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Self::default()
        } else {
            Self::new(Full::new(bytes))
        }
    }
}

pin_project! {
    /// A body that is either another body, untouched, or a refusal's bytes: for inner
    /// services whose body type cannot hold a refusal itself (see the
    /// [module docs](self)).
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
    /// Wraps a body.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }
}

impl<B> RejectionBody for ResponseBody<B> {
    fn from_rejection(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Rejection {
                body: (!bytes.is_empty()).then_some(bytes),
            },
        }
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn text<B: Body<Data = Bytes>>(body: B) -> String
    where
        B::Error: fmt::Debug,
    {
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_body_holds_the_refusal_bytes() {
        let bytes = || Bytes::from_static(b"{\"code\":\"x\"}");
        let want = "{\"code\":\"x\"}";
        assert_eq!(
            text(axum_core::body::Body::from_rejection(bytes())).await,
            want
        );
        assert_eq!(text(Full::from_rejection(bytes())).await, want);
        assert_eq!(text(String::from_rejection(bytes())).await, want);
        assert_eq!(
            text(BoxBody::<Bytes, Infallible>::from_rejection(bytes())).await,
            want
        );
        assert_eq!(
            text(ResponseBody::<Full<Bytes>>::from_rejection(bytes())).await,
            want
        );
    }

    #[test]
    fn an_empty_refusal_is_an_ended_body() {
        let body = ResponseBody::<Full<Bytes>>::from_rejection(Bytes::new());
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
