//! The Wycheproof JWK-set vectors (`tests/vectors/wycheproof/json_web_key_test.json`
//! at the workspace root): every key a case says must be refused is absent from the
//! set we build, every valid token verifies (when its key may be used at all), and
//! nothing invalid verifies.

use base64::Engine as _;
use serde_json::Value;

use super::ingest::{Policy, ingest};
use crate::compact::B64;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/wycheproof/json_web_key_test.json"
);

struct Case {
    id: u64,
    comment: String,
    valid: bool,
    token: String,
    kid: Option<String>,
    set: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let doc: Value = serde_json::from_slice(&std::fs::read(VECTORS).unwrap()).unwrap();
    let mut out = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let keys = group.get("public").unwrap_or(&group["private"]);
        let set = if keys.get("keys").is_some() {
            keys.clone()
        } else {
            serde_json::json!({ "keys": [keys] })
        };
        for test in group["tests"].as_array().unwrap() {
            let token = test["jws"].as_str().unwrap().to_owned();
            let header = B64.decode(token.split('.').next().unwrap()).unwrap();
            let header: Value = serde_json::from_slice(&header).unwrap();
            out.push(Case {
                id: test["tcId"].as_u64().unwrap(),
                comment: test["comment"].as_str().unwrap().to_owned(),
                valid: test["result"] == "valid",
                token,
                kid: header["kid"].as_str().map(str::to_owned),
                set: serde_json::to_vec(&set).unwrap(),
            });
        }
    }
    out
}

/// Whether `case`'s token verifies against the set read under `policy`, and whether
/// the key it names survived ingestion.
fn run(case: &Case, policy: Policy) -> (bool, bool) {
    match ingest(&case.set, policy, "wycheproof") {
        Err(_) => (false, false),
        Ok(got) => {
            let kept = got
                .set
                .keys()
                .iter()
                .any(|k| k.kid() == case.kid.as_deref());
            let verified = got.set.verify_jws(&case.token, 1 << 16).is_ok();
            (verified, kept)
        }
    }
}

#[test]
fn wycheproof_jwk_sets() {
    let cases = cases();
    assert_eq!(cases.len(), 26, "the vector file changed");
    let (mut accepted, mut refused_keys) = (0, 0);
    for case in &cases {
        let symmetric = std::str::from_utf8(&case.set)
            .unwrap()
            .contains(r#""kty":"oct""#);
        // As a remote set: shared secrets never count.
        let (remote_ok, remote_kept) = run(case, Policy::REMOTE);
        // As a local set, where secrets may be configured.
        let (local_ok, local_kept) = run(
            case,
            Policy {
                allow_symmetric: true,
            },
        );
        let label = format!("tcId {} ({})", case.id, case.comment);
        if case.valid {
            assert!(local_ok, "{label}: a valid token was refused");
            assert_eq!(remote_ok, !symmetric, "{label}");
            accepted += 1;
        } else {
            assert!(
                !local_ok && !remote_ok,
                "{label}: an invalid token verified ({local_ok} {remote_ok} {local_kept} {remote_kept})"
            );
            // The case's point is a key to refuse; only 3 is a bad signature.
            if case.id != 3 {
                assert!(
                    !local_kept && !remote_kept,
                    "{label}: the key was not refused"
                );
                refused_keys += 1;
            }
        }
    }
    assert_eq!(accepted, 5);
    assert_eq!(refused_keys, 20);
}

#[test]
fn roca_key_is_refused_for_its_fingerprint() {
    let doc: Value = serde_json::from_slice(&std::fs::read(VECTORS).unwrap()).unwrap();
    let modulus = |comment: &str| {
        let group = doc["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["comment"] == comment)
            .unwrap();
        let key = &group["public"];
        let key = key.get("keys").map_or(key, |keys| &keys[0]);
        B64.decode(key["n"].as_str().unwrap()).unwrap()
    };
    let roca = modulus("jws_rsa_roca_key");
    assert!(roca.len() * 8 >= 2048, "refused for ROCA, not for size");
    assert!(super::ingest::roca::fingerprinted(&roca));
    assert!(!super::ingest::roca::fingerprinted(&modulus("rs256")));
}
