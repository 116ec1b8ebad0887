//! Property tests: the whole verifier never panics on arbitrary input, and only
//! properly signed tokens verify. (The compact-token splitter has its own, in
//! `src/compact.rs`.)

mod common;

use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn verifier_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let auth = authenticator();
        let r = reason(&auth, &s);
        prop_assert_ne!(r, "ok");
    }

    #[test]
    fn verifier_never_panics_on_jws_shaped_input(
        h in "[A-Za-z0-9_=+/ -]{0,60}",
        p in "[A-Za-z0-9_=+/ -]{0,60}",
        s in "[A-Za-z0-9_=+/ -]{0,60}",
    ) {
        let auth = authenticator();
        let token = format!("{h}.{p}.{s}");
        prop_assert_ne!(reason(&auth, &token), "ok");
    }

    #[test]
    fn arbitrary_header_json_with_valid_signature_never_panics(header in any::<Vec<u8>>()) {
        let header = String::from_utf8_lossy(&header).into_owned();
        let token = sign_raw(&header, &claims().to_string(), jsonwebtoken::Algorithm::HS256, &jsonwebtoken::EncodingKey::from_secret(SECRET));
        let _ = reason(&authenticator(), &token);
    }

    #[test]
    fn any_single_character_change_is_refused(index in 0usize..400, c in "[A-Za-z0-9_.-]") {
        let token = hs256(&claims());
        let index = index % token.len();
        let mut bytes = token.clone().into_bytes();
        let c = c.as_bytes()[0];
        prop_assume!(bytes[index] != c);
        bytes[index] = c;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert_ne!(reason(&authenticator(), &tampered), "ok");
    }
}
