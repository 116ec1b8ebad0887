//! Server nonces (RFC 9449 §8, §9) that need no shared state: a nonce is a time window
//! and an HMAC of it, so every instance holding the secret issues and accepts the
//! same ones, and they expire by themselves.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use http::HeaderValue;

use crate::compact::B64;

/// The bytes of a nonce: the window (8, big-endian) and the truncated tag (16).
const NONCE_LEN: usize = 24;

/// Issues and checks nonces.
#[derive(Clone)]
pub(crate) struct Nonces {
    key: hmac::Key,
    /// The window length, seconds (at least 1).
    period: i64,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces")
            .field("key", &"<redacted>")
            .field("period", &self.period)
            .finish()
    }
}

impl Nonces {
    pub(crate) fn new(secret: &[u8], period: i64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            period: period.max(1),
        }
    }

    fn tag(&self, window: i64) -> [u8; 16] {
        let mut message = b"portcullis dpop nonce ".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        let tag = hmac::sign(&self.key, &message);
        tag.as_ref()[..16]
            .try_into()
            .expect("SHA-256 tags are 32 bytes")
    }

    /// The nonce of the window `now` falls in.
    pub(crate) fn current(&self, now: i64) -> HeaderValue {
        let window = now.div_euclid(self.period);
        let mut bytes = [0u8; NONCE_LEN];
        bytes[..8].copy_from_slice(&window.to_be_bytes());
        bytes[8..].copy_from_slice(&self.tag(window));
        HeaderValue::from_str(&B64.encode(bytes)).expect("base64url is a header value")
    }

    /// Whether `nonce` was issued in the current window or the one before (so a nonce
    /// lives between one and two periods).
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = B64.decode(nonce) else {
            return false;
        };
        let Ok(bytes) = <[u8; NONCE_LEN]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let window = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let current = now.div_euclid(self.period);
        if window != current && window != current - 1 {
            return false;
        }
        let mut message = b"portcullis dpop nonce ".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        let full = hmac::sign(&self.key, &message);
        // Constant time: the tag is the secret-derived part.
        subtle::ConstantTimeEq::ct_eq(&full.as_ref()[..16], &bytes[8..]).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_one_to_two_periods_and_only_under_its_secret() {
        let nonces = Nonces::new(b"a-nonce-secret-of-32-bytes-long!", 60);
        let nonce = nonces.current(1_000_020);
        let nonce = nonce.to_str().unwrap();
        assert!(nonces.accepts(nonce, 1_000_020));
        assert!(nonces.accepts(nonce, 1_000_079));
        assert!(!nonces.accepts(nonce, 1_000_140));
        assert!(!nonces.accepts(nonce, 999_900));
        let other = Nonces::new(b"another-secret-of-32-bytes-long!", 60);
        assert!(!other.accepts(nonce, 1_000_020));
        let mut forged = nonce.to_owned();
        forged.replace_range(31.., if nonce.ends_with('A') { "B" } else { "A" });
        assert!(!nonces.accepts(&forged, 1_000_020));
        assert!(!nonces.accepts("", 1_000_020));
    }
}
