//! Randomness from the operating system.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
///
/// If the operating system cannot supply randomness: no token may be issued then.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// `N` random bytes as unpadded base64url.
pub(crate) fn b64<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<N>())
}
