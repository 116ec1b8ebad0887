//! [`FailurePolicy`]: what a backend answers when Redis cannot.

/// What a backend does when Redis does not answer in time or fails.
///
/// Every failure is logged (target `portcullis::redis`, at most one line a second
/// while the outage lasts, and an `INFO` line once Redis answers again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Refuse: the client gets `503 Service Unavailable`. The default, and the only
    /// sound choice for authentication decisions (a revoked token must not pass
    /// because Redis is down).
    #[default]
    Closed,
    /// Let the request through as if the shared check had passed, with a `WARN` log
    /// line. Sensible for rate limits where availability matters more than the limit
    /// during an outage; dangerous for revocation (a revoked token passes while Redis
    /// is down).
    Open,
}
