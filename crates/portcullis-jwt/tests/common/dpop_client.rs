//! A DPoP client for tests and benches: a P-256 key (as browsers and most libraries
//! use), its RFC 7638 thumbprint, and proofs (RFC 9449 §4.2) signed with it.
//!
//! One file, included with `#[path]` by the jwt tests and bench, the Redis tests and
//! the quickstart's DPoP test, so every one of them makes proofs the same way.

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A client's DPoP key.
pub(crate) struct DpopClient {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl DpopClient {
    /// A fresh P-256 key.
    pub(crate) fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        Self { pair, jwk }
    }

    /// The public key as a JWK.
    pub(crate) fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key as an uncompressed point (`04 || x || y`).
    pub(crate) fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The key's RFC 7638 thumbprint: what a bound token's `cnf.jkt` names.
    pub(crate) fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        B64.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A fresh proof for `method` `url`, naming `token` (`ath`) when given.
    pub(crate) fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        self.proof_with(method, url, token, |_, _| {})
    }

    /// [`proof`](Self::proof), after `edit` changed its header or claims.
    pub(crate) fn proof_with(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("alg".into(), json!("ES256"));
        header.insert("jwk".into(), self.jwk.clone());
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(B64.encode(jti)));
        claims.insert("htm".into(), json!(method));
        claims.insert("htu".into(), json!(url));
        claims.insert("iat".into(), json!(iat));
        if let Some(token) = token {
            claims.insert(
                "ath".into(),
                json!(B64.encode(Sha256::digest(token.as_bytes()))),
            );
        }
        edit(&mut header, &mut claims);
        self.sign(&header, &claims)
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub(crate) fn sign(&self, header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(header).unwrap()),
            B64.encode(serde_json::to_vec(claims).unwrap())
        );
        let signature = self.signature(&input);
        format!("{input}.{signature}")
    }

    /// The base64url ES256 signature of `input` by this key.
    pub(crate) fn signature(&self, input: &str) -> String {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        B64.encode(sig.as_ref())
    }
}
