//! The fault soak: two quickstart instances on one PostgreSQL and one Redis of their
//! own, under mixed traffic (refreshes, racing refreshes, bearer and API-key calls,
//! logouts everywhere, a client past its rate limit), while Redis and PostgreSQL are
//! killed and restarted. Then the books are checked: no refresh family lost, no spent
//! refresh token accepted again, every revocation honoured on both instances, no 5xx
//! but 503, no request past its timeout, memory back near its baseline.
//!
//! `SOAK_SECS` sets the traffic's length (default 20, CI's short form); `bench/soak.sh`
//! runs it longer and prints the summary. PostgreSQL comes from Debian's
//! `/usr/lib/postgresql/<major>/bin` (run as the `postgres` user when the test runs as
//! root), Redis from `redis-server` on the `PATH`.

use std::{
    collections::HashSet,
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use super::*;
use harness::{Http, free_port};

/// Past this a request counts as hung (the SQL deadline is 2 s, Redis calls 250 ms).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fault lasts before the service comes back.
const OUTAGE: Duration = Duration::from_secs(2);
/// The instances' refresh reuse interval: short, so the spent tokens can be tried at
/// the end without a long wait.
const REUSE_SECONDS: u64 = 3;
const USERS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_survive_redis_and_postgres_restarts_without_losing_a_session() {
    let Some(pg_bin) = postgres_binaries() else {
        skip_or_fail("PostgreSQL's initdb and pg_ctl under /usr/lib/postgresql/*/bin");
        return;
    };
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_or_fail("redis-server on the PATH");
        return;
    }
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let postgres = Arc::new(Postgres::start(pg_bin));
    let redis = Arc::new(Mutex::new(Redis::start()));
    let redis_port = redis.lock().unwrap().port;
    let options = || {
        Options::default()
            .env("DATABASE_URL", &postgres.url())
            .env("REDIS_URL", &format!("redis://127.0.0.1:{redis_port}"))
            .env("REFRESH_REUSE_SECONDS", &REUSE_SECONDS.to_string())
            .env("LOGIN_ATTEMPTS_PER_MINUTE", "100000")
            // One issuer for both, as behind one load balancer.
            .env("PUBLIC_URL", "http://soak.localhost")
    };
    let first = Server::start(options()).await;
    // The second instance shares the first's data directory: one signing key.
    let data_dir = first.data_dir.path().to_str().unwrap().to_owned();
    let second = Server::start(options().arg("--data-dir").arg(&data_dir)).await;
    let bases = Arc::new([first.base.clone(), second.base.clone()]);

    let books = Arc::new(Books::default());
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(User::sign_up(i, &bases, &books).await);
    }
    let baseline = [first.rss_mib(), second.rss_mib()];

    // Traffic until the deadline; the faults at a quarter, a half and three quarters.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut traffic = tokio::task::JoinSet::new();
    for user in users {
        let (bases, books) = (bases.clone(), books.clone());
        traffic.spawn(async move { user.run(&bases, &books, deadline).await });
    }
    let noisy = tokio::spawn(noisy_client(bases.clone(), books.clone(), deadline));
    // Killing and starting services blocks: the faults run on a thread of their own.
    let faults = {
        let (postgres, redis) = (postgres.clone(), redis.clone());
        std::thread::spawn(move || {
            let mut injected = Vec::new();
            for (n, which) in ["redis", "postgres", "both"].into_iter().enumerate() {
                let at = started + Duration::from_secs(secs) * (n as u32 + 1) / 4;
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let at = started.elapsed();
                if which != "postgres" {
                    redis.lock().unwrap().kill();
                }
                if which != "redis" {
                    postgres.stop_immediately();
                }
                std::thread::sleep(OUTAGE);
                if which != "postgres" {
                    redis.lock().unwrap().restart();
                }
                if which != "redis" {
                    postgres.start_again();
                }
                injected.push(format!(
                    "{which} down at {:.1} s for {OUTAGE:?}",
                    at.as_secs_f64()
                ));
            }
            injected
        })
    };
    let mut users = Vec::new();
    while let Some(user) = traffic.join_next().await {
        users.push(user.unwrap());
    }
    noisy.await.unwrap();
    let injected = faults.join().unwrap();

    // The books. Every family still rotates, on either instance.
    for user in &mut users {
        let rotated = user
            .rotate_until_answered(&bases[user.index % 2], &books)
            .await;
        assert!(rotated, "{}: the refresh family was lost", user.email);
    }
    // Past the reuse interval a spent token is refused, and ends its family.
    tokio::time::sleep(Duration::from_secs(REUSE_SECONDS + 1)).await;
    let mut spent_tried = 0;
    for user in &users {
        if let Some(spent) = &user.spent {
            let status = until_answered(&user.client, &bases[(user.index + 1) % 2], |c, base| {
                c.post(&format!("{}/auth/refresh", base))
                    .json(&json!({ "refresh_token": spent }))
            })
            .await;
            assert_eq!(
                status, 401,
                "{}: a spent refresh token was accepted",
                user.email
            );
            spent_tried += 1;
        }
    }
    // Every access token issued before a logout everywhere is refused on both instances.
    let revoked = books.revoked.lock().unwrap().clone();
    for (email, access) in &revoked {
        for base in bases.iter() {
            let client = Http::new(String::new());
            let status = until_answered(&client, base, |c, base| {
                c.get(&format!("{}/me", base)).bearer(access)
            })
            .await;
            assert_eq!(
                status, 401,
                "{email}: a revoked access token was accepted at {base}"
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = [first.rss_mib(), second.rss_mib()];

    let statuses = books.statuses.lock().unwrap().clone();
    let total: u64 = statuses.iter().map(|(_, n)| n).sum();
    let hung = books.hung.load(Ordering::Relaxed);
    let slowest = Duration::from_micros(books.slowest_us.load(Ordering::Relaxed));
    eprintln!(
        "soak: {secs} s, {total} requests, statuses {statuses:?}, slowest {slowest:?}, hung {hung}\n\
         faults: {injected:?}\n\
         checked: {} families rotate, {spent_tried} spent tokens refused, {} revoked access tokens refused on both instances, {} racing refreshes agreed\n\
         RSS MiB: {:.1} / {:.1} after sign-up, {:.1} / {:.1} at the end\n\
         losses: 0",
        users.len(),
        revoked.len(),
        books.races.load(Ordering::Relaxed),
        baseline[0],
        baseline[1],
        after[0],
        after[1],
    );
    assert_eq!(hung, 0, "requests past {REQUEST_TIMEOUT:?}");
    assert!(
        statuses.iter().all(|(s, _)| *s < 500 || *s == 503),
        "a 5xx other than 503: {statuses:?}"
    );
    assert!(
        !revoked.is_empty() && spent_tried > 0,
        "the traffic checked nothing"
    );
    for (base, end) in baseline.iter().zip(after) {
        assert!(end <= base * 1.5 + 32.0, "RSS {base:.1} -> {end:.1} MiB");
    }
}

fn skip_or_fail(what: &str) {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true needs {what}"
    );
    eprintln!("skipped: the soak needs {what}");
}

/// What every client saw.
#[derive(Default)]
struct Books {
    statuses: Mutex<Vec<(u16, u64)>>,
    hung: AtomicU64,
    slowest_us: AtomicU64,
    races: AtomicU64,
    /// Every refresh token handed out.
    issued: Mutex<HashSet<String>>,
    /// (user, access token) for every logout everywhere.
    revoked: Mutex<Vec<(String, String)>>,
}

impl Books {
    fn count(&self, status: u16) {
        let mut statuses = self.statuses.lock().unwrap();
        match statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => {
                statuses.push((status, 1));
                statuses.sort_unstable();
            }
        }
    }

    /// Records a refresh token handed to a client: never the same one twice (a repeat
    /// within the reuse interval gets its successor again, but only racing refreshes
    /// repeat here, and they record one).
    fn issued(&self, token: &str) {
        let fresh = self.issued.lock().unwrap().insert(token.to_owned());
        assert!(fresh, "a refresh token was handed out twice");
    }
}

