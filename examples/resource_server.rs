//! A resource server for tokens from your own identity providers (Keycloak, Auth0,
//! Okta, Entra ID, Cognito, Better Auth, …): keys come from each provider's JWKS,
//! found by discovery, and rotate by themselves. Several issuers may be trusted at
//! once; each token is verified with its own issuer's keys only.
//!
//! ```text
//! cargo run --release --example resource_server -- \
//!     --issuer https://id.example.com/realms/main [--issuer <URL> ...] --audience my-api \
//!     [--jwks-url <URL> ...] [--preset keycloak] [--addr 127.0.0.1:8080] \
//!     [--require-at-jwt] [--danger-allow-http] [--metrics] \
//!     [--public-url <URL>] [--require-dpop] \
//!     [--introspection-url <URL> --client-id <ID> --client-secret <SECRET>]
//! ```
//!
//! DPoP (RFC 9449) is on: a DPoP-bound token is accepted as `Authorization: DPoP`
//! with a proof of its key, and refused as `Bearer`; unbound bearer tokens are
//! accepted unless `--require-dpop`. Proofs name the URL the client called: behind a
//! proxy, give it with `--public-url https://api.example.com/prefix`.
//!
//! With `--introspection-url`, bearer tokens that are not JWTs (no `.`) are checked
//! by RFC 7662 introspection, authenticating with `client_secret_basic`. An answer's
//! `iss`, when present, must be one of the `--issuer`s; otherwise the endpoint's
//! issuer is assumed: the `--issuer` on the endpoint's origin, else the first.
//!
//! Routes:
//!
//! - `GET /`: public.
//! - `GET /whoami` (also `/me`): the caller as JSON
//!   `{"sub", "iss", "scopes", "roles", "kind", "dpop_jkt"}` (`kind` is `jwt`, or
//!   `introspected` for an opaque token checked by introspection; `dpop_jkt` the
//!   thumbprint of the key a DPoP-bound token is bound to, else null); 401 per RFC
//!   6750 (or RFC 9449) without a valid token.
//! - `GET /admin`: callers holding the scope *or* the role `admin`; others get 403
//!   `insufficient_scope`, naming both in the problem body.
//! - `GET /metrics` (with `--metrics`): Portcullis's metrics in Prometheus text.
//!
//! Tokens without `typ`, or with `typ` `JWT` or `at+jwt`, are accepted
//! (`--require-at-jwt` accepts only RFC 9068 access tokens). Logs at `info`
//! (`RUST_LOG` to change). Prints `listening on <addr>` when ready.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use axum::{Json, Router, routing::get};
use portcullis::{
    AuthLayer, Authenticator, ClaimMapping, Principal,
    guard::{RequireRoleOrScope, roles, scopes},
    jwt::{
        ConfigError, Issuer, JwtAuthenticator,
        dpop::Dpop,
        introspection::{Introspected, IntrospectionAuthenticator, IntrospectionError},
        jwks::{JwksError, RemoteKeys, RemoteKeysBuilder},
    },
};
use serde_json::{Value, json};

roles! { pub AdminRole = "admin" }
scopes! { pub AdminScope = "admin" }

const USAGE: &str = "\
usage: resource_server --issuer <URL> [--issuer <URL> ...] --audience <AUD> [options]

  --issuer <URL>        a trusted token issuer (exactly as in the tokens' `iss`);
                        repeatable. Without --jwks-url its keys are found at
                        <URL>/.well-known/openid-configuration (or RFC 8414)
  --audience <AUD>      this API's audience (repeatable: any one must be in `aud`)
  --jwks-url <URL>      the JWK Set URL of the issuer at the same position; when
                        given, once per --issuer, in the same order
  --preset <NAME>       where roles and scopes are read: default, rfc9068, keycloak,
                        auth0, okta, entra-id, cognito, better-auth
  --addr <IP:PORT>      where to listen (default 127.0.0.1:8080)
  --require-at-jwt      accept only `typ: at+jwt` access tokens (RFC 9068)
  --public-url <URL>    this API's URL as clients call it (scheme, host, port, path
                        prefix), which DPoP proofs name; default: from the Host
                        header, http
  --require-dpop        refuse tokens that are not DPoP-bound
  --danger-allow-http   allow plain http to a provider that is not on loopback
  --metrics             serve GET /metrics (Prometheus text)
  --introspection-url <URL>
                        check opaque (non-JWT) tokens at this RFC 7662 endpoint;
                        needs --client-id and --client-secret
  --client-id <ID>      this resource server's client id at the endpoint
  --client-secret <SECRET>
                        its secret (sent with HTTP Basic)
  -h, --help            this text";

