//! The bench keys (the JWT crate's test-only keys) and the bench tokens: one realistic
//! claims set, 409 bytes once signed with HS256, valid until 2100.

use jsonwebtoken::{EncodingKey, Header};
use portcullis_jwt::{Algorithm, Key};
use serde::Deserialize;
use serde_json::json;

/// The HMAC secret of the HS256 bench tokens.
pub const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";
/// The issuer the bench tokens name and the bench layers require.
pub const ISSUER: &str = "https://auth.example.com/";
/// The audience the bench tokens name and the bench layers require.
pub const AUDIENCE: &str = "https://api.example.com";
/// The bench tokens' expiry: 2100-01-01.
pub const EXPIRY: u64 = 4_102_444_800;

/// The claims of a bench token, as the peers parse them.
#[derive(Debug, Clone, Deserialize)]
pub struct BenchClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Token id.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Roles.
    pub roles: Vec<String>,
}

/// A signature algorithm of the comparison, with its test-only key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// HMAC-SHA256 with [`SECRET`].
    Hs256,
    /// ECDSA P-256.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSA PKCS#1 v1.5, 2048 bits.
    Rs256,
}

impl Alg {
    /// Every algorithm, in table order.
    pub const ALL: [Alg; 4] = [Alg::Hs256, Alg::Es256, Alg::EdDsa, Alg::Rs256];

    /// The JOSE name (`HS256`, `ES256`, `EdDSA`, `RS256`).
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
        }
    }

    /// The algorithm named `name`, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        Alg::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    fn file_stem(self) -> Option<&'static str> {
        match self {
            Alg::Hs256 => None,
            Alg::Es256 => Some("p256"),
            Alg::EdDsa => Some("ed25519"),
            Alg::Rs256 => Some("rsa2048"),
        }
    }

    /// The public key in PEM (SPKI), `None` for HS256.
    pub fn public_pem(self) -> Option<Vec<u8>> {
        self.file_stem()
            .map(|stem| key_file(&format!("test-only-{stem}-public.pem")))
    }

    /// The public key in PEM as text, `None` for HS256.
    pub fn public_pem_text(self) -> Option<String> {
        self.public_pem()
            .map(|pem| String::from_utf8(pem).expect("PEM is ASCII"))
    }

    /// The jsonwebtoken algorithm of the same name.
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::Hs256 => jsonwebtoken::Algorithm::HS256,
            Alg::Es256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Alg::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }

    /// The Portcullis verifying key.
    pub fn verifying_key(self) -> Key {
        let alg = match self {
            Alg::Hs256 => return Key::hmac(Algorithm::HS256, SECRET).expect("HMAC key"),
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
            Alg::Rs256 => Algorithm::RS256,
        };
        Key::from_pem(alg, self.public_pem().expect("a public key")).expect("public key")
    }

    /// A signer of bench tokens with this algorithm's private key.
    pub fn signer(self) -> Signer {
        let key = match self.file_stem() {
            None => EncodingKey::from_secret(SECRET),
            Some(stem) => {
                let pem = key_file(&format!("test-only-{stem}-private.pem"));
                match self {
                    Alg::Es256 => EncodingKey::from_ec_pem(&pem),
                    Alg::EdDsa => EncodingKey::from_ed_pem(&pem),
                    _ => EncodingKey::from_rsa_pem(&pem),
                }
                .expect("private key")
            }
        };
        Signer {
            header: Header::new(self.jsonwebtoken()),
            key,
            issuer: ISSUER.to_owned(),
        }
    }
}

/// Reads one of the JWT crate's test-only keys.
pub fn key_file(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../crates/portcullis-jwt/tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Signs bench tokens.
pub struct Signer {
    header: Header,
    key: EncodingKey,
    issuer: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.header.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The same signer with a `kid` in the header and another issuer.
    pub fn with_kid_and_issuer(mut self, kid: &str, issuer: &str) -> Self {
        self.header.kid = Some(kid.to_owned());
        self.issuer = issuer.to_owned();
        self
    }

    /// The one bench token (the same bytes on every call).
    pub fn token(&self) -> String {
        self.sign_claims(
            "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04",
            "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
            1_700_000_000,
        )
    }

    /// The token of `user` in its `generation`-th refresh window: the same length and
    /// claims as [`Signer::token`], another subject, token id and issue time.
    pub fn user_token(&self, user: u64, generation: u64) -> String {
        let sub = format!("user-{:08x}-41d8-4b9a-a7e3-2c1d5f8e9b04", user as u32);
        let jti = format!("{user:016x}{generation:016x}");
        self.sign_claims(&sub, &jti, 1_700_000_000 + generation * 900)
    }

    fn sign_claims(&self, sub: &str, jti: &str, iat: u64) -> String {
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": AUDIENCE,
            "exp": EXPIRY,
            "iat": iat,
            "jti": jti,
            "scope": "openid profile orders:read",
            "roles": ["user"],
        });
        jsonwebtoken::encode(&self.header, &claims, &self.key).expect("sign")
    }
}