/// Sends `req`; `None` when no answer came within the timeout (counted as hung) or the
/// connection failed.
async fn send(books: &Books, req: harness::Req) -> Option<Resp> {
    let started = Instant::now();
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, req.send()).await;
    let took = started.elapsed();
    books
        .slowest_us
        .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
    match answer {
        Err(_) => {
            books.hung.fetch_add(1, Ordering::Relaxed);
            None
        }
        Ok(Err(_)) => None,
        Ok(Ok(r)) => {
            books.count(r.status.as_u16());
            Some(r)
        }
    }
}

/// Repeats a request until it gets an answer other than 503 or 429 (services come
/// back within seconds); its status.
async fn until_answered(
    client: &Http,
    base: &str,
    make: impl Fn(&Http, &str) -> harness::Req,
) -> u16 {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Ok(r)) = tokio::time::timeout(REQUEST_TIMEOUT, make(client, base).send()).await
            && !matches!(r.status.as_u16(), 503 | 429)
        {
            return r.status.as_u16();
        }
        assert!(
            Instant::now() < give_up,
            "no answer from {base} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct User {
    index: usize,
    email: String,
    client: Http,
    access: String,
    refresh: String,
    /// The refresh token spent by the last rotation.
    spent: Option<String>,
    api_key: String,
}

