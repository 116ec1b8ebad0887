//! The resource server example against identity providers this project did not
//! write, on loopback: node's `oidc-provider` (JWT access tokens, opaque ones by
//! RFC 7662 introspection, discovery) and Better Auth's JWT plugin (EdDSA tokens
//! without `typ`), both trusted at once; DPoP-bound tokens from `oidc-provider` with
//! proofs made by npm's `dpop`.
//!
//! The node packages are installed by `.ci/run` (pinned) into a cache outside the
//! clone named by `PORTCULLIS_NODE_DIR`. Without them the tests say why and pass,
//! except under `CI=true`, where they fail.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, SystemTime},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

const OIDC_SECRET: &str = "machine-secret-machine-secret-32";
const RS_SECRET: &str = "resource-server-secret-32-bytes!";

/// The node folder with `oidc-provider` and `better-auth`, or why the tests skip.
fn node_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("PORTCULLIS_NODE_DIR").map(PathBuf::from) {
        Some(dir)
            if dir.join("node_modules/oidc-provider").is_dir()
                && dir.join("node_modules/better-auth").is_dir()
                && dir.join("node_modules/dpop").is_dir() =>
        {
            return Some(dir);
        }
        Some(dir) => format!("{} lacks oidc-provider, better-auth or dpop", dir.display()),
        None => "PORTCULLIS_NODE_DIR is not set (.ci/run installs the packages)".to_owned(),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "real-issuer tests cannot run under CI: {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A child process killed on drop, and the lines it printed first.
struct Process {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Process {
    /// Starts `command` and reads its stdout until a line starts with `ready`.
    async fn start(mut command: Command, ready: &str) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the process");
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut lines = Vec::new();
        let read = async {
            while let Some(line) = out.next_line().await.expect("read stdout") {
                let done = line.starts_with(ready);
                lines.push(line);
                if done {
                    return;
                }
            }
            panic!("exited before `{ready}`: {lines:?}");
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| panic!("no `{ready}` within 60 s"));
        // Keep draining so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        Self { child, lines }
    }

    /// The value after `key ` in the first lines.
    fn value(&self, key: &str) -> String {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no `{key}` in {:?}", self.lines))
            .to_owned()
    }
}

async fn node(dir: &Path, script: &str) -> Process {
    node_with(dir, script, &[]).await
}

async fn node_with(dir: &Path, script: &str, env: &[(&str, &str)]) -> Process {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/real_issuers")
        .join(script);
    let source = std::fs::read_to_string(path).expect("script");
    let mut command = Command::new("node");
    // `-e` resolves the packages from the working directory's node_modules.
    command
        .arg("--input-type=module")
        .arg("-e")
        .arg(source)
        .envs(env.iter().copied())
        .current_dir(dir);
    let ready = match script {
        s if s.starts_with("oidc") => "issuer",
        s if s.starts_with("dpop") => "done",
        _ => "token",
    };
    Process::start(command, ready).await
}

/// The newest modification time under `path` (a file or a folder, recursively).
fn newest(path: &Path) -> SystemTime {
    let Ok(meta) = std::fs::metadata(path) else {
        return SystemTime::UNIX_EPOCH;
    };
    if !meta.is_dir() {
        return meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| newest(&e.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The example, built first when it is missing or older than its sources (`cargo
/// test` without target filters builds it next to `deps/`; `--test real_issuers`
/// alone does not). Built offline, in the same target folder and profile.
async fn example() -> PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>");
            let binary = profile_dir.join("examples/resource_server");
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let sources = [
                "examples/resource_server.rs",
                "examples/resource_server",
                "crates/portcullis-jwt/src",
                "crates/portcullis-core/src",
                "src",
            ]
            .iter()
            .map(|p| newest(&root.join(p)))
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
            if newest(&binary) < sources || !binary.exists() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let mut command = Command::new(cargo);
                command
                    .args(["build", "--offline", "-p", "portcullis", "--all-features"])
                    .args(["--example", "resource_server"])
                    .env(
                        "CARGO_TARGET_DIR",
                        profile_dir.parent().expect("target dir"),
                    )
                    .current_dir(root);
                match profile_dir.file_name().and_then(|n| n.to_str()) {
                    Some("release") => {
                        command.arg("--release");
                    }
                    Some("debug") | None => {}
                    Some(other) => {
                        command.args(["--profile", other]);
                    }
                }
                let status = command.status().await.expect("cargo build");
                assert!(
                    status.success(),
                    "`cargo build --example resource_server` failed"
                );
            }
            binary
        })
        .await
        .clone()
}

async fn resource_server(args: &[&str]) -> (Process, String) {
    let mut command = Command::new(example().await);
    command
        .args(args)
        .args(["--audience", "api", "--addr", "127.0.0.1:0"]);
    let p = Process::start(command, "listening on").await;
    let addr = p.value("listening on");
    (p, addr)
}

/// One HTTP/1.1 exchange on loopback: the status and the body as JSON (or null).
async fn http(addr: &str, head: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let status = raw[9..12].parse().expect("status");
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A client-credentials access token from oidc-provider for `resource`.
async fn oidc_token(issuer: &str, resource: &str) -> String {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("machine:{OIDC_SECRET}"));
    let head = format!(
        "POST /token HTTP/1.1\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded"
    );
    let form = format!("grant_type=client_credentials&scope=read%20admin&resource={resource}");
    let (status, body) = http(issuer.trim_start_matches("http://"), &head, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn whoami(addr: &str, token: &str) -> (u16, Value) {
    let head = format!("GET /whoami HTTP/1.1\r\nAuthorization: Bearer {token}");
    http(addr, &head, "").await
}

#[tokio::test]
async fn two_real_issuers_jwt_and_opaque_tokens() {
    let Some(dir) = node_dir() else { return };
    let oidc = node(&dir, "oidc-provider.mjs").await;
    let better = node(&dir, "better-auth.mjs").await;
    let (op, ba) = (oidc.value("issuer"), better.value("issuer"));
    let introspection = format!("{op}/token/introspection");
    let (_rs, addr) = resource_server(&[
        "--issuer",
        &op,
        "--issuer",
        &ba,
        "--jwks-url",
        &format!("{op}/jwks"),
        "--jwks-url",
        &better.value("jwks"),
        "--preset",
        "better-auth",
        "--introspection-url",
        &introspection,
        "--client-id",
        "resource-server",
        "--client-secret",
        RS_SECRET,
    ])
    .await;

    // oidc-provider's RFC 9068 JWT (typ at+jwt, RS256).
    let (status, me) = whoami(&addr, &oidc_token(&op, "urn:jwt").await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["iss"].as_str(), me["kind"].as_str()),
        (Some(&*op), Some("jwt"))
    );
    assert_eq!(me["sub"], "machine");
    assert_eq!(me["scopes"], serde_json::json!(["read", "admin"]));

    // Better Auth's JWT: EdDSA, no `typ`, roles in a comma-separated `role`.
    let (status, me) = whoami(&addr, &better.value("token")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["iss"].as_str(), me["kind"].as_str()),
        (Some(&*ba), Some("jwt"))
    );
    assert_eq!(me["roles"], serde_json::json!(["admin", "user"]));

    // An opaque token: introspected; no `sub`, so the client is the subject.
    let (status, me) = whoami(&addr, &oidc_token(&op, "urn:opaque").await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["kind"].as_str(), me["sub"].as_str()),
        (Some("introspected"), Some("machine"))
    );
    assert_eq!(me["iss"].as_str(), Some(&*op));
    // An opaque token the provider never issued: inactive.
    assert_eq!(whoami(&addr, "not-a-token-of-anyone").await.0, 401);
    // A Better Auth token with a tampered payload: refused.
    let forged = better.value("token").replacen('.', ".e", 1);
    assert_eq!(whoami(&addr, &forged).await.0, 401);
}

