use std::{
    error::Error as StdError,
    fmt,
    future::Ready,
    mem,
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portcullis_core::{
    AuthError, AuthEvent, DefaultRenderer, MaybeReady, RenderRejection,
    auth::ResponseFuture,
    body::RejectionBody,
    internal::{hex, metrics, missing_peer_error},
    problem_response,
};
use tower_service::Service;

use super::{
    Admission, LoginAttempt, LoginBackend, LoginBucket, LoginOutcome, MemoryLoginBackend,
    layer::LoginShared,
};
use crate::{BackendError, headers, peer::peer_addr};

/// Throttles login attempts. Made by
/// [`LoginRateLimitLayer`](super::LoginRateLimitLayer); see the
/// [module docs](crate::login).
///
/// Its response future is core's
/// [`ResponseFuture`](portcullis_core::auth::ResponseFuture): a refusal that needs no
/// body (no peer address, a declared body over the limit) is answered at once;
/// otherwise the body is read, the attempt decided by the backend, the handler called
/// and the attempt settled in one boxed future (login is not a hot path), whose
/// answer is handed on as it is.
pub struct LoginRateLimit<S, B = MemoryLoginBackend> {
    pub(super) inner: S,
    pub(super) shared: Arc<LoginShared<B>>,
}

impl<S, B> LoginRateLimit<S, B> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, B> Clone for LoginRateLimit<S, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, B> fmt::Debug for LoginRateLimit<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type Answer<B, E> = ResponseFuture<Ready<Result<Response<B>, E>>>;

impl<S, B, ReqBody, ResBody> Service<Request<ReqBody>> for LoginRateLimit<S, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: LoginBackend,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    ResBody: RejectionBody + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Answer<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let shared = &self.shared;
        let Some(peer) = peer_addr(&parts.extensions) else {
            return ResponseFuture::rejected(DefaultRenderer.render(&missing_peer_error(), &parts));
        };
        let ip = shared
            .resolver
            .key(shared.resolver.resolve(peer.ip(), &parts.headers));

        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > shared.body_limit as u64) {
            return ResponseFuture::rejected(too_large());
        }

        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture::deferred(attempt(Arc::clone(shared), inner, parts, body, ip))
    }
}

/// Reads the body, has the backend decide and count the attempt provisionally, calls
/// the handler and settles the count by its status.
async fn attempt<S, B, ReqBody, ResBody>(
    shared: Arc<LoginShared<B>>,
    mut inner: S,
    parts: Parts,
    body: ReqBody,
    ip: IpAddr,
) -> Answer<ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    B: LoginBackend,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let bytes = match Limited::new(body, shared.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return ResponseFuture::rejected(too_large());
        }
        Err(_) => {
            return ResponseFuture::rejected(problem_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the login request body could not be read",
                serde_json::Map::new(),
            ));
        }
    };

    let account = shared.account(&parts, &bytes);
    let attempt = LoginAttempt::new(ip, account.as_deref(), shared.limits);
    drop(account);

    let ticket = match resolve(shared.backend.begin(&attempt)).await {
        Ok(Admission::Admitted(ticket)) => ticket,
        Ok(Admission::Refused { bucket, wait }) => {
            return ResponseFuture::rejected(throttled(&shared, &parts, bucket, wait));
        }
        Err(error) => return ResponseFuture::rejected(unavailable(&parts, error)),
    };

    let result = inner
        .call(Request::from_parts(parts, ReqBody::from(bytes)))
        .await;
    let outcome = match &result {
        // The handler failed: the provisional failure stands.
        Err(_) => LoginOutcome::Failure,
        Ok(response) if (shared.is_failure)(response.status()) => LoginOutcome::Failure,
        Ok(response) if response.status().is_success() => LoginOutcome::Success,
        Ok(_) => LoginOutcome::NotCounted,
    };
    if let (Ok(response), LoginOutcome::Failure) = (&result, outcome) {
        shared
            .events
            .emit(&AuthEvent::LoginFailed { key_kind: "ip" });
        shared.events.emit(&AuthEvent::LoginFailed {
            key_kind: "account",
        });
        // The first 8 bytes of a salted account hash: enough to correlate log lines,
        // useless to recover the account.
        tracing::debug!(
            target: "portcullis::ratelimit",
            account = %hex(&attempt.account_key(&shared.log_salt)[..8]),
            status = response.status().as_u16(),
            "login failure counted"
        );
    }
    if let Err(error) = resolve(shared.backend.settle(ticket, outcome)).await {
        // The answer is given; the provisional failure stays counted (or expires).
        tracing::warn!(
            target: "portcullis::ratelimit",
            error = %error,
            "login throttle could not settle an attempt"
        );
    }
    ResponseFuture::called(std::future::ready(result))
}

async fn resolve<T: Send + 'static>(answer: MaybeReady<T>) -> T {
    match answer {
        MaybeReady::Ready(value) => value,
        MaybeReady::Pending(future) => future.await,
    }
}

fn too_large() -> Response<Bytes> {
    problem_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the login request body is too large",
        serde_json::Map::new(),
    )
}

#[cold]
fn unavailable(parts: &Parts, error: BackendError) -> Response<Bytes> {
    tracing::warn!(target: "portcullis::ratelimit", error = %error, "login throttle backend failed");
    let error = AuthError::unavailable("login_throttle_backend").with_source(error);
    DefaultRenderer.render(&error, parts)
}

/// The one `429` of the login throttle: the same shape whichever limit refused.
fn throttled<B>(
    shared: &LoginShared<B>,
    parts: &Parts,
    bucket: LoginBucket,
    wait: Duration,
) -> Response<Bytes> {
    metrics::login_blocked(bucket.key_kind(), wait);
    shared.events.emit(&AuthEvent::Throttled {
        policy: "login",
        key_kind: bucket.key_kind(),
        retry_after: wait,
    });
    let mut response = DefaultRenderer.render(&AuthError::rate_limited(wait), parts);
    headers::insert(
        response.headers_mut(),
        &shared.policy_header,
        headers::limit_value(&shared.name, 0, wait),
    );
    response
}
