//! A resource server for tokens from your own identity provider (Keycloak, Auth0,
//! Okta, Entra ID, …): keys come from the provider's JWKS, found by OpenID Connect
//! discovery, and rotate by themselves.
//!
//! ```text
//! cargo run --release --example resource_server -- \
//!     --issuer https://id.example.com/realms/main --audience my-api \
//!     [--jwks-url <URL>] [--addr 127.0.0.1:8080] [--require-at-jwt] [--danger-allow-http]
//! ```
//!
//! Routes:
//!
//! - `GET /`: public.
//! - `GET /whoami` (also `/me`): the caller as JSON
//!   `{"sub", "iss", "scopes", "roles", "kind"}`; 401 per RFC 6750 without a valid
//!   token.
//! - `GET /admin`: callers holding the scope *or* the role `admin`; others get 403
//!   `insufficient_scope`, naming both in the problem body.
//!
//! Tokens with header `typ` `JWT` or `at+jwt` are accepted (`--require-at-jwt`
//! accepts only RFC 9068 access tokens). Logs at `info` (`RUST_LOG` to change).

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use axum::{Json, Router, routing::get};
use portcullis::{
    AuthLayer, Principal,
    guard::{RequireRoleOrScope, roles, scopes},
    jwt::{
        JwtAuthenticator,
        jwks::{RemoteKeys, RemoteKeysBuilder},
    },
};
use serde_json::{Value, json};

roles! { pub AdminRole = "admin" }
scopes! { pub AdminScope = "admin" }

const USAGE: &str = "\
usage: resource_server --issuer <URL> --audience <AUD> [options]

  --issuer <URL>        the token issuer (exactly as in the tokens' `iss`); its keys are
                        found at <URL>/.well-known/openid-configuration (or RFC 8414)
  --audience <AUD>      this API's audience (repeatable: any one must be in `aud`)
  --jwks-url <URL>      fetch keys from this JWK Set URL instead of discovering it
  --addr <IP:PORT>      where to listen (default 127.0.0.1:8080)
  --require-at-jwt      accept only `typ: at+jwt` access tokens (RFC 9068)
  --danger-allow-http   allow plain http to a provider that is not on loopback
  -h, --help            this text";

#[derive(Debug)]
struct Args {
    issuer: String,
    audiences: Vec<String>,
    jwks_url: Option<String>,
    addr: SocketAddr,
    require_at_jwt: bool,
    allow_http: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut issuer, mut audiences, mut jwks_url) = (None, Vec::new(), None);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let (mut require_at_jwt, mut allow_http) = (false, false);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .filter(|v| !v.starts_with("--"))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--issuer" => issuer = Some(value("--issuer")?),
            "--audience" => audiences.push(value("--audience")?),
            "--jwks-url" => jwks_url = Some(value("--jwks-url")?),
            "--addr" => {
                let raw = value("--addr")?;
                addr = raw
                    .parse()
                    .map_err(|_| format!("--addr {raw:?} is not IP:PORT (e.g. 127.0.0.1:8080)"))?;
            }
            "--require-at-jwt" => require_at_jwt = true,
            "--danger-allow-http" => allow_http = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let issuer = issuer.ok_or("--issuer is required")?;
    if issuer.is_empty() {
        return Err("--issuer is empty".into());
    }
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err("--audience is required (and not empty)".into());
    }
    Ok(Some(Args {
        issuer,
        audiences,
        jwks_url,
        addr,
        require_at_jwt,
        allow_http,
    }))
}

/// `GET /admin`: callers with the role `admin` or the scope `admin`.
async fn admin(admin: RequireRoleOrScope<AdminRole, AdminScope>) -> Json<Value> {
    Json(json!({ "admin": true, "sub": admin.subject() }))
}

fn describe(p: &Principal) -> Value {
    json!({
        "sub": p.subject(),
        "iss": p.issuer(),
        "scopes": p.scopes().collect::<Vec<_>>(),
        "roles": p.roles().collect::<Vec<_>>(),
        "kind": p.kind().as_str(),
    })
}

