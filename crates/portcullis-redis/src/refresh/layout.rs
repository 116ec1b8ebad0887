//! The keys of [`RedisRefreshStore`](super::RedisRefreshStore) and the shapes of its
//! scripts' replies.

use portcullis_core::internal::{from_hex, from_unix_micros, hex};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RotateOutcome, Rotation,
    SealedToken, TokenHash,
};

use crate::Redis;

/// The subject's hash tag: 128 bits of its SHA-256 in hex, so any subject (braces
/// included) gives a short, well-formed tag.
pub(super) fn tag(subject: &str) -> String {
    hex(&TokenHash::of(subject.as_bytes()).0[..16])
}

/// The keys of one subject, all under its hash tag.
pub(super) struct SubjectKeys {
    pub(super) tag: String,
    pub(super) stamp: Vec<u8>,
    pub(super) families: Vec<u8>,
    pub(super) token_prefix: Vec<u8>,
}

impl SubjectKeys {
    pub(super) fn new(redis: &Redis, tag: &str) -> Self {
        let key = |suffix: &[u8]| redis.key(&[b"rt:{", tag.as_bytes(), b"}:", suffix]);
        Self {
            tag: tag.to_owned(),
            stamp: key(b"n"),
            families: key(b"f"),
            token_prefix: key(b"t:"),
        }
    }

    pub(super) fn token(&self, hash: &TokenHash) -> Vec<u8> {
        let mut key = self.token_prefix.clone();
        key.extend_from_slice(hex(&hash.0).as_bytes());
        key
    }
}

pub(super) fn parse_us(value: &str) -> Option<i64> {
    value.parse().ok()
}

/// A family expiry (µs) as the Unix ms at which its keys may go.
pub(super) fn expiry_ms(family_expires_us: i64) -> i64 {
    family_expires_us.div_euclid(1000) + 1
}

/// `SET index tag NX` until the family expires (µs, as the script answered). An
/// index entry never changes once written; `NX` keeps a colliding hash or family id
/// of another subject from taking it over.
pub(super) fn set_index(index: &[u8], tag: &str, family_expires: &str) -> Option<redis::Cmd> {
    let us = parse_us(family_expires)?;
    let mut cmd = redis::cmd("SET");
    cmd.arg(index)
        .arg(tag)
        .arg("NX")
        .arg("PXAT")
        .arg(expiry_ms(us));
    Some(cmd)
}

/// Reads the rotation script's reply; `Err(None)` when it has another shape.
pub(super) fn rotate_outcome(
    rotation: &Rotation<'_>,
    reply: &[String],
) -> Result<RotateOutcome, Option<TokenError>> {
    let time = |us: &str| parse_us(us).map(from_unix_micros);
    let outcome = match reply.first().map(String::as_str) {
        Some("unknown") => Some(RotateOutcome::Unknown),
        Some("revoked") => Some(RotateOutcome::FamilyRevoked),
        Some("mismatch") => Some(RotateOutcome::ClientMismatch),
        Some("expired") => Some(RotateOutcome::Expired),
        Some("duplicate") => {
            return Err(Some(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token",
            )));
        }
        Some("reused") => match reply {
            [_, subject, family] => Some(RotateOutcome::Reused {
                subject: subject.clone(),
                family: family.clone(),
            }),
            _ => None,
        },
        Some("rotated") => match reply {
            [_, subject, family, client_id, expires, family_expires] => {
                match (time(expires), time(family_expires)) {
                    (Some(expires_at), Some(family_expires_at)) => {
                        Some(RotateOutcome::Rotated(RefreshRecord {
                            hash: *rotation.successor,
                            family: family.clone(),
                            subject: subject.clone(),
                            client_id: client_id.clone(),
                            issued_at: rotation.now,
                            expires_at,
                            family_expires_at,
                        }))
                    }
                    _ => None,
                }
            }
            _ => None,
        },
        Some("repeated") => match reply {
            [
                _,
                subject,
                family,
                client_id,
                issued,
                expires,
                fexp,
                next,
                sealed,
            ] => {
                let parsed = (
                    time(issued),
                    time(expires),
                    time(fexp),
                    from_hex::<32>(next),
                    from_hex::<32>(sealed),
                );
                match parsed {
                    (Some(issued_at), Some(expires_at), Some(fexp), Some(n), Some(s)) => {
                        Some(RotateOutcome::Repeated {
                            successor: RefreshRecord {
                                hash: TokenHash(n),
                                family: family.clone(),
                                subject: subject.clone(),
                                client_id: client_id.clone(),
                                issued_at,
                                expires_at,
                                family_expires_at: fexp,
                            },
                            sealed: SealedToken(s),
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    outcome.ok_or(None)
}

/// Reads the find script's reply: `None` when it has another shape.
pub(super) fn find_record(hash: TokenHash, reply: &[String]) -> Option<Option<RefreshRecord>> {
    match reply {
        [] => Some(None),
        [family, subject, issued, expires, family_expires, client_id] => {
            let times = (
                parse_us(issued),
                parse_us(expires),
                parse_us(family_expires),
            );
            let (Some(issued), Some(expires), Some(family_expires)) = times else {
                return None;
            };
            Some(Some(RefreshRecord {
                hash,
                family: family.clone(),
                subject: subject.clone(),
                client_id: client_id.clone(),
                issued_at: from_unix_micros(issued),
                expires_at: from_unix_micros(expires),
                family_expires_at: from_unix_micros(family_expires),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn any_subject_gives_a_short_tag_without_braces() {
        let tags = ["alice", "{alice}", "}", "", &"x".repeat(10_000)].map(tag);
        for t in &tags {
            assert_eq!(t.len(), 32);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
        }
        assert_ne!(tags[0], tags[1]);
        assert_eq!(tag("alice"), tags[0]);
    }

    #[test]
    fn replies_of_another_shape_are_refused() {
        let hash = TokenHash([1; 32]);
        let rotation = Rotation {
            presented: &hash,
            successor: &hash,
            sealed_successor: &SealedToken([0; 32]),
            client_id: "web",
            now: SystemTime::now(),
            idle_timeout: std::time::Duration::from_secs(60),
            reuse_interval: std::time::Duration::from_secs(10),
        };
        let reply = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        for bad in [
            reply(&[]),
            reply(&["rotated", "alice"]),
            reply(&["rotated", "alice", "f", "web", "soon", "1"]),
            reply(&["repeated", "alice", "f", "web", "1", "2", "3", "zz", "00"]),
            reply(&["reused"]),
            reply(&["surprise"]),
        ] {
            assert!(
                matches!(rotate_outcome(&rotation, &bad), Err(None)),
                "{bad:?}"
            );
        }
        let duplicate = rotate_outcome(&rotation, &reply(&["duplicate"]));
        assert!(matches!(duplicate, Err(Some(e)) if e.kind() == TokenErrorKind::Store));
        assert!(matches!(
            rotate_outcome(&rotation, &reply(&["expired"])),
            Ok(RotateOutcome::Expired)
        ));
        assert!(find_record(hash, &reply(&["f", "alice", "1"])).is_none());
        assert_eq!(find_record(hash, &[]), Some(None));
    }
}
