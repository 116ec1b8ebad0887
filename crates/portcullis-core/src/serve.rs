//! Serving an HTTP/1.1 app with the limits a server facing the internet needs.
//!
//! `axum::serve` reads request heads and bodies for as long as a client cares to
//! send them, and accepts connections for as long as the process has file
//! descriptors: a few thousand clients that send half a request line each take a
//! server down. [`serve`] runs the same app with:
//!
//! - a **head timeout** (default [`DEFAULT_HEAD_TIMEOUT`], 10 s): a connection that has
//!   not sent a whole request head by then is closed, whether it is new, between two
//!   keep-alive requests (so this is the idle timeout too), or trickling bytes;
//! - a **body timeout** (default [`DEFAULT_BODY_TIMEOUT`], 30 s): a request body not
//!   received in full by then ends with an error the handler sees as a failed read
//!   (axum answers `400`/`413`-style rejections) and the connection closes;
//! - a **connection cap** (default [`DEFAULT_MAX_CONNECTIONS`]): past it the server
//!   stops accepting until a connection closes, so descriptors never run out;
//! - the peer address in every request's extensions as
//!   [`PeerAddr`], which `ClientIp` and the rate limits read;
//! - graceful shutdown: on the signal, stop accepting and let requests in flight finish.
//!
//! HTTP/1.1 only, without connection upgrades (WebSocket): serve gRPC with tonic's own
//! server.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//!
//! # async fn run(stop: tokio::sync::oneshot::Receiver<()>) -> std::io::Result<()> {
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! portcullis_core::serve::serve(listener, app)
//!     .head_timeout(Duration::from_secs(5))
//!     // Stop accepting when told to (a signal handler, say), then drain.
//!     .with_graceful_shutdown(async { let _ = stop.await; })
//!     .await
//! # }
//! ```

use std::{
    error::Error as StdError,
    fmt,
    future::{Future, IntoFuture},
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use crate::PeerAddr;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore, time::Sleep};
use tower_service::Service;

/// The default head timeout: 10 seconds.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The default body timeout: 30 seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default connection cap: 16,384 connections at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

type BoxError = Box<dyn StdError + Send + Sync>;
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves `app` on `listener` (HTTP/1.1, keep-alive) with the default limits; await
/// it, or set the limits first. See the [module docs](self).
pub fn serve<S>(listener: TcpListener, app: S) -> Serve<S> {
    Serve {
        listener,
        app,
        head_timeout: DEFAULT_HEAD_TIMEOUT,
        body_timeout: DEFAULT_BODY_TIMEOUT,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        shutdown: Box::pin(std::future::pending()),
    }
}

/// A server being configured; `.await` runs it. Made by [`serve`].
#[must_use = "a server does nothing until awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    app: S,
    head_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
    shutdown: Shutdown,
}

impl<S> fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("head_timeout", &self.head_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl<S> Serve<S> {
    /// How long a connection may take to send a whole request head, counted from when
    /// the server is ready to read one (default [`DEFAULT_HEAD_TIMEOUT`]).
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// How long a request body may take to arrive in full, counted from its head
    /// (default [`DEFAULT_BODY_TIMEOUT`]).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many connections are served at once (default [`DEFAULT_MAX_CONNECTIONS`],
    /// at least 1). Keep it below the process's file-descriptor limit.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Stops accepting when `signal` completes; the server returns once the
    /// connections still open have finished their requests.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown = Box::pin(signal);
        self
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<S, B> Serve<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn run(self) -> io::Result<()> {
        let Self {
            listener,
            app,
            head_timeout,
            body_timeout,
            max_connections,
            mut shutdown,
        } = self;
        let slots = Arc::new(Semaphore::new(max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .keep_alive(true);
        loop {
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = Arc::clone(&slots).acquire_owned() => slot,
            };
            let Ok(slot) = slot else { break };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of descriptors, or the peer reset before accept: keep going.
                    Err(e) => {
                        tracing::warn!(target: "portcullis::serve", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let app = app.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(PeerAddr(peer));
                let body = TimedBody::new(body, body_timeout);
                let mut app = app.clone();
                async move {
                    std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
                    app.call(Request::from_parts(parts, body)).await
                }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                // A closed or timed-out connection is the client's business.
                let _ = connection.await;
                drop(slot);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// A request body that must arrive in full before a deadline; past it, the next read
/// fails with a [`BodyTimedOut`] error.
pub struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl fmt::Debug for TimedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedBody").finish_non_exhaustive()
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive in full within the body timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimedOut;

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body did not arrive within the body timeout")
    }
}

impl StdError for BodyTimedOut {}
