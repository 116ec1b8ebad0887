//! Key generation and the format check.

mod common;

use std::collections::HashSet;

use portcullis_apikey::{KeyFormat, format::BODY_LEN};
use proptest::prelude::*;
use regex::Regex;

const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[test]
fn generated_keys_match_the_documented_regex() {
    let format = common::format();
    // The literal printed in the module docs.
    let documented = Regex::new(r"^pk_live_[0-9A-Za-z]{10}_[0-9A-Za-z]{49}$").unwrap();
    let scanner = Regex::new(&format.regex()).unwrap();
    for _ in 0..1_000 {
        let key = format.generate().unwrap();
        let k = key.expose_secret();
        assert!(documented.is_match(k), "{}", key.id());
        assert!(scanner.is_match(k));
        assert_eq!(k.len(), 68);
    }
    // Scanners find a key inside text, and not a longer look-alike.
    let key = format.generate().unwrap();
    let text = format!("export API_KEY=\"{}\" # prod", key.expose_secret());
    assert_eq!(
        scanner.find(&text).map(|m| m.as_str()),
        Some(key.expose_secret())
    );
    assert!(!scanner.is_match(&format!("{}x", key.expose_secret())));
}

#[test]
fn keys_and_ids_are_unique_over_many_generations() {
    let format = common::format();
    let n = 20_000;
    let mut keys = HashSet::with_capacity(n);
    let mut ids = HashSet::with_capacity(n);
    let mut secrets = HashSet::with_capacity(n);
    for _ in 0..n {
        let key = format.generate().unwrap();
        let k = key.expose_secret();
        ids.insert(key.id().to_owned());
        secrets.insert(k[format.prefix().len() + 11..k.len() - 6].to_owned());
        keys.insert(k.to_owned());
    }
    assert_eq!(keys.len(), n);
    assert_eq!(ids.len(), n);
    assert_eq!(secrets.len(), n);
}

#[test]
fn secret_characters_are_spread_over_the_alphabet() {
    // A sanity check on the encoding (not a randomness test): over many keys every
    // base62 character shows up in the secret's non-leading positions.
    let format = common::format();
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let key = format.generate().unwrap();
        let k = key.expose_secret();
        seen.extend(k[format.prefix().len() + 12..k.len() - 6].chars());
    }
    assert_eq!(seen.len(), 62);
}

#[test]
fn checksum_catches_every_single_character_change() {
    let format = common::format();
    for _ in 0..5 {
        let key = format.generate().unwrap();
        let k = key.expose_secret();
        for pos in 0..k.len() {
            for c in ALPHABET.chars().chain(['_', '-', ' ']) {
                if k.as_bytes()[pos] == c as u8 {
                    continue;
                }
                let mut changed = k.as_bytes().to_vec();
                changed[pos] = c as u8;
                let changed = String::from_utf8(changed).unwrap();
                assert!(
                    format.parse(&changed).is_err(),
                    "change at {pos} to {c:?} accepted"
                );
            }
        }
    }
}

#[test]
fn checksum_catches_adjacent_swaps_and_truncation() {
    let format = common::format();
    let key = format.generate().unwrap();
    let k = key.expose_secret().as_bytes();
    for pos in format.prefix().len()..k.len() - 1 {
        if k[pos] == k[pos + 1] {
            continue;
        }
        let mut swapped = k.to_vec();
        swapped.swap(pos, pos + 1);
        assert!(
            format
                .parse(std::str::from_utf8(&swapped).unwrap())
                .is_err()
        );
    }
    for len in 0..k.len() {
        assert!(
            format
                .parse(std::str::from_utf8(&k[..len]).unwrap())
                .is_err()
        );
    }
}

#[test]
fn checksum_is_crc32_of_everything_before_it() {
    let format = common::format();
    let key = format.generate().unwrap();
    let k = key.expose_secret();
    let (head, tail) = k.split_at(k.len() - 6);
    assert_eq!(tail, common::base62_6(common::crc32(head.as_bytes())));
}