#[tokio::test]
async fn discovery_and_strict_access_token_mode() {
    let Some(dir) = node_dir() else { return };
    let oidc = node(&dir, "oidc-provider.mjs").await;
    let better = node(&dir, "better-auth.mjs").await;
    let op = oidc.value("issuer");
    // oidc-provider's keys found by OpenID discovery; only `at+jwt` accepted.
    let (_rs, addr) = resource_server(&["--issuer", &op, "--require-at-jwt"]).await;
    assert_eq!(
        whoami(&addr, &oidc_token(&op, "urn:jwt").await).await.0,
        200
    );
    // Better Auth's untyped token is refused in strict mode (and by the default
    // mode's issuer list here: Better Auth is not trusted by this server).
    let (_strict, strict) = resource_server(&[
        "--issuer",
        &better.value("issuer"),
        "--jwks-url",
        &better.value("jwks"),
        "--require-at-jwt",
    ])
    .await;
    assert_eq!(whoami(&strict, &better.value("token")).await.0, 401);
    let (_lenient, lenient) = resource_server(&[
        "--issuer",
        &better.value("issuer"),
        "--jwks-url",
        &better.value("jwks"),
    ])
    .await;
    assert_eq!(whoami(&lenient, &better.value("token")).await.0, 200);
}

/// `GET /whoami` with `Authorization: <scheme> <token>` and the proofs given.
async fn whoami_with(addr: &str, scheme: &str, token: &str, proofs: &[&str]) -> (u16, Value) {
    let mut head = format!("GET /whoami HTTP/1.1\r\nAuthorization: {scheme} {token}");
    for proof in proofs {
        head.push_str(&format!("\r\nDPoP: {proof}"));
    }
    http(addr, &head, "").await
}

