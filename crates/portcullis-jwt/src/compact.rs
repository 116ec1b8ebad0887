//! The JWS compact serialization ([RFC 7515 §7.1]), parsed strictly.
//!
//! Exactly three segments; each strict base64url (URL-safe alphabet, no padding, no
//! whitespace, no stray bits in the last character); the header a JSON object with no
//! duplicate members.
//!
//! [RFC 7515 §7.1]: https://www.rfc-editor.org/rfc/rfc7515#section-7.1

use std::{borrow::Cow, cell::RefCell, fmt};

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::json::{self, JsonError, StrictIgnored};

/// Strict URL-safe base64 without padding: padding, whitespace, foreign characters and
/// non-zero trailing bits are all errors.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Why a compact token does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not three non-empty base64url segments, bad base64url, or a header that is not
    /// a JSON object.
    Malformed,
    /// The header repeats a member name.
    DuplicateMember,
}

/// The three segments of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    /// The encoded header.
    pub(crate) header: &'a str,
    /// The encoded payload.
    pub(crate) payload: &'a str,
    /// The encoded signature.
    pub(crate) signature: &'a str,
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
}

/// Splits a compact JWS at its first and last `.`: the header and signature must be
/// non-empty; the payload may be empty (a JWS may sign nothing).
///
/// A token of more than three segments leaves a `.` in the payload, which every
/// caller refuses by [`decode`]-ing it (`.` is not base64url); that saves a scan of
/// the longest segment for a `.` on every verification.
///
/// # Errors
///
/// [`ParseError::Malformed`] for fewer than three segments or an empty header or
/// signature.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, ParseError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(ParseError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(ParseError::Malformed)?;
    if header.is_empty() || signature.is_empty() {
        return Err(ParseError::Malformed);
    }
    Ok(Segments {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Decodes one segment with the strict engine.
pub(crate) fn decode(segment: &str) -> Result<Vec<u8>, ParseError> {
    B64.decode(segment).map_err(|_| ParseError::Malformed)
}

/// A thread keeps its scratch buffer while it is at most this large (bytes).
const SCRATCH_KEEP: usize = 16 * 1024;

thread_local! {
    /// Each thread's buffer for segments that are needed only while they are read
    /// (a payload until it is parsed, a signature until it is checked), so a
    /// verification does not allocate and free one per segment.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Decodes one segment with the strict engine into this thread's scratch buffer and
/// hands the bytes to `read`, which must not keep them.
pub(crate) fn with_decoded<R>(
    segment: &str,
    read: impl FnOnce(&Vec<u8>) -> R,
) -> Result<R, ParseError> {
    SCRATCH.with(|cell| {
        let Ok(mut buffer) = cell.try_borrow_mut() else {
            // `read` decodes another segment: that one gets its own buffer.
            return decode(segment).map(|bytes| read(&bytes));
        };
        buffer.clear();
        let decoded = B64.decode_vec(segment, &mut buffer);
        let result = decoded.map(|()| read(&buffer));
        if buffer.capacity() > SCRATCH_KEEP {
            *buffer = Vec::new();
        }
        result.map_err(|_| ParseError::Malformed)
    })
}

/// What `crit` held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Crit {
    /// No `crit` member.
    #[default]
    Absent,
    /// `crit` present (empty, unknown names, or not even a list): we understand no
    /// extension, so every form is refused.
    Present,
}

/// The protected header members a verifier acts on. Everything else (including `jwk`,
/// `jku`, `x5u`, `x5c`) is read only to refuse duplicates, then ignored.
#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    pub(crate) crit: Crit,
    pub(crate) b64: bool,
}

/// Parses a decoded header.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, ParseError> {
    serde_json::from_slice::<Header<'_>>(bytes).map_err(|e| match json::classify(&e) {
        JsonError::Duplicate => ParseError::DuplicateMember,
        JsonError::Malformed => ParseError::Malformed,
    })
}

