use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    marker::PhantomData,
    mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use governor::clock::Clock;
use http::{HeaderValue, Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portcullis_core::{
    AuthError, AuthEvent, DefaultRenderer, RenderRejection,
    body::{BodyMode, Wrapped},
    client_ip::missing_peer_error,
};
use tower_service::Service;

use super::layer::LoginShared;
use crate::{headers, peer::peer_addr};

/// Throttles login attempts. Made by
/// [`LoginRateLimitLayer`](super::LoginRateLimitLayer); see the
/// [module docs](crate::login). `M` is the [`BodyMode`] of its responses.
pub struct LoginRateLimit<S, C: Clock + Clone, M = Wrapped> {
    pub(super) inner: S,
    pub(super) shared: Arc<LoginShared<C>>,
    pub(super) mode: PhantomData<fn() -> M>,
}

impl<S, C: Clock + Clone, M> LoginRateLimit<S, C, M> {
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

impl<S: Clone, C: Clock + Clone, M> Clone for LoginRateLimit<S, C, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            mode: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C: Clock + Clone, M> fmt::Debug for LoginRateLimit<S, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

/// The response future of [`LoginRateLimit`]: the body must be read before the
/// handler runs, so the whole attempt is one boxed future (login is not a hot path).
/// `B` is the inner service's body type, `M` the [`BodyMode`].
pub struct ResponseFuture<B, E, M: BodyMode<B> = Wrapped> {
    inner: BoxFuture<M::Body, E>,
}

impl<B, E, M: BodyMode<B>> Future for ResponseFuture<B, E, M> {
    type Output = Result<Response<M::Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E, M: BodyMode<B>> fmt::Debug for ResponseFuture<B, E, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture(..)")
    }
}

impl<S, C, M, ReqBody, ResBody> Service<Request<ReqBody>> for LoginRateLimit<S, C, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    ResBody: Send + 'static,
    M: BodyMode<ResBody> + 'static,
    M::Body: Send + 'static,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture {
            inner: Box::pin(attempt::<_, _, M, _, _>(
                Arc::clone(&self.shared),
                inner,
                req,
            )),
        }
    }
}

async fn attempt<S, C, M, ReqBody, ResBody>(
    shared: Arc<LoginShared<C>>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<M::Body>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: BodyMode<ResBody>,
    C: Clock + Clone,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let reject = |response: Response<Bytes>| Ok(response.map(M::rejection));

    let Some(peer) = peer_addr(&parts.extensions) else {
        return reject(DefaultRenderer.render(&missing_peer_error(), &parts));
    };
    let ip = shared
        .resolver
        .key(shared.resolver.resolve(peer.ip(), &parts.headers));

    let decision = shared.attempts.check_now(&ip);
    if !decision.is_allowed() {
        return reject(throttled(&shared, &parts, "ip", decision.retry_after()));
    }

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.body_limit as u64) {
        return reject(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the login request body is too large",
        ));
    }
    let bytes = match Limited::new(body, shared.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return reject(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the login request body is too large",
            ));
        }
        Err(_) => {
            return reject(problem(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the login request body could not be read",
            ));
        }
    };

    let account = shared.account(&parts, &bytes);
    let account_key = shared.account_key(account.as_deref());
    drop(account);

    let now = shared.now();
    let ip_slot = match shared.ip_failures.begin(ip, now) {
        Ok(slot) => slot,
        Err(wait) => return reject(throttled(&shared, &parts, "ip_failures", wait)),
    };
    let account_slot = match shared.accounts.begin(account_key, now) {
        Ok(slot) => slot,
        Err(wait) => {
            shared.ip_failures.refund(&ip_slot);
            return reject(throttled(&shared, &parts, "account", wait));
        }
    };

    let response = inner
        .call(Request::from_parts(parts, ReqBody::from(bytes)))
        .await?;

    let status = response.status();
    if (shared.is_failure)(status) {
        shared
            .events
            .emit(&AuthEvent::LoginFailed { key_kind: "ip" });
        shared.events.emit(&AuthEvent::LoginFailed {
            key_kind: "account",
        });
        tracing::debug!(
            target: "portcullis::ratelimit",
            account = %Short(&account_key),
            status = status.as_u16(),
            "login failure counted"
        );
    } else if status.is_success() {
        shared.accounts.clear(&account_slot);
        shared.ip_failures.refund(&ip_slot);
    } else {
        shared.accounts.refund(&account_slot);
        shared.ip_failures.refund(&ip_slot);
    }
    Ok(M::response(response))
}

/// The first 8 bytes of the salted account hash, in hex: enough to correlate log
/// lines, useless to recover the account.
struct Short<'a>(&'a [u8; 32]);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The one `429` of the login throttle: the same shape whichever limit refused.
fn throttled<C: Clock + Clone>(
    shared: &LoginShared<C>,
    parts: &Parts,
    key_kind: &'static str,
    wait: Duration,
) -> Response<Bytes> {
    shared.events.emit(&AuthEvent::Throttled {
        policy: "login",
        key_kind,
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

fn problem(status: StatusCode, code: &str, detail: &str) -> Response<Bytes> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    })
    .to_string();
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
