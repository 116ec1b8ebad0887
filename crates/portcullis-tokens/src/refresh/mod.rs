//! Rotating refresh tokens with token families and reuse detection.
//!
//! A login starts a *family*. Every refresh consumes the presented token and hands
//! out its successor in the same family. Presenting a token that was already consumed
//! means two parties hold it (the client and a thief): the whole family is revoked,
//! the live successor included, and
//! [`AuthEvent::RefreshReuseDetected`](portcullis_core::AuthEvent::RefreshReuseDetected)
//! is emitted ([RFC 9700 §4.14.2](https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)).
//!
//! [`RefreshTokens`] does the issuing and rotating; a [`RefreshStore`] keeps the
//! hashed tokens: [`MemoryRefreshStore`] here, Redis and SQL stores in their crates.

mod memory;
mod store;
mod tokens;

pub use self::{
    memory::{DEFAULT_MAX_FAMILIES, DEFAULT_MAX_FAMILIES_PER_SUBJECT, MemoryRefreshStore},
    store::{
        RefreshRecord, RefreshStore, RotateOutcome, Rotation, SealedToken, SessionStamp, TokenHash,
    },
    tokens::{
        DEFAULT_ABSOLUTE_LIFETIME, DEFAULT_IDLE_TIMEOUT, DEFAULT_REUSE_INTERVAL,
        IssuedRefreshToken, REFRESH_TOKEN_LEN, RefreshToken, RefreshTokens, RefreshTokensBuilder,
    },
};
