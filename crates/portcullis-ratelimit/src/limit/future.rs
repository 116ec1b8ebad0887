use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use portcullis_core::body::ResponseBody;

use crate::{BackendError, Decision, backend::BoxCheckFuture, headers};

// Boxed: the fields are only there with `headers_on_success`, and inline they would
// make every response future 80 bytes larger, to be moved on every request.
pub(crate) type Fields = Option<Box<(HeaderValue, HeaderValue)>>;
type Continuation<F> =
    Box<dyn FnOnce(Result<Decision, BackendError>) -> Result<(F, Fields), Response<Bytes>> + Send>;

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
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

impl<F> ResponseFuture<F> {
    pub(super) fn called(future: F, fields: Fields) -> Self {
        Self {
            kind: Kind::Called { future, fields },
        }
    }

    pub(super) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    pub(super) fn checking(
        check: BoxCheckFuture,
        then: impl FnOnce(Result<Decision, BackendError>) -> Result<(F, Fields), Response<Bytes>>
        + Send
        + 'static,
    ) -> Self {
        Self {
            kind: Kind::Checking {
                check,
                then: Some(Box::new(then)),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Called { future, fields } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(fields) = fields.take() {
                        let (policy, limit) = *fields;
                        headers::insert(response.headers_mut(), &policy, limit);
                    }
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::rejection)));
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

impl<F> fmt::Debug for ResponseFuture<F> {
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
