use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::body::RejectionBody;

type Headers = Box<[(HeaderName, HeaderValue)]>;
type Deferred<F> = Pin<Box<dyn Future<Output = ResponseFuture<F>> + Send + 'static>>;

pin_project! {
    /// The response future of every Portcullis middleware: the auth layer, the guards
    /// and the rate limits.
    ///
    /// It passes the inner service's response through (optionally with headers added),
    /// answers a refusal, or first waits for a decision (a JWKS refresh, a store or
    /// backend look-up) and then does one of the two. Layers of your own that decide
    /// with Portcullis' types can answer with it too.
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
            headers: Option<Headers>,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Deciding {
            next: Deferred<F>,
        },
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's response future, passed through.
    pub fn called(future: F) -> Self {
        Self {
            kind: Kind::Called {
                future,
                headers: None,
            },
        }
    }

    /// The inner service's response future, with `headers` added to its response
    /// (each replacing any field of the same name), for example
    /// `[(name, value), (other, value)]`.
    pub fn called_with_headers(
        future: F,
        headers: impl Into<Box<[(HeaderName, HeaderValue)]>>,
    ) -> Self {
        let headers = headers.into();
        Self {
            kind: Kind::Called {
                future,
                headers: (!headers.is_empty()).then_some(headers),
            },
        }
    }

    /// A refusal, answered at once; its body is written into the inner body type.
    pub fn rejected(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    /// A decision that must wait: `decide` resolves to what to answer next.
    pub fn deferred(decide: impl Future<Output = Self> + Send + 'static) -> Self {
        Self {
            kind: Kind::Deciding {
                next: Box::pin(decide),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: RejectionBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Called { future, headers } => {
                    let Some(extra) = headers.take() else {
                        return future.poll(cx);
                    };
                    return match future.poll(cx) {
                        Poll::Ready(Ok(mut response)) => {
                            let target = response.headers_mut();
                            for (name, value) in extra {
                                target.insert(name, value);
                            }
                            Poll::Ready(Ok(response))
                        }
                        Poll::Pending => {
                            *headers = Some(extra);
                            Poll::Pending
                        }
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    };
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(B::from_rejection)));
                }
                KindProj::Deciding { next } => {
                    let next = ready!(next.as_mut().poll(cx));
                    this.kind.set(next.kind);
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
            Kind::Deciding { .. } => "deciding",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
