//! The Portcullis quickstart: a small, complete authentication service.
//!
//! ```text
//! cargo run --example quickstart [-- --addr 127.0.0.1:3000 --data-dir ./quickstart-data]
//! ```
//!
//! - Storage: a SQLite file in the data directory by default (created on first
//!   start); PostgreSQL when `DATABASE_URL` is set; Redis for rate limits and the
//!   login throttle shared by every instance when `REDIS_URL` is set. Refresh tokens,
//!   API keys, one-time tokens and revocations live in `portcullis-sql`'s tables,
//!   users in this example's.
//! - Keys: an Ed25519 signing key and a CSRF key, made on first start and kept in
//!   the data directory (mode 0600), so tokens survive restarts.
//! - Routes: `POST /auth/{register,login,refresh,logout,logout-all,forgot-password,
//!   reset-password,verify-email}`, `GET /me`, `GET /admin`, `POST|GET /api-keys`,
//!   `DELETE /api-keys/{id}`, `GET /api/data`, `GET /.well-known/jwks.json`,
//!   `GET /healthz`, `GET /metrics` (Prometheus text), and `GET /`, a page for the
//!   browser flow.
//!
//! Run with `--help` for every setting.

mod api;
mod auth;
mod browser;
mod config;
mod http;
mod mailer;
mod store;

use std::{
    future::ready, net::IpAddr, num::NonZeroU32, process::ExitCode, sync::Arc, time::Duration,
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use portcullis::{
    AuthLayer,
    jwt::{JwtAuthenticator, dpop::Dpop},
};
use portcullis_apikey::{ApiKeys, KeyFormat};
use portcullis_password::{PasswordHasher, PasswordPolicy, ResetTokens};
use portcullis_ratelimit::{
    ClientIpKey, GovernorBackend, LoginBackend, LoginRateLimitLayer, Quota, RateLimitBackend,
    RateLimitLayer,
};
use portcullis_redis::{Redis, RedisLoginThrottle, RedisRateLimit, RedisReplayCache};
use portcullis_sql::{SqlApiKeyStore, SqlRefreshStore, SqlResetStore, SqlRevocation};
use portcullis_tokens::{RefreshTokens, SigningAlgorithm, SigningKey, TokenIssuer, TokenService};
use sha2::{Digest, Sha256};
use std::os::unix::fs::DirBuilderExt;

use crate::{
    browser::{Csrf, Page},
    config::{Config, redact_url},
    mailer::{LogMailer, Mailer},
    store::{Db, Users},
};

/// The audience of every access token.
const AUDIENCE: &str = "quickstart";
/// The largest request body any route reads.
const BODY_LIMIT: usize = 16 * 1024;

/// Everything the handlers share. Cloning is one `Arc` increment.
#[derive(Clone, Debug)]
pub(crate) struct App(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) users: Users,
    pub(crate) hasher: PasswordHasher,
    pub(crate) policy: PasswordPolicy,
    pub(crate) tokens: TokenService<SqlRefreshStore, SqlRevocation>,
    pub(crate) one_time: ResetTokens<SqlResetStore>,
    pub(crate) api_keys: ApiKeys<SqlApiKeyStore>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) csrf: Csrf,
    /// DPoP proofs at /auth/login and /auth/refresh; shares its replay cache with the
    /// bearer layer's.
    pub(crate) dpop: Dpop,
    page: Page,
}

