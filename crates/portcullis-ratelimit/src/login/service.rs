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
use governor::clock::Clock;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portcullis_core::{
    AuthError, AuthEvent, DefaultRenderer, RenderRejection,
    auth::ResponseFuture,
    body::RejectionBody,
    internal::{hex, missing_peer_error},
    problem_response,
};
use tower_service::Service;

use super::layer::LoginShared;
use crate::{headers, peer::peer_addr};

/// Throttles login attempts. Made by
/// [`LoginRateLimitLayer`](super::LoginRateLimitLayer); see the
/// [module docs](crate::login).
///
/// Its response future is core's
/// [`ResponseFuture`](portcullis_core::auth::ResponseFuture): a refusal that needs no
/// body (no peer address, the per-IP attempt quota) is answered at once; otherwise the
/// body is read, the attempt counted and the handler called in one boxed future
/// (login is not a hot path), whose answer is handed on as it is.
pub struct LoginRateLimit<S, C: Clock + Clone> {
    pub(super) inner: S,
    pub(super) shared: Arc<LoginShared<C>>,
}

impl<S, C: Clock + Clone> LoginRateLimit<S, C> {
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

impl<S: Clone, C: Clock + Clone> Clone for LoginRateLimit<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, C: Clock + Clone> fmt::Debug for LoginRateLimit<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type Answer<B, E> = ResponseFuture<Ready<Result<Response<B>, E>>>;

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for LoginRateLimit<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    C: Clock + Clone + Send + Sync + 'static,
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

        let decision = shared.attempts.check_now(&ip);
        if !decision.is_allowed() {
            return ResponseFuture::rejected(throttled(
                shared,
                &parts,
                "ip",
                decision.retry_after(),
            ));
        }
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

/// Reads the body, counts the attempt provisionally, calls the handler and settles
/// the count by its status.
async fn attempt<S, C, ReqBody, ResBody>(
    shared: Arc<LoginShared<C>>,
    mut inner: S,
    parts: Parts,
    body: ReqBody,
    ip: IpAddr,
) -> Answer<ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Clock + Clone,
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
    let account_key = shared.account_key(account.as_deref());
    drop(account);

    let now = shared.now();
    let ip_slot = match shared.ip_failures.begin(ip, now) {
        Ok(slot) => slot,
        Err(wait) => {
            return ResponseFuture::rejected(throttled(&shared, &parts, "ip_failures", wait));
        }
    };
    let account_slot = match shared.accounts.begin(account_key, now) {
        Ok(slot) => slot,
        Err(wait) => {
            shared.ip_failures.refund(&ip_slot);
            return ResponseFuture::rejected(throttled(&shared, &parts, "account", wait));
        }
    };

    let response = match inner
        .call(Request::from_parts(parts, ReqBody::from(bytes)))
        .await
    {
        Ok(response) => response,
        // The handler failed: the provisional failure stands.
        Err(e) => return ResponseFuture::called(std::future::ready(Err(e))),
    };

    let status = response.status();
    if (shared.is_failure)(status) {
        shared
            .events
            .emit(&AuthEvent::LoginFailed { key_kind: "ip" });
        shared.events.emit(&AuthEvent::LoginFailed {
            key_kind: "account",
        });
        // The first 8 bytes of the salted account hash: enough to correlate log
        // lines, useless to recover the account.
        tracing::debug!(
            target: "portcullis::ratelimit",
            account = %hex(&account_key[..8]),
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
    ResponseFuture::called(std::future::ready(Ok(response)))
}

fn too_large() -> Response<Bytes> {
    problem_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the login request body is too large",
        serde_json::Map::new(),
    )
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
