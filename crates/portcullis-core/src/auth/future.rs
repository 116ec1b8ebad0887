use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::{
    AuthResult, BoxAuthFuture,
    body::{BodyMode, Wrapped},
};

type Continuation<F> = Box<dyn FnOnce(AuthResult) -> Result<F, Response<Bytes>> + Send>;

pin_project! {
    /// The response future of [`AuthService`](super::AuthService); `M` is its
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
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Authenticating {
            auth: BoxAuthFuture,
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

    /// The inner service's response future, passed through (its body mapped by `M`).
    /// For layers built on this one that let a request on or refuse it, such as the
    /// role and scope guards.
    pub fn called(future: F) -> Self {
        Self::new(Kind::Called { future })
    }

    /// A refusal, answered at once (its body mapped by `M`).
    pub fn rejected(response: Response<Bytes>) -> Self {
        Self::new(Kind::Rejected {
            response: Some(response),
        })
    }

    #[allow(clippy::result_large_err)]
    pub(super) fn authenticating(
        auth: BoxAuthFuture,
        then: impl FnOnce(AuthResult) -> Result<F, Response<Bytes>> + Send + 'static,
    ) -> Self {
        Self::new(Kind::Authenticating {
            auth,
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
                KindProj::Called { future } => {
                    return M::poll_response(future, cx);
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(M::rejection)));
                }
                KindProj::Authenticating { auth, then } => {
                    let result = ready!(auth.as_mut().poll(cx));
                    let then = then.take().expect("future polled after completion");
                    let next = match then(result) {
                        Ok(future) => Kind::Called { future },
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
            Kind::Authenticating { .. } => "authenticating",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
