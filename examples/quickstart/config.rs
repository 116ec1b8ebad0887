//! Settings: command-line flags first, then environment variables, then defaults.

use std::{fmt, net::SocketAddr, num::NonZeroU32, path::PathBuf};

/// Everything the server is configured with. `Debug` never shows the database or
/// Redis password.
#[derive(Clone)]
pub(crate) struct Config {
    /// Where to listen (`--addr`, `ADDR`; default 127.0.0.1:3000).
    pub(crate) addr: SocketAddr,
    /// Where the SQLite file, the signing key and the CSRF key live (`--data-dir`,
    /// `DATA_DIR`; default `./quickstart-data`).
    pub(crate) data_dir: PathBuf,
    /// PostgreSQL instead of SQLite (`DATABASE_URL`; environment only: URLs carry
    /// passwords, and the command line is visible to every local user).
    pub(crate) database_url: Option<String>,
    /// The PostgreSQL schema for every table (`DATABASE_SCHEMA`), created if missing.
    pub(crate) database_schema: Option<String>,
    /// Redis for shared rate limits and revocation (`REDIS_URL`; environment only).
    pub(crate) redis_url: Option<String>,
    /// The key prefix in Redis (`REDIS_PREFIX`; default `quickstart:`).
    pub(crate) redis_prefix: String,
    /// The admin's address (`--admin-email`, `ADMIN_EMAIL`): its owner becomes admin
    /// once they verify it. Unset: the first user to register is the admin.
    pub(crate) admin_email: Option<String>,
    /// Refuse logins until the e-mail address is verified (`--require-verified-email`,
    /// `REQUIRE_VERIFIED_EMAIL=true`; off by default).
    pub(crate) require_verified_email: bool,
    /// Also append every mail, as one JSON line, to this file (`--mail-log`,
    /// `MAIL_LOG`): for development and the end-to-end tests.
    pub(crate) mail_log: Option<PathBuf>,
    /// The URL clients use to reach the server (`--public-url`, `PUBLIC_URL`; default
    /// `http://ADDR`): the tokens' issuer and the base of links in mails.
    pub(crate) public_url: String,
    /// Login attempts per client IP per minute (`LOGIN_ATTEMPTS_PER_MINUTE`; default
    /// 20). Raise it when many users share one address (a NAT, a load test).
    pub(crate) login_attempts_per_minute: NonZeroU32,
    /// How long a spent refresh token still gets the same successor (a retry after a
    /// lost answer, two tabs) before a repeat counts as theft (`REFRESH_REUSE_SECONDS`;
    /// default 10).
    pub(crate) refresh_reuse: std::time::Duration,
    /// Whether cookies carry `Secure` (`COOKIE_SECURE=true|false`; default: on when
    /// `PUBLIC_URL` is https or the server listens on a non-loopback address).
    pub(crate) cookie_secure: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("database_schema", &self.database_schema)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("admin_email", &self.admin_email)
            .field("require_verified_email", &self.require_verified_email)
            .field("mail_log", &self.mail_log)
            .field("public_url", &self.public_url)
            .field("login_attempts_per_minute", &self.login_attempts_per_minute)
            .field("refresh_reuse", &self.refresh_reuse)
            .field("cookie_secure", &self.cookie_secure)
            .finish()
    }
}

pub(crate) const USAGE: &str = "\
usage: quickstart [--addr HOST:PORT] [--data-dir DIR] [--mail-log FILE]
                  [--public-url URL] [--admin-email EMAIL] [--require-verified-email]

environment: ADDR, DATA_DIR, MAIL_LOG, PUBLIC_URL, ADMIN_EMAIL, REQUIRE_VERIFIED_EMAIL,
             DATABASE_URL (PostgreSQL; SQLite in DATA_DIR otherwise), DATABASE_SCHEMA,
             REDIS_URL, REDIS_PREFIX, COOKIE_SECURE, LOGIN_ATTEMPTS_PER_MINUTE,
             REFRESH_REUSE_SECONDS";

impl Config {
    /// Reads the process's arguments and environment.
    pub(crate) fn from_env() -> Result<Self, String> {
        Self::parse(std::env::args().skip(1), |name| std::env::var(name).ok())
    }

    fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut addr = env("ADDR");
        let mut data_dir = env("DATA_DIR");
        let mut mail_log = env("MAIL_LOG");
        let mut public_url = env("PUBLIC_URL");
        let mut admin_email = env("ADMIN_EMAIL");
        let mut require_verified_email = match env("REQUIRE_VERIFIED_EMAIL") {
            Some(v) => parse_bool("REQUIRE_VERIFIED_EMAIL", &v)?,
            None => false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--addr" => addr = Some(value()?),
                "--data-dir" => data_dir = Some(value()?),
                "--mail-log" => mail_log = Some(value()?),
                "--public-url" => public_url = Some(value()?),
                "--admin-email" => admin_email = Some(value()?),
                "--require-verified-email" => require_verified_email = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        let addr: SocketAddr = addr
            .as_deref()
            .unwrap_or("127.0.0.1:3000")
            .parse()
            .map_err(|e| format!("ADDR / --addr: {e} (expected HOST:PORT, e.g. 127.0.0.1:3000)"))?;
        let public_url = public_url
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err("PUBLIC_URL / --public-url must start with http:// or https://".into());
        }
        let cookie_secure = match env("COOKIE_SECURE") {
            Some(v) => parse_bool("COOKIE_SECURE", &v)?,
            // Behind a TLS proxy the listen address is plain HTTP on loopback: the
            // public URL says what the browser sees.
            None => public_url.starts_with("https://") || !addr.ip().is_loopback(),
        };
        let database_schema = env("DATABASE_SCHEMA");
        if let Some(schema) = &database_schema {
            let ok = schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(
                    "DATABASE_SCHEMA must be 1 to 63 characters of [a-z0-9_], not starting with a digit"
                        .into(),
                );
            }
        }
        let login_attempts_per_minute = match env("LOGIN_ATTEMPTS_PER_MINUTE") {
            Some(v) => v.trim().parse::<NonZeroU32>().map_err(|_| {
                format!("LOGIN_ATTEMPTS_PER_MINUTE must be a positive integer, not {v:?}")
            })?,
            None => NonZeroU32::new(20).expect("non-zero"),
        };
        let refresh_reuse = match env("REFRESH_REUSE_SECONDS") {
            Some(v) => v.trim().parse::<u16>().map_err(|_| {
                format!("REFRESH_REUSE_SECONDS must be a number of seconds, not {v:?}")
            })?,
            None => 10,
        };
        Ok(Self {
            addr,
            refresh_reuse: std::time::Duration::from_secs(refresh_reuse.into()),
            login_attempts_per_minute,
            data_dir: PathBuf::from(data_dir.as_deref().unwrap_or("quickstart-data")),
            database_url: env("DATABASE_URL"),
            database_schema,
            redis_url: env("REDIS_URL"),
            redis_prefix: env("REDIS_PREFIX").unwrap_or_else(|| "quickstart:".into()),
            admin_email: admin_email.map(|e| e.trim().to_lowercase()),
            require_verified_email,
            mail_log: mail_log.map(PathBuf::from),
            public_url,
            cookie_secure,
        })
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{name} must be true or false, not {value:?}")),
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`, for printing.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable URL>".into();
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The password may contain '@'; the host never does.
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // Query strings may carry passwords too (`?password=`): drop them.
    let path = path.split('?').next().unwrap_or_default();
    format!("{scheme}://{authority}{path}")
}
