use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use portcullis_core::body::{BodyMode, Wrapped};

use crate::{BackendError, Decision, backend::BoxCheckFuture, headers};

// Boxed: the fields are only there with `headers_on_success`, and inline they would
// make every response future 80 bytes larger, to be moved on every request.
pub(crate) type Fields = Option<Box<(HeaderValue, HeaderValue)>>;
type Continuation<F> =
    Box<dyn FnOnce(Result<Decision, BackendError>) -> Result<(F, Fields), Response<Bytes>> + Send>;

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit); `M` is its
    /// [`BodyMode`].
    pub struct ResponseFuture<F, M = Wrapped> {
        #[pin]
        kind: Kind<F>,
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
            fields: Fields,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Checking {
            check: BoxCheckFuture,
            then: Option<Continuation<F>>,
        },
    }
}

impl<F, M> ResponseFuture<F, M> {
    fn new(kind: Kind<F>) -> Self {
        Self {
            kind,
            mode: PhantomData,
        }
    }

    pub(super) fn called(future: F, fields: Fields) -> Self {
        Self::new(Kind::Called { future, fields })
    }

    pub(super) fn rejected(response: Response<Bytes>) -> Self {
        Self::new(Kind::Rejected {
            response: Some(response),
        })
    }

    pub(super) fn checking(
        check: BoxCheckFuture,
        then: impl FnOnce(Result<Decision, BackendError>) -> Result<(F, Fields), Response<Bytes>>
        + Send
        + 'static,
    ) -> Self {
        Self::new(Kind::Checking {
            check,
            then: Some(Box::new(then)),
        })
    }
}

impl<F, M, B, E> Future for ResponseFuture<F, M>
where
    F: Future<Output = Result<Response<B>, E>>,
    M: BodyMode<B>,
{
    type Output = Result<Response<M::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Called { future, fields } => {
                    if fields.is_none() {
                        // Nothing to add: the inner answer goes out as it comes (with
                        // `SameBody`, without being moved through this frame).
                        return M::poll_response(future, cx);
                    }
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(fields) = fields.take() {
                        let (policy, limit) = *fields;
                        headers::insert(response.headers_mut(), &policy, limit);
                    }
                    return Poll::Ready(Ok(M::response(response)));
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(M::rejection)));
                }
                KindProj::Checking { check, then } => {
                    let result = ready!(check.as_mut().poll(cx));
                    let then = then.take().expect("future polled after completion");
                    let next = match then(result) {
                        Ok((future, fields)) => Kind::Called { future, fields },
                        Err(response) => Kind::Rejected {
                            response: Some(response),
                        },
                    };
                    this.kind.set(next);
                }
            }
        }
    }
}

impl<F, M> fmt::Debug for ResponseFuture<F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Rejected { .. } => "rejected",
            Kind::Checking { .. } => "checking",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