#[test]
fn other_prefixes_work_and_do_not_cross() {
    let live = KeyFormat::new("acme_").unwrap();
    let test = KeyFormat::new("acme_test_").unwrap();
    let key = live.generate().unwrap();
    assert_eq!(key.expose_secret().len(), "acme_".len() + BODY_LEN);
    assert!(live.parse(key.expose_secret()).is_ok());
    assert!(test.parse(key.expose_secret()).is_err());
    let key = test.generate().unwrap();
    assert!(live.parse(key.expose_secret()).is_err());
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_strings(s in ".*") {
        let _ = common::format().parse(&s);
    }

    #[test]
    fn parser_never_panics_after_the_prefix(s in "\\PC{0,80}") {
        let format = common::format();
        let candidate = format!("pk_live_{s}");
        let _ = format.parse(&candidate);
    }

    #[test]
    fn key_shaped_junk_is_refused(body in "[0-9A-Za-z]{10}_[0-9A-Za-z]{49}") {
        // Right shape, random content: only a matching CRC-32 passes (p = 2^-32).
        let format = common::format();
        let candidate = format!("pk_live_{body}");
        let (head, tail) = candidate.split_at(candidate.len() - 6);
        let valid = tail == common::base62_6(common::crc32(head.as_bytes()));
        prop_assert_eq!(format.parse(&candidate).is_ok(), valid);
    }

    #[test]
    fn prefix_validation_never_panics(s in "\\PC{0,40}") {
        let _ = KeyFormat::new(&s);
    }
}

mod header_parsing {
    use http::{HeaderValue, Request};
    use portcullis_apikey::{ApiKeyAuthenticator, MemoryStore};
    use portcullis_core::{AuthResult, Authenticator, MaybeReady};
    use proptest::prelude::*;

    fn authenticate(headers: &[(&str, &[u8])]) -> MaybeReady<AuthResult> {
        let auth = ApiKeyAuthenticator::new(MemoryStore::new(), super::common::format());
        let mut req = Request::get("/");
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                req = req.header(*name, value);
            }
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        auth.authenticate(&parts)
    }

    proptest! {
        #[test]
        fn arbitrary_header_values_never_panic_and_never_wait(
            key in proptest::collection::vec(any::<u8>(), 0..120),
            authz in proptest::collection::vec(any::<u8>(), 0..120),
            prefixed in "(Bearer |bearer |)pk_live_[ -~]{0,70}",
        ) {
            for headers in [
                vec![("x-api-key", key.as_slice())],
                vec![("authorization", authz.as_slice())],
                vec![("authorization", prefixed.as_bytes())],
                vec![("x-api-key", prefixed.as_bytes()), ("authorization", authz.as_slice())],
            ] {
                // The memory store answers synchronously: never a pending future.
                prop_assert!(matches!(authenticate(&headers), MaybeReady::Ready(_)));
            }
        }
    }

    fn refusal(headers: &[(&str, &[u8])]) -> (u16, &'static str) {
        match authenticate(headers) {
            MaybeReady::Ready(Err(error)) => (error.status().as_u16(), error.reason()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_key_header_that_is_not_text_is_a_bad_request_and_a_malformed_key_is_not() {
        let key = super::common::format().generate().unwrap();
        let valid = key.expose_secret().as_bytes();
        // The key with its last character replaced by `é` (two bytes of obs-text).
        let mut not_text = valid[..valid.len() - 1].to_vec();
        not_text.extend_from_slice("é".as_bytes());
        assert_eq!(
            refusal(&[("x-api-key", &not_text)]),
            (400, "api_key_header_not_ascii")
        );
        // Text, but not a key of the format (a control-free typo): 401.
        let mut typo = valid.to_vec();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'x' { b'y' } else { b'x' };
        assert_eq!(refusal(&[("x-api-key", &typo)]), (401, "api_key_malformed"));
        // A tab inside is text too: malformed, not a bad request.
        let mut tabbed = valid.to_vec();
        tabbed[20] = b'\t';
        assert_eq!(
            refusal(&[("x-api-key", &tabbed)]),
            (401, "api_key_malformed")
        );
        // Spaces and tabs around the key are optional whitespace, not part of it: the
        // well-formed key then reaches the (empty) store and is unknown there.
        let mut padded = b" \t".to_vec();
        padded.extend_from_slice(valid);
        padded.extend_from_slice(b"\t ");
        assert_eq!(refusal(&[("x-api-key", &padded)]), (401, "api_key_unknown"));
    }
}