/// A string that borrows from the input when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
                let mut header = Header::default();
                let mut seen: Vec<Cow<'de, str>> = Vec::new();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    if seen.contains(&name) {
                        return Err(de::Error::custom(json::DUPLICATE));
                    }
                    match &*name {
                        "alg" => header.alg = Some(map.next_value::<Text<'de>>()?.0),
                        "kid" => header.kid = Some(map.next_value::<Text<'de>>()?.0),
                        "typ" => header.typ = Some(map.next_value::<Text<'de>>()?.0),
                        "crit" => {
                            map.next_value::<StrictIgnored>()?;
                            header.crit = Crit::Present;
                        }
                        "b64" => {
                            map.next_value::<StrictIgnored>()?;
                            header.b64 = true;
                        }
                        _ => {
                            map.next_value::<StrictIgnored>()?;
                        }
                    }
                    seen.push(name);
                }
                Ok(header)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn split_never_panics(s in any::<String>()) {
            let _ = split(&s);
        }

        #[test]
        fn scratch_decoding_agrees_with_decoding(
            earlier in "[A-Za-z0-9_-]{0,200}",
            s in "[A-Za-z0-9_=+/ -]{0,64}",
        ) {
            // Whatever the buffer held before, the bytes read are exactly this
            // segment's, or both refuse it.
            let _ = with_decoded(&earlier, |_| ());
            prop_assert_eq!(with_decoded(&s, Vec::clone).ok(), decode(&s).ok());
        }
    }

    /// Splits and decodes every segment, as a verifier does.
    fn parse(token: &str) -> Result<(), ParseError> {
        let segments = split(token)?;
        for segment in [segments.header, segments.payload, segments.signature] {
            decode(segment)?;
        }
        Ok(())
    }

    #[test]
    fn exactly_three_segments() {
        assert!(parse("YQ.Yg.Yw").is_ok());
        assert!(parse("YQ..Yw").is_ok());
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "a.b.c.",
            ".b.c",
            "a.b.",
            "..",
            "a.b..c",
            "YQ.Yg.Yg.Yw",
            "YQ...Yw",
        ] {
            assert_eq!(parse(bad).unwrap_err(), ParseError::Malformed, "{bad:?}");
        }
        // A fourth segment stays in the payload, where decoding refuses its `.`.
        assert_eq!(split("YQ.Yg.Yg.Yw").unwrap().payload, "Yg.Yg");
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(decode("Zm9v").unwrap(), b"foo");
        for bad in ["Zm9v=", "Zm 9v", "Zm9v\n", "Zm+v", "Zm/v", "Zm9?"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // Non-zero unused bits in the last character.
        assert!(decode("Zm8").is_ok());
        assert!(decode("Zm9").is_err());
    }

    #[test]
    fn scratch_decoding_nests_and_stays_bounded() {
        // A segment decoded while another is being read gets its own buffer.
        let both = with_decoded("Zm9v", |outer| {
            with_decoded("YmFyYmF6", |inner| (outer.clone(), inner.clone())).unwrap()
        });
        assert_eq!(both.unwrap(), (b"foo".to_vec(), b"barbaz".to_vec()));
        // A refused segment leaves nothing behind for the next one.
        assert!(with_decoded("Zm9", |_| ()).is_err());
        assert_eq!(with_decoded("YQ", Vec::clone).unwrap(), b"a");
        // A thread does not keep a buffer grown past the bound.
        let large = B64.encode(vec![7u8; SCRATCH_KEEP + 1]);
        assert_eq!(with_decoded(&large, Vec::len).unwrap(), SCRATCH_KEEP + 1);
        assert_eq!(SCRATCH.with(|cell| cell.borrow().capacity()), 0);
        with_decoded("Zm9v", |_| ()).unwrap();
        assert!(SCRATCH.with(|cell| cell.borrow().capacity()) <= SCRATCH_KEEP);
    }

    #[test]
    fn header_members_are_read() {
        let h =
            parse_header(br#"{"alg":"ES256","kid":"k","typ":"at+jwt","x5u":"http://x"}"#).unwrap();
        assert_eq!(h.alg.as_deref(), Some("ES256"));
        assert_eq!(h.kid.as_deref(), Some("k"));
        assert_eq!(h.typ.as_deref(), Some("at+jwt"));
        assert_eq!(h.crit, Crit::Absent);
    }

    #[test]
    fn header_duplicates_are_refused_at_any_depth() {
        assert_eq!(
            parse_header(br#"{"alg":"HS256","alg":"none"}"#).unwrap_err(),
            ParseError::DuplicateMember
        );
        assert_eq!(
            parse_header(br#"{"alg":"HS256","jwk":{"kty":"a","kty":"b"}}"#).unwrap_err(),
            ParseError::DuplicateMember
        );
    }

    #[test]
    fn header_with_wrong_types_is_malformed() {
        for bad in [
            &br#"{"alg":1}"#[..],
            br#"{"alg":"HS256","kid":5}"#,
            br#"["alg"]"#,
            br#"{"alg":"HS256"}x"#,
        ] {
            assert_eq!(parse_header(bad).unwrap_err(), ParseError::Malformed);
        }
    }
}
