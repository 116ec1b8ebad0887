//! The gRPC rendering of an [`AuthError`]: the trailers-only response the layers
//! answer with, and (feature `tonic`) the `tonic::Status` a handler returns. Both carry
//! the same code, message and metadata.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};

use super::{AuthError, AuthErrorKind};

/// The metadata key naming the scopes a refused call lacks (space-separated).
pub(crate) const REQUIRED_SCOPE: &str = "required-scope";
/// The metadata key naming the roles a refused call lacks (space-separated).
pub(crate) const REQUIRED_ROLE: &str = "required-role";

impl AuthError {
    /// The gRPC rendering: a trailers-only response (HTTP 200, `grpc-status`,
    /// `grpc-message` and the metadata in the headers, empty body), as tonic clients
    /// expect.
    ///
    /// The message is the description, followed for a `PERMISSION_DENIED` by what is
    /// missing (`the credential lacks a required scope: inventory:write`). The missing
    /// names are in the metadata too, as `required-scope` and `required-role`, and the
    /// wait of a `RESOURCE_EXHAUSTED` as `retry-after` (whole seconds).
    ///
    /// ```
    /// use portcullis_core::AuthError;
    ///
    /// let response = AuthError::insufficient_role("admin").to_grpc_response();
    /// assert_eq!(response.headers()["grpc-status"], "7");
    /// assert_eq!(response.headers()["grpc-message"], "the credential lacks a required role: admin");
    /// assert_eq!(response.headers()["required-role"], "admin");
    /// ```
    pub fn to_grpc_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(self.kind.grpc_status()));
        let message = self.grpc_message();
        if let Ok(message) = HeaderValue::from_str(&percent_encode(&message)) {
            headers.insert("grpc-message", message);
        }
        self.insert_grpc_metadata(headers);
        response
    }

    /// The status message: the description, then what a `403` lacks.
    pub(crate) fn grpc_message(&self) -> Cow<'static, str> {
        let description = self.description();
        let (role, scope) = (self.role.as_deref(), self.scope.as_deref());
        match (self.kind, role, scope) {
            (AuthErrorKind::InsufficientRole, Some(role), _) => {
                format!("{description}: {role}").into()
            }
            (AuthErrorKind::InsufficientScope, Some(role), Some(scope)) => {
                format!("{description}: role {role} or scope {scope}").into()
            }
            (AuthErrorKind::InsufficientScope, None, Some(scope)) => {
                format!("{description}: {scope}").into()
            }
            _ => Cow::Borrowed(description),
        }
    }

    fn insert_grpc_metadata(&self, headers: &mut HeaderMap) {
        for (key, names) in [(REQUIRED_SCOPE, &self.scope), (REQUIRED_ROLE, &self.role)] {
            // Names that are no valid metadata value are still in the message.
            if let Some(Ok(value)) = names.as_deref().map(HeaderValue::from_str) {
                headers.insert(key, value);
            }
        }
        self.insert_retry_after(headers);
        self.insert_dpop_nonce(headers);
        if self.dpop_algs().is_some()
            && let Some(challenge) = self.challenge(crate::DEFAULT_REALM)
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
    }
}

/// `grpc-message` encoding: `%` and bytes outside visible ASCII and space become
/// `%XX`, as the gRPC over HTTP/2 spec requires.
fn percent_encode(message: &str) -> Cow<'_, str> {
    let plain = |b: u8| (0x20..0x7f).contains(&b) && b != b'%';
    if message.bytes().all(plain) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len() + 8);
    for b in message.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// A refusal as a handler's `Status`: the code, message and metadata of
/// [`to_grpc_response`](AuthError::to_grpc_response), with the error as its source.
///
/// ```
/// use portcullis_core::AuthError;
///
/// let status = tonic::Status::from(AuthError::insufficient_scope("inventory:write"));
/// assert_eq!(status.code(), tonic::Code::PermissionDenied);
/// assert_eq!(status.message(), "the credential lacks a required scope: inventory:write");
/// assert_eq!(status.metadata().get("required-scope").unwrap(), "inventory:write");
/// ```
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        let mut headers = HeaderMap::new();
        error.insert_grpc_metadata(&mut headers);
        let code = tonic::Code::from_i32(i32::from(error.kind.grpc_status()));
        let metadata = tonic::metadata::MetadataMap::from_headers(headers);
        let mut status = tonic::Status::with_metadata(code, error.grpc_message(), metadata);
        status.set_source(std::sync::Arc::new(error));
        status
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_missing_scope_is_named_in_the_message_and_metadata() {
        let response = AuthError::insufficient_scope("inventory:write").to_grpc_response();
        let headers = response.headers();
        assert_eq!(
            headers["grpc-message"],
            "the credential lacks a required scope: inventory:write"
        );
        assert_eq!(headers[REQUIRED_SCOPE], "inventory:write");
        assert!(headers.get(REQUIRED_ROLE).is_none());
    }

    #[test]
    fn a_role_or_scope_refusal_names_both() {
        let err = AuthError::insufficient_role_or_scope("admin", "admin:all");
        assert_eq!(
            err.grpc_message(),
            "the credential lacks a required role or scope: role admin or scope admin:all"
        );
        let response = err.to_grpc_response();
        assert_eq!(response.headers()[REQUIRED_ROLE], "admin");
        assert_eq!(response.headers()[REQUIRED_SCOPE], "admin:all");
    }

    #[test]
    fn other_refusals_keep_the_plain_description() {
        let err = AuthError::invalid_token("bad_signature");
        assert_eq!(err.grpc_message(), "the credential is invalid");
        let headers = err.to_grpc_response().into_parts().0.headers;
        assert!(headers.get(REQUIRED_SCOPE).is_none());
        assert!(headers.get(REQUIRED_ROLE).is_none());
    }

    #[test]
    fn a_rate_limit_carries_its_wait() {
        let response = AuthError::rate_limited(Duration::from_millis(1500)).to_grpc_response();
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()["retry-after"], "2");
    }

    #[test]
    fn percent_and_invisible_bytes_are_encoded() {
        assert_eq!(percent_encode("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode("100% é"), "100%25 %C3%A9");
    }

    #[test]
    fn names_that_are_no_header_value_stay_in_the_message_only() {
        let err = AuthError::insufficient_scope("a\u{7f}b");
        let response = err.to_grpc_response();
        assert!(response.headers().get(REQUIRED_SCOPE).is_none());
        assert_eq!(
            response.headers()["grpc-message"],
            "the credential lacks a required scope: a%7Fb"
        );
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn a_status_carries_code_message_metadata_and_source() {
        use std::error::Error as _;

        let status = tonic::Status::from(AuthError::rate_limited(Duration::from_secs(3)));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "too many requests");
        assert_eq!(status.metadata().get("retry-after").unwrap(), "3");
        let source = status.source().unwrap();
        assert_eq!(
            source.downcast_ref::<AuthError>().unwrap().reason(),
            "rate_limited"
        );

        let status = tonic::Status::from(AuthError::insufficient_role("admin"));
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "the credential lacks a required role: admin"
        );
        assert_eq!(status.metadata().get(REQUIRED_ROLE).unwrap(), "admin");
    }
}
