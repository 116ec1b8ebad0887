//! Test helpers: the server from `REDIS_URL`, per-test key prefixes with clean-up,
//! and a private `redis-server` that a test can kill and restart.

#![allow(dead_code, unreachable_pub)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use portcullis_redis::Redis;

/// The URL of the shared test server, or `None` (after saying why on stderr) when
/// `REDIS_URL` is unset outside CI. Under `CI=true` a missing server fails the test.
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("REDIS_URL is not set, but CI=true requires the Redis tests to run");
            }
            eprintln!("skipping: REDIS_URL is not set (set it to run the Redis tests)");
            None
        }
    }
}

/// A handle under a fresh prefix; its keys are deleted when the guard drops.
pub struct Scoped {
    pub redis: Redis,
    pub url: String,
    pub prefix: String,
}

impl Scoped {
    pub fn new(url: &str) -> Self {
        let prefix = format!("portcullis-test:{:016x}:", rand::random::<u64>());
        let redis = Redis::open(url).unwrap().with_prefix(&prefix);
        Self {
            redis,
            url: url.to_owned(),
            prefix,
        }
    }

    /// Another handle (own connection) on the same server and prefix: another
    /// application instance.
    pub fn another_instance(&self) -> Redis {
        Redis::open(&self.url).unwrap().with_prefix(&self.prefix)
    }

    /// A plain connection for inspecting keys (a cluster connection on a cluster).
    pub fn raw(&self) -> Raw {
        raw(&self.url)
    }

    /// The keys under the prefix, sorted (a cluster answers node by node).
    pub fn keys(&self) -> Vec<String> {
        let mut conn = self.raw();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap();
        keys.sort();
        keys
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        let Ok(mut conn) = try_raw(&self.url) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        for key in keys {
            let _: Result<(), _> = redis::cmd("DEL").arg(key).query(&mut conn);
        }
    }
}

/// A blocking connection to a server or, for `redis+cluster://` URLs, a cluster.
pub enum Raw {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// The seed nodes of a `redis+cluster://host:port,...` URL, or `None` for a server.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let hosts = url.strip_prefix("redis+cluster://")?;
    Some(
        hosts
            .trim_end_matches('/')
            .split(',')
            .map(|h| format!("redis://{h}"))
            .collect(),
    )
}

pub fn raw(url: &str) -> Raw {
    try_raw(url).unwrap()
}

fn try_raw(url: &str) -> redis::RedisResult<Raw> {
    Ok(match cluster_nodes(url) {
        Some(nodes) => Raw::Cluster(Box::new(
            redis::cluster::ClusterClient::new(nodes)?.get_connection()?,
        )),
        None => Raw::Single(redis::Client::open(url)?.get_connection()?),
    })
}

impl redis::ConnectionLike for Raw {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Single(c) => c.req_command(cmd),
            Self::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::Single(c) => c.check_connection(),
            Self::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::Single(c) => c.is_open(),
            Self::Cluster(c) => c.is_open(),
        }
    }
}

/// A `redis-server` of our own on a free loopback port, killed on drop.
pub struct OwnServer {
    pub port: u16,
    child: Option<Child>,
}

impl OwnServer {
    pub fn start() -> Self {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut server = Self { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH for the outage test");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of our own: three primaries on free loopback ports (their cluster
/// bus on the port + 10000), no persistence, killed on drop.
pub struct OwnCluster {
    pub ports: Vec<u16>,
    dir: std::path::PathBuf,
    children: Vec<Option<Child>>,
}

impl OwnCluster {
    pub fn start() -> Self {
        let mut ports = Vec::new();
        while ports.len() < 3 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            // The bus port must be free too.
            let bus_free = port < 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
            if bus_free && !ports.contains(&port) {
                ports.push(port);
            }
        }
        let dir =
            std::env::temp_dir().join(format!("portcullis-cluster-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            children: ports.iter().map(|_| None).collect(),
            ports,
            dir,
        };
        for i in 0..3 {
            cluster.restart(i);
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be on PATH for the cluster tests");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        cluster
    }

    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Starts node `i` (again), with the cluster configuration it saved, and waits
    /// until it answers.
    pub fn restart(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "node already running");
        let port = self.ports[i].to_string();
        let conf = self.dir.join(format!("nodes-{port}.conf"));
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
            ])
            .arg("--cluster-config-file")
            .arg(&conf)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH for the cluster tests");
        self.children[i] = Some(child);
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(&url) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills node `i` (SIGKILL): its data is gone, its cluster configuration stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every node says the cluster is ok.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in &self.ports {
            let url = format!("redis://127.0.0.1:{port}");
            loop {
                let info: Option<String> = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .ok();
                if info.is_some_and(|i| i.contains("cluster_state:ok")) {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not settle");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn ping(url: &str) -> bool {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