/// The application: public `/`, authenticated `/whoami` and `/me`, `/admin`.
fn app(jwt: JwtAuthenticator) -> Router {
    let protected = Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move { Json(describe(&p)) }),
        )
        .route("/me", get(|p: Principal| async move { Json(describe(&p)) }))
        .route("/admin", get(admin))
        // route_layer: unknown paths still answer 404, not 401.
        .route_layer(AuthLayer::new(jwt));
    Router::new()
        .route(
            "/",
            get(|| async { "portcullis resource server: GET /whoami with a bearer token\n" }),
        )
        .merge(protected)
}

fn remote_keys(args: &Args) -> RemoteKeysBuilder {
    let mut keys = RemoteKeys::builder(args.issuer.clone()).timeout(Duration::from_secs(10));
    if let Some(url) = &args.jwks_url {
        keys = keys.jwks_url(url.clone());
    }
    if args.allow_http {
        keys = keys.danger_allow_http();
    }
    keys
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let keys = match remote_keys(&args).start().await {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("error: could not load the keys of {}: {e}", args.issuer);
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            if e.kind() == portcullis::jwt::jwks::JwksErrorKind::InsecureUrl {
                eprintln!("hint: --danger-allow-http allows plain http (local providers only)");
            }
            return ExitCode::FAILURE;
        }
    };
    let key_count = keys.key_set().map_or(0, |set| set.len());
    println!(
        "verifying tokens of issuer {} with {key_count} key(s) from {}; audience {}; typ {}",
        keys.issuer(),
        keys.jwks_url().unwrap_or_default(),
        args.audiences.join(", "),
        if args.require_at_jwt {
            "at+jwt"
        } else {
            "JWT or at+jwt"
        },
    );

    let mut builder = JwtAuthenticator::builder().remote_keys(keys);
    for audience in &args.audiences {
        builder = builder.audience(audience.clone());
    }
    builder = if args.require_at_jwt {
        builder.require_access_token_typ()
    } else {
        builder.require_typ(["JWT", "at+jwt"])
    };
    let jwt = match builder.build() {
        Ok(jwt) => jwt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(args.addr, |a| a);
    println!("listening on {addr}");
    if let Err(e) = axum::serve(listener, app(jwt)).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use portcullis::jwt::{Algorithm, Key};
    use tower::ServiceExt;

    use super::*;

    const SECRET: &[u8; 32] = b"a-secret-of-at-least-32-bytes!!!";

    fn token(roles: &[&str], scope: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "iss": "https://id.example", "aud": "api", "sub": "alice",
            "roles": roles, "scope": scope, "iat": now, "exp": now + 300,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    async fn get_admin(token: Option<String>) -> (StatusCode, Value) {
        let jwt = JwtAuthenticator::builder()
            .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
            .issuer("https://id.example")
            .audience("api")
            .build()
            .unwrap();
        let mut request = Request::get("/admin");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = app(jwt)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn admin_is_the_role_or_the_scope() {
        let (status, body) = get_admin(Some(token(&["admin"], "profile"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["sub"], "alice");
        let (status, _) = get_admin(Some(token(&[], "profile admin"))).await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = get_admin(Some(token(&["editor"], "profile"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "insufficient_scope");
        assert_eq!(body["role"], "admin");
        assert_eq!(body["scope"], "admin");
        let (status, _) = get_admin(None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_are_checked() {
        let ok = parse(&["--issuer", "https://id.example", "--audience", "api"])
            .unwrap()
            .unwrap();
        assert_eq!(ok.addr.to_string(), "127.0.0.1:8080");
        assert!(
            parse(&["--audience", "api"])
                .unwrap_err()
                .contains("--issuer")
        );
        assert!(
            parse(&["--issuer", "https://id.example"])
                .unwrap_err()
                .contains("--audience")
        );
        assert!(
            parse(&["--issuer", "x", "--audience", "a", "--addr", "nope"])
                .unwrap_err()
                .contains("IP:PORT")
        );
        assert!(
            parse(&["--issuer", "--audience", "a"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&["--what"]).unwrap_err().contains("unknown"));
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
