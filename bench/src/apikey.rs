//! The record the API-key benchmarks store for the key they present.

use std::time::SystemTime;

use portcullis_apikey::{ApiKeyRecord, KeyHasher, ParsedKey};

/// An active service key's record for `key`, its digest taken with SHA-256.
pub fn record(key: &ParsedKey<'_>, name: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: key.id().to_owned(),
        owner: "svc-bench".into(),
        name: name.into(),
        scopes: vec!["hello:read".into()],
        roles: vec!["service".into()],
        created_at: SystemTime::now(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        session_bound: true,
        digest: KeyHasher::sha256().digest(key),
    }
}