impl std::fmt::Debug for dyn Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A per-IP limit: in this process, or in Redis, shared by every instance.
type IpLimit = Arc<dyn RateLimitBackend<IpAddr>>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis=info".into()),
        )
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quickstart: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;

    // Every Portcullis layer reports to this recorder; `GET /metrics` renders it.
    let prometheus = PrometheusBuilder::new()
        .set_buckets(&[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 900.0])
        .and_then(|builder| builder.install_recorder())
        .map_err(|e| format!("metrics recorder: {e}"))?;
    portcullis::metrics::describe();
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    // Storage.
    let db = match &config.database_url {
        Some(url) => Db::postgres(url, config.database_schema.as_deref())
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL at {}: {e}", redact_url(url)))?,
        None => {
            let path = config.data_dir.join("quickstart.db");
            Db::sqlite(&path)
                .await
                .map_err(|e| format!("cannot open SQLite database {}: {e}", path.display()))?
        }
    };
    // Every store call gets two seconds; past that the route answers 503.
    let sql = db.portcullis().with_deadline(Duration::from_secs(2));
    sql.migrate()
        .await
        .map_err(|e| format!("cannot migrate the portcullis tables: {e}"))?;
    db.migrate()
        .await
        .map_err(|e| format!("cannot migrate the quickstart tables: {e}"))?;
    // Expired refresh families, one-time tokens and revocations go every ten minutes.
    sql.spawn_purger(Duration::from_secs(600));

    let redis = match &config.redis_url {
        Some(url) => {
            let redis = Redis::open(url)
                .map_err(|e| format!("REDIS_URL {}: {e}", redact_url(url)))?
                .with_prefix(&config.redis_prefix);
            redis
                .ping()
                .await
                .map_err(|e| format!("cannot reach Redis at {}: {e}", redact_url(url)))?;
            Some(redis)
        }
        None => None,
    };
    // Revocations are written to the database and checked in memory (no I/O per
    // request); every instance pulls the others' once a second.
    let revocations = SqlRevocation::load(sql.clone())
        .await
        .map_err(|e| format!("cannot load revocations: {e}"))?;
    revocations.spawn_sync(Duration::from_secs(1));

    // Keys and tokens.
    // Made on first start and kept (mode 0600), so tokens survive restarts.
    let key_path = config.data_dir.join("signing-key.pem");
    let (signing_key, made) = SigningKey::load_or_generate(&key_path, SigningAlgorithm::EdDsa)
        .map_err(|e| format!("signing key {}: {e}", key_path.display()))?;
    // The CSRF key derives from it: one secret file, not two.
    let pem = signing_key.to_pkcs8_pem().map_err(|e| e.to_string())?;
    let csrf_key: [u8; 32] = Sha256::new()
        .chain_update(b"quickstart csrf key\0")
        .chain_update(pem.as_bytes())
        .finalize()
        .into();
    let issuer = TokenIssuer::builder(config.public_url.clone(), AUDIENCE, signing_key).build();
    // DPoP-bound tokens for clients that prove a key (the browser page does); proofs
    // name the public URL, and on Redis every instance refuses a proof used at another.
    let mut dpop = Dpop::new()
        .public_url(&config.public_url)
        .map_err(|e| format!("PUBLIC_URL / --public-url: {e}"))?;
    if let Some(redis) = &redis {
        dpop = dpop.replay_cache(RedisReplayCache::new(redis));
    }
    let jwt = JwtAuthenticator::builder()
        .dpop(dpop.clone())
        .keys(issuer.verification_keys())
        .issuer(config.public_url.clone())
        .audience(AUDIENCE)
        .require_access_token_typ()
        .revocation(Arc::new(revocations.clone()))
        .build()
        .map_err(|e| format!("cannot build the JWT verifier: {e}"))?;
    let refresh = RefreshTokens::builder(SqlRefreshStore::new(sql.clone()))
        .reuse_interval(config.refresh_reuse)
        .build();
    let tokens = TokenService::new(issuer.clone(), refresh, revocations.clone());

    let api_keys = ApiKeys::new(
        SqlApiKeyStore::new(sql.clone()),
        KeyFormat::new("qs_").map_err(|e| e.to_string())?,
    )
    .with_max_lifetime(api::MAX_KEY_LIFETIME);
    let mailer: Arc<dyn Mailer> = match &config.mail_log {
        Some(path) => Arc::new(LogMailer::with_file(path)?),
        None => Arc::new(LogMailer::new()),
    };
    let hasher = PasswordHasher::new().map_err(|e| format!("password hasher: {e}"))?;

    // The banner: what is used, never a secret.
    let storage = match (&config.database_url, &db) {
        (Some(url), _) => format!(
            "postgres {}{}",
            redact_url(url),
            config
                .database_schema
                .as_deref()
                .map(|s| format!(" (schema {s})"))
                .unwrap_or_default()
        ),
        (None, _) => format!("sqlite {}", config.data_dir.join("quickstart.db").display()),
    };
    println!("Portcullis quickstart");
    println!("  storage:     {storage} (users, refresh tokens, API keys, one-time tokens)");
    println!(
        "  redis:       {}",
        config.redis_url.as_deref().map_or_else(
            || "not used (rate limits and the login throttle in this process)".to_owned(),
            |u| format!("{} (prefix {:?})", redact_url(u), config.redis_prefix)
        )
    );
    println!("  revocation:  database, checked in memory, synced every second");
    println!(
        "  signing key: EdDSA, kid {}, {} ({})",
        issuer.active_kid(),
        if made { "generated" } else { "loaded" },
        key_path.display()
    );
    println!(
        "  tokens:      issuer {url}, audience {AUDIENCE}, keys {url}/.well-known/jwks.json",
        url = config.public_url.trim_end_matches('/')
    );
    println!(
        "  passwords:   argon2id m={} KiB t={} p={}",
        hasher.params().memory_kib,
        hasher.params().iterations,
        hasher.params().parallelism
    );
    println!(
        "  mail:        log{}",
        config
            .mail_log
            .as_ref()
            .map(|p| format!(" + {}", p.display()))
            .unwrap_or_default()
    );
    println!(
        "  settings:    require verified e-mail {}, admin e-mail {}, secure cookies {}, \
         login attempts per IP per minute {}",
        config.require_verified_email,
        config.admin_email.as_deref().unwrap_or("(first user)"),
        config.cookie_secure,
        config.login_attempts_per_minute
    );

    let ip_limit_quota = Quota::per_minute(NonZeroU32::new(30).expect("non-zero"))
        .allow_burst(NonZeroU32::new(30).expect("non-zero"));
    let ip_limit = |name: &str, quota: Quota| -> IpLimit {
        match &redis {
            Some(redis) => Arc::new(RedisRateLimit::new(redis, name, quota)),
            None => Arc::new(GovernorBackend::new(quota)),
        }
    };
    // Refresh and logout each open a write transaction: limited per IP as well.
    let session_quota = Quota::per_minute(NonZeroU32::new(60).expect("non-zero"));
    let limits = (
        ip_limit("auth-writes", ip_limit_quota),
        ip_limit("auth-sessions", session_quota),
    );

    let app = App(Arc::new(Inner {
        config: config.clone(),
        users: Users::new(db.clone()),
        hasher,
        policy: PasswordPolicy::new(),
        tokens,
        one_time: ResetTokens::new(SqlResetStore::new(sql.clone())),
        api_keys: api_keys.clone(),
        mailer,
        csrf: Csrf::new(csrf_key),
        dpop,
        page: Page::new(),
    }));

    let router = router(app, jwt, api_keys, limits, issuer, redis, prometheus);

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("  listening:   http://{local} (open it in a browser, or see the README for curl)");
    // Head and body timeouts and a connection cap: half-open clients are cut off.
    portcullis::serve::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))
}

