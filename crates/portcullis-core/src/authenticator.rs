//! The [`Authenticator`] trait: turn a request's head into a [`Principal`].

use std::sync::Arc;

use http::request::Parts;

use crate::{AuthError, AuthErrorKind, MaybeReady, Principal};

/// The outcome of an authentication: a principal, no credential of this kind
/// (`Ok(None)`), or a refusal.
pub type AuthResult = Result<Option<Principal>, AuthError>;

/// Authenticates requests for [`AuthLayer`](crate::AuthLayer).
///
/// Return `Ok(None)` when the request carries no credential *of this kind* (so a tuple
/// of authenticators can try the next one, and `optional()` mode can pass the request
/// through); return an error when a credential is present but bad. Return
/// [`MaybeReady::Pending`] only once a credential of this kind was found: a tuple
/// lets a pending authenticator decide.
///
/// Tuples `(A, B)`, `(A, B, C)`, … are authenticators too: the first whose credential
/// is present decides, and a present but invalid credential never falls through.
///
/// ```
/// use http::request::Parts;
/// use portcullis_core::{AuthError, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
///
/// /// Accepts `x-demo-user: <name>` (for tests only!).
/// struct DemoHeader;
///
/// impl Authenticator for DemoHeader {
///     fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
///         let result = match parts.headers.get("x-demo-user").map(|v| v.to_str()) {
///             None => Ok(None),
///             Some(Ok(name)) if !name.is_empty() => {
///                 Ok(Some(Principal::builder(name, PrincipalKind::User).build()))
///             }
///             Some(_) => Err(AuthError::invalid_token("bad_demo_header")),
///         };
///         MaybeReady::Ready(result)
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates one request from its head.
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult>;
}

impl<A: Authenticator + ?Sized> Authenticator for Arc<A> {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        (**self).authenticate(parts)
    }
}

impl<A: Authenticator + ?Sized> Authenticator for Box<A> {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        (**self).authenticate(parts)
    }
}

macro_rules! tuple_authenticator {
    ($($name:ident),+) => {
        impl<$($name: Authenticator),+> Authenticator for ($($name,)+) {
            #[allow(non_snake_case)]
            fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
                let ($($name,)+) = self;
                // "No credential" with a challenge of its own (DPoP's) lets the next
                // authenticator try, and is the answer if none decides.
                let mut missing = None;
                $(
                    match $name.authenticate(parts) {
                        MaybeReady::Ready(Ok(None)) => {}
                        MaybeReady::Ready(Err(e))
                            if e.kind() == AuthErrorKind::MissingCredentials =>
                        {
                            missing.get_or_insert(e);
                        }
                        decided => return decided,
                    }
                )+
                MaybeReady::Ready(missing.map_or(Ok(None), Err))
            }
        }
    };
}

tuple_authenticator!(A);
tuple_authenticator!(A, B);
tuple_authenticator!(A, B, C);
tuple_authenticator!(A, B, C, D);
tuple_authenticator!(A, B, C, D, E);
tuple_authenticator!(A, B, C, D, E, F);
