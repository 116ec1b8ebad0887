//! Unit tests of the key format: prefixes, the base62 codecs, parsing.

use super::*;

fn format() -> KeyFormat {
    KeyFormat::new("pk_live_").unwrap()
}

#[test]
fn prefix_rules() {
    for ok in ["pk_live_", "ab_", "a1_", "acme_test_2_"] {
        assert!(KeyFormat::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "_", "a", "pk_live", "Pk_", "1a_", "pk-live_", "pk live_", "pk_é_", "pk_\n_",
    ] {
        assert!(KeyFormat::new(bad).is_err(), "{bad:?}");
    }
    assert!(KeyFormat::new(&format!("a{}_", "b".repeat(30))).is_ok());
    assert!(KeyFormat::new(&format!("a{}_", "b".repeat(31))).is_err());
}

#[test]
fn encode_256_extremes() {
    let mut out = [0u8; SECRET_LEN];
    encode_256(&[0; 32], &mut out);
    assert_eq!(&out, &[b'0'; SECRET_LEN]);
    encode_256(&[0xff; 32], &mut out);
    // 2^256 - 1 in base62 (computed independently): exactly 43 digits.
    assert_eq!(&out, b"yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1");
    let mut one = [0u8; 32];
    one[31] = 61;
    encode_256(&one, &mut out);
    assert_eq!(out[SECRET_LEN - 1], b'z');
    assert!(out[..SECRET_LEN - 1].iter().all(|&b| b == b'0'));
}

#[test]
fn checksum_round_trips() {
    for crc in [0, 1, 61, 62, 0xdead_beef, u32::MAX] {
        assert_eq!(decode_checksum(&encode_checksum(crc)), Some(u64::from(crc)));
    }
}

#[test]
fn generated_key_parses_and_has_its_id() {
    let f = format();
    let key = f.generate().unwrap();
    assert_eq!(key.expose_secret().len(), f.key_len());
    let parsed = f.parse(key.expose_secret()).unwrap();
    assert_eq!(parsed.id(), key.id());
    assert_eq!(key.id().len(), ID_LEN);
}

#[test]
fn debug_never_shows_the_secret() {
    let f = format();
    let key = f.generate().unwrap();
    let secret = &key.expose_secret()[f.prefix().len() + ID_LEN + 1..];
    let parsed = f.parse(key.expose_secret()).unwrap();
    for text in [format!("{key:?}"), format!("{parsed:?}")] {
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains(key.id()), "{text}");
    }
}

#[test]
fn header_values_are_sensitive() {
    let key = format().generate().unwrap();
    assert!(key.to_header_value().is_sensitive());
    let bearer = key.to_bearer_header_value();
    assert!(bearer.is_sensitive());
    assert_eq!(
        bearer.to_str().unwrap(),
        format!("Bearer {}", key.expose_secret())
    );
}

#[test]
fn wrong_prefix_length_separator_or_alphabet_is_malformed() {
    let f = format();
    let key = f.generate().unwrap();
    let k = key.expose_secret();
    let other = KeyFormat::new("pk_test_").unwrap();
    assert!(other.parse(k).is_err());
    assert!(f.parse(&k[..k.len() - 1]).is_err());
    assert!(f.parse(&format!("{k}0")).is_err());
    let mut no_sep = k.to_owned().into_bytes();
    no_sep[f.prefix().len() + ID_LEN] = b'a';
    assert!(f.parse(std::str::from_utf8(&no_sep).unwrap()).is_err());
    let mut dash = k.to_owned().into_bytes();
    dash[f.prefix().len() + 3] = b'-';
    assert!(f.parse(std::str::from_utf8(&dash).unwrap()).is_err());
}

#[test]
fn the_alphabet_is_checked_at_every_position_even_with_a_valid_checksum() {
    let f = format();
    let key = f.generate().unwrap();
    let k = key.expose_secret().as_bytes();
    let start = f.prefix().len();
    // A key with byte `i` of its body replaced and its checksum made valid again,
    // so that only the alphabet check can refuse it.
    let with = |i: usize, b: u8| {
        let mut bytes = k.to_vec();
        bytes[start + i] = b;
        let end = bytes.len() - CHECKSUM_LEN;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&encode_checksum(crc));
        bytes
    };
    for i in (0..BODY_LEN - CHECKSUM_LEN).filter(|&i| i != ID_LEN) {
        for b in [
            b'_', b'-', b' ', b'/', b':', b'@', b'[', b'`', b'{', 0x80, 0xff, 0,
        ] {
            assert!(f.parse_bytes(&with(i, b)).is_err(), "byte {b:#x} at {i}");
        }
        // The same key with an alphanumeric there is accepted.
        assert!(f.parse_bytes(&with(i, b'Z')).is_ok(), "Z at {i}");
    }
    // In the checksum itself, a non-alphanumeric byte is refused too.
    for i in BODY_LEN - CHECKSUM_LEN..BODY_LEN {
        let mut bytes = k.to_vec();
        bytes[start + i] = b'_';
        assert!(f.parse_bytes(&bytes).is_err());
    }
}