impl User {
    async fn sign_up(index: usize, bases: &[String; 2], books: &Books) -> Self {
        let email = format!("soak{index}@example.com");
        let ip =
            std::net::IpAddr::from([127, 0, 20 + (index / 200) as u8, (index % 200 + 1) as u8]);
        let client = Http::from_ip(String::new(), ip);
        let base = &bases[index % 2];
        let status = until_answered(&client, base, |c, base| {
            c.post(&format!("{}/auth/register", base))
                .json(&json!({ "email": email, "password": BOB_PW }))
        })
        .await;
        assert_eq!(status, 201, "register {email}");
        let mut user = Self {
            index,
            email,
            client,
            access: String::new(),
            refresh: String::new(),
            spent: None,
            api_key: String::new(),
        };
        user.log_in(&bases[(index + 1) % 2], books).await;
        user.make_api_key(base).await;
        user
    }

    /// A new API key (logging out everywhere ends the old one).
    async fn make_api_key(&mut self, base: &str) {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let req = self
                .client
                .post(&format!("{base}/api-keys"))
                .bearer(&self.access)
                .json(&json!({ "name": "soak", "scopes": ["data:read"] }));
            if let Ok(Ok(r)) = tokio::time::timeout(REQUEST_TIMEOUT, req.send()).await {
                if r.status == 201 {
                    self.api_key = r.json()["key"].as_str().unwrap().to_owned();
                    return;
                }
                assert_eq!(r.status, 503, "new API key");
            }
            assert!(
                Instant::now() < give_up,
                "{}: no API key within 30 s",
                self.email
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn log_in(&mut self, base: &str, books: &Books) {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let req = self
                .client
                .post(&format!("{}/auth/login", base))
                .json(&json!({ "email": self.email, "password": BOB_PW }));
            if let Some(r) = send(books, req).await {
                if r.status == 200 {
                    let pair = Pair::from_body(&r.json());
                    books.issued(&pair.refresh);
                    (self.access, self.refresh, self.spent) = (pair.access, pair.refresh, None);
                    return;
                }
                assert!(
                    matches!(r.status.as_u16(), 503 | 429),
                    "login: {}",
                    r.status
                );
            }
            assert!(
                Instant::now() < give_up,
                "{}: no login within 30 s",
                self.email
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One rotation at `base`: `Some(true)` rotated, `Some(false)` refused, `None` no
    /// decision (a store outage, a limit, a lost connection: the same token is retried).
    async fn rotate(&mut self, base: &str, books: &Books) -> Option<bool> {
        let req = self
            .client
            .post(&format!("{}/auth/refresh", base))
            .json(&json!({ "refresh_token": self.refresh }));
        let r = send(books, req).await?;
        match r.status.as_u16() {
            200 => {
                let pair = Pair::from_body(&r.json());
                books.issued(&pair.refresh);
                self.spent = Some(std::mem::replace(&mut self.refresh, pair.refresh));
                self.access = pair.access;
                Some(true)
            }
            503 | 429 => None,
            _ => Some(false),
        }
    }

    async fn rotate_until_answered(&mut self, base: &str, books: &Books) -> bool {
        let give_up = Instant::now() + Duration::from_secs(30);
        while Instant::now() < give_up {
            if let Some(done) = self.rotate(base, books).await {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// The same refresh token at both instances at once: both answers that rotate
    /// must carry the same successor.
    async fn race(&mut self, bases: &[String; 2], books: &Books) {
        let body = json!({ "refresh_token": self.refresh });
        let (a, b) = tokio::join!(
            send(
                books,
                self.client
                    .post(&format!("{}/auth/refresh", &bases[0]))
                    .json(&body)
            ),
            send(
                books,
                self.client
                    .post(&format!("{}/auth/refresh", &bases[1]))
                    .json(&body)
            ),
        );
        let rotated: Vec<Pair> = [a, b]
            .into_iter()
            .flatten()
            .filter(|r| r.status == 200)
            .map(|r| Pair::from_body(&r.json()))
            .collect();
        if let [one, two] = rotated.as_slice() {
            assert_eq!(
                one.refresh, two.refresh,
                "{}: one refresh token rotated twice",
                self.email
            );
        }
        if let Some(pair) = rotated.into_iter().next() {
            books.issued(&pair.refresh);
            books.races.fetch_add(1, Ordering::Relaxed);
            self.spent = Some(std::mem::replace(&mut self.refresh, pair.refresh));
            self.access = pair.access;
        }
    }

    async fn run(mut self, bases: &[String; 2], books: &Books, deadline: Instant) -> Self {
        let mut step = self.index;
        let mut logged_out = false;
        while Instant::now() < deadline {
            step += 1;
            let base = &bases[step % 2];
            match step % 10 {
                0 => {
                    if self.rotate(base, books).await == Some(false) {
                        panic!("{}: a live refresh token was refused", self.email);
                    }
                }
                5 if step % 30 == 5 => self.race(bases, books).await,
                3 | 7 => {
                    let req = self
                        .client
                        .get(&format!("{}/api/data", base))
                        .header("x-api-key", &self.api_key);
                    if let Some(r) = send(books, req).await {
                        assert!(
                            matches!(r.status.as_u16(), 200 | 429 | 503),
                            "api key: {}",
                            r.status
                        );
                    }
                }
                9 if !logged_out && step > 60 && self.index.is_multiple_of(3) => {
                    // A logout everywhere, then a new session: the old token is
                    // refused everywhere, checked at the end.
                    let req = self
                        .client
                        .post(&format!("{}/auth/logout-all", base))
                        .bearer(&self.access);
                    if let Some(r) = send(books, req).await
                        && r.status == 204
                    {
                        books
                            .revoked
                            .lock()
                            .unwrap()
                            .push((self.email.clone(), self.access.clone()));
                        logged_out = true;
                        self.log_in(&bases[(step + 1) % 2], books).await;
                        self.make_api_key(base).await;
                    }
                }
                _ => {
                    let req = self
                        .client
                        .get(&format!("{}/me", base))
                        .bearer(&self.access);
                    if let Some(r) = send(books, req).await {
                        assert!(matches!(r.status.as_u16(), 200 | 503), "/me: {}", r.status);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        self
    }
}

/// One client past its limit: refresh attempts with garbage from one address.
async fn noisy_client(bases: Arc<[String; 2]>, books: Arc<Books>, deadline: Instant) {
    let client = Http::from_ip(String::new(), std::net::IpAddr::from([127, 0, 30, 1]));
    let limited = AtomicBool::new(false);
    let mut n = 0usize;
    while Instant::now() < deadline {
        n += 1;
        let req = client
            .post(&format!("{}/auth/refresh", &bases[n % 2]))
            .json(&json!({ "refresh_token": "not-a-token" }));
        if let Some(r) = send(&books, req).await {
            assert!(
                matches!(r.status.as_u16(), 400 | 401 | 422 | 429 | 503),
                "noisy: {}",
                r.status
            );
            if r.status == 429 {
                limited.store(true, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        limited.load(Ordering::Relaxed),
        "the noisy client was never limited"
    );
}

/// A PostgreSQL cluster of the test's own on a free loopback port.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn postgres_binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Postgres {
    fn start(bin: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("soak-pg-")
            .tempdir()
            .expect("temp dir");
        if running_as_root() {
            // initdb refuses root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let pg = Self {
            bin,
            dir,
            port: free_port(),
        };
        pg.tool("initdb", |c| {
            c.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
                .arg(pg.data())
        });
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn tool(&self, name: &str, args: impl FnOnce(&mut Command) -> &mut Command) {
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        };
        run(args(&mut command));
    }

    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.tool("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
        });
    }

    /// Stops at once, as a crash would: no checkpoint, no goodbye to the clients.
    fn stop_immediately(&self) {
        self.tool("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
        });
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            self.stop_immediately();
        }
    }
}

fn run(command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Redis of the test's own, without persistence: a restart loses everything.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let give_up = Instant::now() + Duration::from_secs(10);
        while !pong(self.port) {
            assert!(Instant::now() < give_up, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: whatever Redis held is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