#[derive(Debug)]
struct Args {
    issuers: Vec<String>,
    audiences: Vec<String>,
    jwks_urls: Vec<String>,
    mapping: ClaimMapping,
    addr: SocketAddr,
    require_at_jwt: bool,
    allow_http: bool,
    metrics: bool,
    introspection: Option<Introspection>,
    public_url: Option<String>,
    require_dpop: bool,
}

/// `--introspection-url`, `--client-id`, `--client-secret`.
struct Introspection {
    url: String,
    client_id: String,
    client_secret: String,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut issuers, mut audiences, mut jwks_urls) = (Vec::new(), Vec::new(), Vec::new());
    let mut mapping = ClaimMapping::default();
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let (mut require_at_jwt, mut allow_http, mut metrics) = (false, false, false);
    let (mut introspection_url, mut client_id, mut client_secret) = (None, None, None);
    let (mut public_url, mut require_dpop) = (None, false);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .filter(|v| !v.starts_with("--"))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--issuer" => issuers.push(value("--issuer")?),
            "--audience" => audiences.push(value("--audience")?),
            "--jwks-url" => jwks_urls.push(value("--jwks-url")?),
            "--preset" => {
                let name = value("--preset")?;
                mapping = ClaimMapping::preset(&name).ok_or_else(|| {
                    format!(
                        "--preset {name:?} is unknown (one of: {})",
                        ClaimMapping::PRESETS.join(", ")
                    )
                })?;
            }
            "--addr" => {
                let raw = value("--addr")?;
                addr = raw
                    .parse()
                    .map_err(|_| format!("--addr {raw:?} is not IP:PORT (e.g. 127.0.0.1:8080)"))?;
            }
            "--require-at-jwt" => require_at_jwt = true,
            "--danger-allow-http" => allow_http = true,
            "--metrics" => metrics = true,
            "--public-url" => public_url = Some(value("--public-url")?),
            "--require-dpop" => require_dpop = true,
            "--introspection-url" => introspection_url = Some(value("--introspection-url")?),
            "--client-id" => client_id = Some(value("--client-id")?),
            "--client-secret" => client_secret = Some(value("--client-secret")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if issuers.is_empty() {
        return Err("--issuer is required".into());
    }
    if issuers.iter().any(String::is_empty) {
        return Err("--issuer is empty".into());
    }
    if !jwks_urls.is_empty() && jwks_urls.len() != issuers.len() {
        return Err(format!(
            "--jwks-url is given {} time(s) for {} --issuer: give one per issuer, in the same order, or none to discover them",
            jwks_urls.len(),
            issuers.len()
        ));
    }
    let introspection = match (introspection_url, client_id, client_secret) {
        (None, None, None) => None,
        (Some(url), Some(client_id), Some(client_secret)) => Some(Introspection {
            url,
            client_id,
            client_secret,
        }),
        _ => {
            return Err("--introspection-url, --client-id and --client-secret go together".into());
        }
    };
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err("--audience is required (and not empty)".into());
    }
    Ok(Some(Args {
        issuers,
        audiences,
        jwks_urls,
        mapping,
        addr,
        require_at_jwt,
        allow_http,
        metrics,
        introspection,
        public_url,
        require_dpop,
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
        "kind": if p.claims::<Introspected>().is_some() { "introspected" } else { "jwt" },
        "dpop_jkt": p.dpop_thumbprint(),
    })
}

/// The application: public `/`, authenticated `/whoami` and `/me`, `/admin`.
fn app(auth: impl Authenticator + Clone) -> Router {
    let protected = Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move { Json(describe(&p)) }),
        )
        .route("/me", get(|p: Principal| async move { Json(describe(&p)) }))
        .route("/admin", get(admin))
        // route_layer: unknown paths still answer 404, not 401.
        .route_layer(AuthLayer::new(auth));
    Router::new()
        .route(
            "/",
            get(|| async { "portcullis resource server: GET /whoami with a bearer token\n" }),
        )
        .merge(protected)
}

