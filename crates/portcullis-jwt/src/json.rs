//! JSON that refuses duplicate member names at every depth.
//!
//! `serde_json` keeps the last of two equal keys; [RFC 8725 §3.4 and RFC 7515 §5.2]
//! allow a parser to do so, but a verifier that disagrees with the issuer (or with
//! another verifier) on which value counts is an attack surface. We refuse instead.
//! Depth stays bounded by `serde_json`'s recursion limit (128).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, map::Entry};

/// The message prefix of the error raised for a duplicate member.
pub(crate) const DUPLICATE: &str = "duplicate member";

/// Why a JSON text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Two members of one object share a name.
    Duplicate,
    /// Not JSON, not an object, or nested too deep.
    Malformed,
}

/// Parses `bytes` as a JSON object, refusing duplicate names at every depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(Value::Object(map))) => Ok(map),
        Ok(_) => Err(JsonError::Malformed),
        Err(e) => Err(classify(&e)),
    }
}

pub(crate) fn classify(e: &serde_json::Error) -> JsonError {
    if e.is_data() && e.to_string().starts_with(DUPLICATE) {
        JsonError::Duplicate
    } else {
        JsonError::Malformed
    }
}

/// A [`Value`] whose objects never held duplicate names.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

/// Skips a value while still refusing duplicates inside it.
pub(crate) struct StrictIgnored;

impl<'de> Deserialize<'de> for StrictIgnored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrictVisitor)
            .map(|_| StrictIgnored)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                Entry::Occupied(_) => return Err(de::Error::custom(DUPLICATE)),
                Entry::Vacant(slot) => {
                    let StrictValue(value) = map.next_value()?;
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_top_level_member_is_refused() {
        assert_eq!(parse_object(br#"{"a":1,"a":2}"#), Err(JsonError::Duplicate));
    }

    #[test]
    fn duplicate_nested_member_is_refused() {
        assert_eq!(
            parse_object(br#"{"a":{"b":[{"c":1,"c":1}]}}"#),
            Err(JsonError::Duplicate)
        );
    }

    #[test]
    fn escaped_duplicate_is_still_a_duplicate() {
        // "\u0061" is "a": the names are equal once unescaped.
        assert_eq!(
            parse_object(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::Duplicate)
        );
    }

    #[test]
    fn non_object_is_malformed() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b"foo"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b"{} x"), Err(JsonError::Malformed));
    }

    #[test]
    fn hundred_thousand_deep_json_is_refused_without_overflow() {
        let mut deep = String::from("{\"a\":");
        deep.push_str(&"[".repeat(100_000));
        deep.push_str(&"]".repeat(100_000));
        deep.push('}');
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonError::Malformed));
    }

    #[test]
    fn ordinary_object_parses() {
        let map = parse_object(br#"{"a":1,"b":{"c":[1,2.5,"x",null,true]}}"#).unwrap();
        assert_eq!(map["b"]["c"][1], 2.5);
    }
}