/// The proof number `n` the dpop client made for `base`.
fn proof<'a>(client: &'a Process, base: &str, n: u8) -> &'a str {
    let prefix = format!("proof {base} {n} ");
    client
        .lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no proof {n} for {base}"))
}

#[tokio::test]
async fn oidc_provider_dpop_tokens_with_proofs_from_npm_dpop() {
    let Some(dir) = node_dir() else { return };
    let oidc = node(&dir, "oidc-provider.mjs").await;
    let op = oidc.value("issuer");
    let public = "https://api.example.com/v1";
    // Keys by discovery; htu from the Host header, then under a public URL.
    let (_rs, addr) = resource_server(&["--issuer", &op]).await;
    let (_behind, behind) = resource_server(&["--issuer", &op, "--public-url", public]).await;
    let local = format!("http://{addr}");
    let bases = format!("{local} {public}");
    let client = node_with(
        &dir,
        "dpop-client.mjs",
        &[
            ("ISSUER", &op),
            ("BASES", &bases),
            ("CLIENT_SECRET", OIDC_SECRET),
        ],
    )
    .await;
    assert_eq!(client.value("token_type"), "DPoP");
    let token = client.value("token");

    let (status, me) = whoami_with(&addr, "DPoP", &token, &[proof(&client, &local, 0)]).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "machine");
    assert!(me["dpop_jkt"].is_string(), "{me}");
    // The same proof again: replayed.
    let (status, me) = whoami_with(&addr, "DPoP", &token, &[proof(&client, &local, 0)]).await;
    assert_eq!(
        (status, me["code"].as_str()),
        (401, Some("invalid_dpop_proof"))
    );
    // A fresh proof passes; the bound token as a bearer token does not.
    assert_eq!(
        whoami_with(&addr, "DPoP", &token, &[proof(&client, &local, 1)])
            .await
            .0,
        200
    );
    let (status, me) = whoami_with(&addr, "Bearer", &token, &[]).await;
    assert_eq!((status, me["code"].as_str()), (401, Some("invalid_token")));
    // Proofs for the public URL fit only the server told of it.
    assert_eq!(
        whoami_with(&addr, "DPoP", &token, &[proof(&client, public, 0)])
            .await
            .0,
        401
    );
    assert_eq!(
        whoami_with(&behind, "DPoP", &token, &[proof(&client, public, 1)])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn require_dpop_refuses_unbound_tokens() {
    let Some(dir) = node_dir() else { return };
    let oidc = node(&dir, "oidc-provider.mjs").await;
    let op = oidc.value("issuer");
    let unbound = oidc_token(&op, "urn:jwt").await;
    let (_rs, lenient) = resource_server(&["--issuer", &op]).await;
    assert_eq!(whoami(&lenient, &unbound).await.0, 200);
    let (_strict, strict) = resource_server(&["--issuer", &op, "--require-dpop"]).await;
    let (status, body) = whoami(&strict, &unbound).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
}