fn remote_keys(args: &Args, index: usize) -> RemoteKeysBuilder {
    let mut keys =
        RemoteKeys::builder(args.issuers[index].clone()).timeout(Duration::from_secs(10));
    if let Some(url) = args.jwks_urls.get(index) {
        keys = keys.jwks_url(url.clone());
    }
    if args.allow_http {
        keys = keys.danger_allow_http();
    }
    keys
}

/// The authenticator: each issuer with its keys, the audiences, preset and `typ` rule.
fn authenticator(args: &Args, keys: Vec<RemoteKeys>) -> Result<JwtAuthenticator, ConfigError> {
    let mut builder = JwtAuthenticator::builder().claim_mapping(args.mapping.clone());
    for keys in keys {
        builder = builder.trust(Issuer::remote(keys));
    }
    for audience in &args.audiences {
        builder = builder.audience(audience.clone());
    }
    if args.require_at_jwt {
        builder = builder.require_access_token_typ();
    }
    let mut dpop = Dpop::new();
    if let Some(url) = &args.public_url {
        dpop = dpop.public_url(url)?;
    }
    if args.require_dpop {
        dpop = dpop.require_dpop();
    }
    builder.dpop(dpop).build()
}

/// The introspection authenticator: the endpoint's issuer first (the `--issuer` on
/// its origin, else the first), then the others.
fn introspection(
    args: &Args,
    config: &Introspection,
) -> Result<IntrospectionAuthenticator, IntrospectionError> {
    let origin = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
    let own = args
        .issuers
        .iter()
        .find(|i| origin(i) == origin(&config.url))
        .unwrap_or(&args.issuers[0]);
    let mut builder = IntrospectionAuthenticator::builder(config.url.clone())
        .client_secret_basic(&config.client_id, &config.client_secret)
        .claim_mapping(args.mapping.clone())
        .issuer(own.clone());
    for issuer in args.issuers.iter().filter(|i| *i != own) {
        builder = builder.issuer(issuer.clone());
    }
    for audience in &args.audiences {
        builder = builder.audience(audience.clone());
    }
    if args.allow_http {
        builder = builder.danger_allow_http();
    }
    builder.build()
}

fn report(issuer: &str, e: &JwksError) {
    eprintln!("error: could not load the keys of {issuer}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        eprintln!("  caused by: {c}");
        cause = c.source();
    }
    if e.kind() == portcullis::jwt::jwks::JwksErrorKind::InsecureUrl {
        eprintln!("hint: --danger-allow-http allows plain http (local providers only)");
    }
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
    // Before the first key fetch, so that it is counted.
    let metrics = match args.metrics.then(prometheus).transpose() {
        Ok(metrics) => metrics.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: metrics recorder: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut all = Vec::with_capacity(args.issuers.len());
    for (i, issuer) in args.issuers.iter().enumerate() {
        let keys = match remote_keys(&args, i).start().await {
            Ok(keys) => keys,
            Err(e) => {
                report(issuer, &e);
                return ExitCode::FAILURE;
            }
        };
        println!(
            "verifying tokens of issuer {} with {} key(s) from {}",
            keys.issuer(),
            keys.key_set().map_or(0, |set| set.len()),
            keys.jwks_url().unwrap_or_default(),
        );
        all.push(keys);
    }
    println!(
        "audience {}; typ {}; DPoP {}",
        args.audiences.join(", "),
        if args.require_at_jwt {
            "at+jwt"
        } else {
            "absent, JWT or at+jwt"
        },
        if args.require_dpop {
            "required"
        } else {
            "accepted"
        },
    );
    let jwt = match authenticator(&args, all) {
        Ok(jwt) => jwt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let opaque = match &args.introspection {
        None => None,
        Some(config) => match introspection(&args, config) {
            Ok(opaque) => {
                println!("introspecting opaque tokens at {}", config.url);
                Some(opaque)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
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
    // Head and body timeouts and a connection cap: half-open clients are cut off.
    let served = match opaque {
        None => portcullis::serve::serve(listener, app(jwt).merge(metrics)).await,
        Some(opaque) => portcullis::serve::serve(listener, app((jwt, opaque)).merge(metrics)).await,
    };
    if let Err(e) = served {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `GET /metrics`: what every Portcullis layer recorded, in Prometheus text.
fn prometheus() -> Result<Router, metrics_exporter_prometheus::BuildError> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    portcullis::metrics::describe();
    let render = move || std::future::ready(handle.render());
    Ok(Router::new().route("/metrics", get(render)))
}

#[cfg(test)]
#[path = "resource_server/tests.rs"]
mod tests;
