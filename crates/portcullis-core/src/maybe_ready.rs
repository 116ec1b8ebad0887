//! [`MaybeReady`]: an answer now, or a future of it.

use std::{fmt, future::Future, pin::Pin};

/// An answer known now, or one that must wait for I/O.
///
/// What the Portcullis traits return where most calls answer at once (keys in memory, a
/// cache hit, nothing revoked) and a few must wait (a JWKS refresh, a store look-up):
/// [`Authenticator::authenticate`](crate::Authenticator::authenticate),
/// [`Revocation::check`](crate::Revocation::check), and the backends of the API-key
/// store and the rate limit. Only the waiting case allocates.
///
/// ```
/// use portcullis_core::MaybeReady;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let now: MaybeReady<u32> = MaybeReady::Ready(1);
/// let later = MaybeReady::pending(async { 2 });
/// assert_eq!(now.await + later.await, 3);
/// # }
/// ```
pub enum MaybeReady<T> {
    /// Decided without waiting.
    Ready(T),
    /// Must wait.
    Pending(Pin<Box<dyn Future<Output = T> + Send + 'static>>),
}

impl<T> MaybeReady<T> {
    /// Wraps a future.
    pub fn pending(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }
}

impl<T> From<T> for MaybeReady<T> {
    fn from(value: T) -> Self {
        Self::Ready(value)
    }
}

impl<T: Send + 'static> IntoFuture for MaybeReady<T> {
    type Output = T;
    type IntoFuture = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

    /// Awaits the answer (a ready one is boxed; the hot paths match on
    /// [`Ready`](Self::Ready) instead).
    fn into_future(self) -> Self::IntoFuture {
        match self {
            Self::Ready(value) => Box::pin(std::future::ready(value)),
            Self::Pending(future) => future,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for MaybeReady<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(value) => f.debug_tuple("Ready").field(value).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}