fn router(
    app: App,
    jwt: JwtAuthenticator,
    api_keys: ApiKeys<SqlApiKeyStore>,
    (ip_limit, session_limit): (IpLimit, IpLimit),
    issuer: TokenIssuer,
    redis: Option<Redis>,
    prometheus: PrometheusHandle,
) -> Router {
    let bearer = || AuthLayer::new(jwt.clone()).realm(http::REALM);

    // Bearer (JWT) only.
    let user_routes = Router::new()
        .route("/me", get(api::me))
        .route("/admin", get(api::admin))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/api-keys", post(api::create_key).get(api::list_keys))
        .route("/api-keys/{id}", delete(api::delete_key))
        .route_layer(bearer());

    // An API key or a JWT.
    let data_routes = Router::new()
        .route("/api/data", get(api::data))
        .route_layer(AuthLayer::new((api_keys.authenticator(), jwt.clone())).realm(http::REALM));

    // The access token is optional on logout (denylisted when present).
    let sessions = Router::new()
        .route(
            "/auth/logout",
            post(auth::logout).route_layer(bearer().optional()),
        )
        .route("/auth/refresh", post(auth::refresh))
        .route_layer(
            RateLimitLayer::with_backend(ClientIpKey::new(), session_limit).policy_name("sessions"),
        );

    // The login throttle: in this process, or shared by every instance through Redis.
    let per_minute = Quota::per_minute(app.config.login_attempts_per_minute);
    let login = match redis {
        Some(redis) => throttled(
            LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(&redis, "login")),
            per_minute,
        ),
        None => throttled(LoginRateLimitLayer::new(), per_minute),
    };

    let limited_writes = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/forgot-password", post(auth::forgot_password))
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/verify-email", post(auth::verify_email))
        .route_layer(
            RateLimitLayer::with_backend(ClientIpKey::new(), ip_limit).policy_name("auth"),
        );

    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || ready(prometheus.render())))
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let response = issuer.jwks_response();
                async move { response }
            }),
        )
        .merge(user_routes)
        .merge(data_routes)
        .merge(sessions)
        .route("/auth/login", login)
        .merge(limited_writes)
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// `POST /auth/login` behind the login throttle on `backend`.
fn throttled<B: LoginBackend>(layer: LoginRateLimitLayer<B>, per_ip: Quota) -> MethodRouter<App> {
    post(auth::login).layer(layer.account_fields(["email"]).attempts_per_ip(per_ip))
}

async fn index(State(app): State<App>) -> Response {
    app.page.response().into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
