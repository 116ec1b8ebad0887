//! Runs the compiled quickstart example as a child process on a free loopback port
//! with a temporary data directory, and talks to it over real HTTP.

#![allow(dead_code)] // Each test binary uses a different part of it.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    body::Bytes,
    header::{self, HeaderMap, HeaderName, HeaderValue},
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

/// The compiled example, built first if it is missing or older than its sources.
///
/// Tests run from `target/<profile>/deps/`, and cargo puts examples into
/// `target/<profile>/examples/`. `cargo test` without target filters builds the
/// example before running the tests; with `--test quickstart` alone it does not, so
/// then this runs `cargo build --offline --example quickstart` once (same target
/// directory and profile; `--offline`: nothing is downloaded at test time) rather than
/// test a stale binary.
pub(crate) fn example_binary() -> PathBuf {
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned();
    let binary = profile_dir.join("examples").join("quickstart");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built && !is_fresh(&binary) {
        // Cargo rebuilds only what changed (a test file newer than the binary
        // changes nothing it links): the binary must exist, not be newer.
        build_example(&profile_dir);
        assert!(
            binary.exists(),
            "`cargo build --example quickstart` made no {}",
            binary.display()
        );
    }
    *built = true;
    binary
}

fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    // The example and every crate it builds on.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["examples/quickstart", "crates", "src"]
        .iter()
        .all(|dir| built >= newest_source(&root.join(dir)))
}

/// The newest modification time of the `.rs` and `.html` files below `dir`.
fn newest_source(dir: &Path) -> SystemTime {
    fs::read_dir(dir)
        .expect("a source folder")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            if path.is_dir() {
                return Some(newest_source(&path));
            }
            match path.extension().and_then(|x| x.to_str()) {
                Some("rs" | "html") => e.metadata().ok()?.modified().ok(),
                _ => None,
            }
        })
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn build_example(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--offline", "-p", "portcullis", "--all-features"])
        .args(["--example", "quickstart"])
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    eprintln!("building the quickstart example: {command:?}");
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "`cargo build --example quickstart` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A free port on 127.0.0.1 (the listener is dropped; a small race is possible).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Extra environment variables (DATABASE_URL, REDIS_URL, …).
    pub(crate) env: Vec<(String, String)>,
    /// Extra arguments.
    pub(crate) args: Vec<String>,
}

impl Options {
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }
}

/// A running quickstart server; killed on drop.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) base: String,
    pub(crate) data_dir: tempfile::TempDir,
    options: Options,
    pub(crate) client: Http,
}

impl Server {
    /// Starts the example on a free port with a fresh data directory and waits for
    /// `/healthz`.
    pub(crate) async fn start(options: Options) -> Self {
        let data_dir = tempfile::Builder::new()
            .prefix("quickstart-test-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            options,
            client: Http::new(format!("http://127.0.0.1:{port}")),
        };
        server.spawn().await;
        server
    }

    pub(crate) fn mail_log(&self) -> PathBuf {
        self.data_dir.path().join("mail.jsonl")
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }

    /// The server's output so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let mut command = Command::new(example_binary());
        command
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--mail-log")
            .arg(self.mail_log())
            .args(&self.options.args)
            .env_remove("DATABASE_URL")
            .env_remove("DATABASE_SCHEMA")
            .env_remove("REDIS_URL")
            .env_remove("REFRESH_REUSE_SECONDS")
            .env_remove("REDIS_PREFIX")
            .env_remove("ADMIN_EMAIL")
            .env_remove("REQUIRE_VERIFIED_EMAIL")
            .env_remove("PUBLIC_URL")
            .env_remove("COOKIE_SECURE")
            .env_remove("LOGIN_ATTEMPTS_PER_MINUTE")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        for (k, v) in &self.options.env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the quickstart example");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the quickstart exited early ({status}):\n{}", self.log());
            }
            if let Ok(r) = self.client.get("/healthz").send().await
                && r.status == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the quickstart did not answer /healthz within 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process and starts it again on the same port and data directory.
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// The server's resident memory (`VmRSS`), in MiB.
    pub(crate) fn rss_mib(&self) -> f64 {
        let pid = self.child.as_ref().expect("the quickstart is running").id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib / 1024.0
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn get(&self, path: &str) -> Req {
        self.client.get(path)
    }

    pub(crate) fn post(&self, path: &str) -> Req {
        self.client.post(path)
    }

    pub(crate) fn delete(&self, path: &str) -> Req {
        self.client.request(Method::DELETE, path)
    }

    /// Waits (up to 10 s) for a mail of `kind` to `to` (case-insensitive) in the mail
    /// log, after `skip` earlier such mails, and returns it.
    pub(crate) async fn mail(&self, to: &str, kind: &str, skip: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(self.mail_log()).unwrap_or_default();
            let found: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|m| {
                    m["kind"] == kind
                        && m["to"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(to))
                })
                .collect();
            if let Some(mail) = found.into_iter().nth(skip) {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} mail #{skip} to {to} within 10 s; mail log:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many mails of `kind` to `to` were written so far.
    pub(crate) fn mail_count(&self, to: &str, kind: &str) -> usize {
        fs::read_to_string(self.mail_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| {
                m["kind"] == kind && m["to"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(to))
            })
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small HTTP/1.1 client over hyper.
#[derive(Clone)]
pub(crate) struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// A client whose connections come from `local` (any 127.0.0.0/8 address reaches
    /// a server on 127.0.0.1): many client IPs on one machine.
    pub(crate) fn from_ip(base: String, local: std::net::IpAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(local));
        Self {
            base,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> Req {
        Req {
            client: self.client.clone(),
            method,
            uri: format!("{}{}", self.base, path),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Req {
        self.request(Method::GET, path)
    }

    pub(crate) fn post(&self, path: &str) -> Req {
        self.request(Method::POST, path)
    }
}

/// A request being built.
pub(crate) struct Req {
    client: Client<HttpConnector, Full<Bytes>>,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        self
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub(crate) fn json(mut self, body: &Value) -> Self {
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = Bytes::from(body.to_string());
        self
    }

    pub(crate) fn raw(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("content type"),
        );
        self.body = body.into();
        self
    }

    pub(crate) async fn send(self) -> Result<Resp, hyper_util::client::legacy::Error> {
        let mut request = Request::builder()
            .method(self.method)
            .uri(self.uri)
            .body(Full::new(self.body))
            .expect("request");
        *request.headers_mut() = self.headers;
        let response = self.client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends and panics on a transport error.
    pub(crate) async fn go(self) -> Resp {
        let what = format!("{} {}", self.method, self.uri);
        self.send()
            .await
            .unwrap_or_else(|e| panic!("{what}: transport error {e}"))
    }
}

/// A response, fully read.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts an `application/problem+json` answer with `status` and `code`.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) -> Value {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem content type; body: {}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        body
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of cookie `name` as set by this response.
    pub(crate) fn cookie_value(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let first = line.split(';').next()?;
        Some(first[name.len() + 1..].to_owned())
    }
}
