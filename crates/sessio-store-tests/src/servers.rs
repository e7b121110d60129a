//! Private server processes for tests: each on a free loopback port, stopped on drop.
//!
//! Tests never use a server someone left running: they start their own here. When the
//! server's program is missing, the helper panics with what to install.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released, so a server can take it), never
/// one this process handed out before: the kernel readily gives a released port again, and
/// two tests running side by side must not start their servers on the same one (the
/// second server would fail to bind while the first answered for both).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Process {
    /// Starts `program` with `args`, output discarded.
    ///
    /// # Panics
    /// With `install_hint` if the program is not installed.
    pub fn start(program: &str, args: &[String], install_hint: &str) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {install_hint}"));
        Self {
            child,
            name: program.to_string(),
        }
    }

    /// Starts `program` with `args`, its output (stdout and stderr) written to `log`.
    ///
    /// # Panics
    /// With `install_hint` if the program is not installed.
    pub fn start_logged(
        program: &str,
        args: &[String],
        install_hint: &str,
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("create the log file");
        let child = Command::new(program)
            .args(args)
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {install_hint}"));
        Self {
            child,
            name: program.to_string(),
        }
    }

    /// Freezes the process (SIGSTOP), as a stalled server or a partition would; see
    /// [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something accepts TCP connections on `port`.
///
/// # Panics
/// If nothing does within `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // A connect to a free port in the ephemeral range can meet itself (a TCP
        // simultaneous open: the client is given that very port), which says nothing
        // about the server; only a peer that is not ourselves counts.
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            if stream.local_addr().ok() != stream.peer_addr().ok() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not accept connections on 127.0.0.1:{port} within {timeout:?}");
}

const REDIS_HINT: &str =
    "install Redis with `apt-get install -y redis-server` (the test command in README does)";

/// A private `redis-server` on a free loopback port, with no persistence.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
}

impl RedisServer {
    /// Starts one.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts one on `port` (to restart a killed server on the same address).
    pub fn start_on(port: u16) -> Self {
        let args = redis_args(port);
        let mut process = Process::start("redis-server", &args, REDIS_HINT);
        wait_for_port(port, Duration::from_secs(10), "redis-server");
        // What answered must be this server, not another that had the port first.
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            process.is_running(),
            "redis-server could not take 127.0.0.1:{port}: another process listens there"
        );
        Self { port, process }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The server process (to pause and resume it).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

fn redis_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A private Redis Cluster of three masters (no replicas) on free loopback ports.
#[derive(Debug)]
pub struct RedisCluster {
    /// The masters' ports.
    pub ports: Vec<u16>,
    _nodes: Vec<Process>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them with `redis-cli --cluster create`.
    pub fn start() -> Self {
        let dir = TempDir::new("redis-cluster");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes: Vec<Process> = ports
            .iter()
            .map(|&port| {
                let mut args = redis_args(port);
                let conf = dir.path.join(format!("nodes-{port}.conf"));
                args.extend([
                    "--cluster-enabled".to_string(),
                    "yes".to_string(),
                    "--cluster-config-file".to_string(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".to_string(),
                    "2000".to_string(),
                    "--dir".to_string(),
                    dir.path.display().to_string(),
                ]);
                Process::start("redis-server", &args, REDIS_HINT)
            })
            .collect();
        for &port in &ports {
            wait_for_port(port, Duration::from_secs(10), "redis-server (cluster node)");
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): {REDIS_HINT}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        // Wait until every node agrees the cluster is up.
        let deadline = Instant::now() + Duration::from_secs(20);
        for &port in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the Redis Cluster did not reach cluster_state:ok"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Self {
            ports,
            _nodes: nodes,
            _dir: dir,
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

/// A private Redis Sentinel watching one private master, named `mymaster`.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The master it watches.
    pub master: RedisServer,
    /// The sentinel's port.
    pub port: u16,
    _process: Process,
    _dir: TempDir,
}

impl RedisSentinel {
    /// Starts a master and one sentinel monitoring it (quorum 1).
    pub fn start() -> Self {
        let master = RedisServer::start();
        let dir = TempDir::new("redis-sentinel");
        let port = free_port();
        let conf = dir.path.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\nsentinel down-after-milliseconds mymaster 2000\n",
                dir.path.display(),
                master.port
            ),
        )
        .expect("write sentinel.conf");
        let process = Process::start(
            "redis-server",
            &[conf.display().to_string(), "--sentinel".to_string()],
            REDIS_HINT,
        );
        wait_for_port(port, Duration::from_secs(10), "redis sentinel");
        Self {
            master,
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// `redis+sentinel://127.0.0.1:PORT/mymaster`.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/mymaster", self.port)
    }
}

/// A private `memcached` on a free loopback port.
#[derive(Debug)]
pub struct MemcachedServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
}

impl MemcachedServer {
    /// Starts one.
    pub fn start() -> Self {
        let port = free_port();
        let mut args: Vec<String> = [
            "-p",
            &port.to_string(),
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-m",
            "64",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if running_as_root() {
            // memcached refuses to run as root unless told which user to be.
            args.extend(["-u".to_string(), "root".to_string()]);
        }
        let program = if std::path::Path::new("/usr/bin/memcached").exists() {
            "/usr/bin/memcached"
        } else {
            "memcached"
        };
        let process = Process::start(
            program,
            &args,
            "install memcached with `apt-get install -y memcached` (the test command in README does)",
        );
        wait_for_port(port, Duration::from_secs(10), "memcached");
        Self { port, process }
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A private PoloDB server (MongoDB wire protocol) on a free loopback port, with its data
/// in a temporary directory. (No MongoDB server can be installed where sessio is developed.)
#[derive(Debug)]
pub struct PoloDbServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _process: Process,
    _dir: TempDir,
}

impl PoloDbServer {
    /// Starts one: `polodb serve --host 127.0.0.1 --port P --path DIR`, with DIR in memory
    /// (`/dev/shm`) where there is one, since PoloDB syncs every write to disk.
    pub fn start() -> Self {
        let dir = TempDir::new_in(Path::new("/dev/shm"), "polodb");
        let port = free_port();
        let program = ["polodb", "/usr/local/bin/polodb"]
            .into_iter()
            .map(PathBuf::from)
            .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/polodb")))
            .find(|p| p.is_absolute() && p.exists())
            .unwrap_or_else(|| PathBuf::from("polodb"));
        let args = vec![
            "serve".to_string(),
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--path".to_string(),
            dir.path.join("db").display().to_string(),
        ];
        let process = Process::start(
            &program.display().to_string(),
            &args,
            "install PoloDB's server with `cargo install polodb` (needs libclang-dev; the test command in README does both)",
        );
        wait_for_port(port, Duration::from_secs(20), "polodb");
        Self {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// `mongodb://127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            self.port
        )
    }
}

const POSTGRES_HINT: &str = "install PostgreSQL with `apt-get install -y postgresql` (the \
     test command in README does); its programs are looked for in /usr/lib/postgresql/*/bin, \
     or in $PG_BIN";

/// The directory of PostgreSQL's server programs: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn postgres_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no PostgreSQL server programs found: {POSTGRES_HINT}"))
}

/// A command that runs `program` as the `postgres` user when this process is root
/// (PostgreSQL refuses to run as root), through `setpriv`, which execs (so killing the
/// child kills the server).
fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A private PostgreSQL: a cluster made by `initdb` in a temporary directory, its
/// `postgres` on a free loopback port with its socket in that directory, `fsync` off.
/// Never the system's service.
#[derive(Debug)]
pub struct PostgresServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
    process: Option<Child>,
}

impl PostgresServer {
    /// Makes a cluster and starts it.
    ///
    /// # Panics
    /// With what to install if PostgreSQL is missing, or if it does not come up.
    pub fn start() -> Self {
        let bin = postgres_bin();
        let dir = TempDir::new("postgres");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.path)
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "chown the PostgreSQL directory to postgres"
            );
        }
        let output = as_postgres_user(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb ({e}): {POSTGRES_HINT}"));
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = Self {
            port: free_port(),
            bin,
            dir,
            process: None,
        };
        server.restart();
        server
    }

    /// Starts the server again on the same port and data (after [`stop_immediate`](Self::stop_immediate)),
    /// and waits until it accepts connections.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.path.join("postgres.log"))
            .expect("create the PostgreSQL log");
        let child = as_postgres_user(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path.join("data"))
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&self.dir.path)
            .args(["-F", "-c", "max_connections=200"])
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres ({e}): {POSTGRES_HINT}"));
        self.process = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not come up on 127.0.0.1:{} within 30 s; its log: {}",
                self.port,
                std::fs::read_to_string(self.dir.path.join("postgres.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server the way a crash or `pg_ctl stop -m immediate` does: no shutdown
    /// checkpoint, every connection cut.
    pub fn stop_immediate(&mut self) {
        let status = as_postgres_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path.join("data"))
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl stop -m immediate failed");
        if let Some(mut child) = self.process.take() {
            let _ = child.wait();
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            // SIGQUIT is PostgreSQL's immediate shutdown: its backends exit with it, and
            // its shared memory is released (SIGKILL would leave both behind).
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

const MARIADB_HINT: &str = "install MariaDB with `apt-get install -y mariadb-server` (the \
     test command in README does)";

/// A private MariaDB: a data directory made by `mariadb-install-db` in a temporary
/// directory, `mariadbd` on a free loopback port with its socket there, no grant tables
/// (any user, no password), and a database `sessio`. Never the system's service.
#[derive(Debug)]
pub struct MariaDbServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _process: Process,
    _dir: TempDir,
}

impl MariaDbServer {
    /// Makes a data directory and starts the server.
    ///
    /// # Panics
    /// With what to install if MariaDB is missing, or if it does not come up.
    pub fn start() -> Self {
        let dir = TempDir::new("mariadb");
        let data = dir.path.join("data");
        let user = if is_root() {
            "root".to_string()
        } else {
            whoami()
        };
        // Its own temporary directory: a starting server deletes the `#sql*` files it finds
        // in its tmpdir, which would be another test's server's temporary tables.
        let tmp = dir.path.join("tmp");
        std::fs::create_dir_all(&tmp).expect("create MariaDB's tmpdir");
        let install = || {
            let _ = std::fs::remove_dir_all(&data);
            Command::new("mariadb-install-db")
                .env("TMPDIR", &tmp)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run mariadb-install-db ({e}): {MARIADB_HINT}"))
        };
        let output = install();
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--user={user}"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--socket={}", dir.path.join("mariadb.sock").display()),
            format!("--pid-file={}", dir.path.join("mariadb.pid").display()),
            format!("--tmpdir={}", tmp.display()),
            "--skip-grant-tables".to_string(),
            "--skip-name-resolve".to_string(),
            "--innodb-flush-log-at-trx-commit=2".to_string(),
            "--max-connections=300".to_string(),
        ];
        let process = Process::start_logged(
            "/usr/sbin/mariadbd",
            &args,
            MARIADB_HINT,
            &dir.path.join("mariadb.log"),
        );
        wait_for_port(port, Duration::from_secs(30), "mariadbd");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let created = Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "-h",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                    "-u",
                    "root",
                ])
                .args(["-e", "CREATE DATABASE IF NOT EXISTS sessio"])
                .output()
                .is_ok_and(|o| o.status.success());
            if created {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "MariaDB did not accept a connection within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// `mysql://root@127.0.0.1:PORT/sessio`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/sessio", self.port)
    }
}

fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "mysql".to_string())
}

/// `memcached://` URL over several servers.
pub fn memcached_url(servers: &[&MemcachedServer]) -> String {
    let addrs: Vec<String> = servers.iter().map(|s| s.addr()).collect();
    format!("memcached://{}", addrs.join(","))
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        Self::new_in(&std::env::temp_dir(), tag)
    }

    /// A fresh directory under `parent` if it is a directory, else under the system's
    /// temporary directory.
    pub fn new_in(parent: &Path, tag: &str) -> Self {
        let parent = if parent.is_dir() {
            parent.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let mut raw = [0u8; 6];
        getrandom::fill(&mut raw).expect("OS random number generator");
        let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let path = parent.join(format!("sessio-{tag}-{name}"));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One server shared by the tests of a binary that overlap in time: the first caller
/// starts it, later callers get the same one while any test still holds it, and it stops
/// when the last holder drops it (a later test starts a new one).
///
/// ```no_run
/// use std::sync::{Mutex, Weak};
/// use sessio_store_tests::servers::{shared, RedisServer};
///
/// static REDIS: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
/// let server = shared(&REDIS, RedisServer::start);
/// # let _ = server;
/// ```
pub fn shared<T>(
    slot: &'static std::sync::Mutex<std::sync::Weak<T>>,
    start: impl FnOnce() -> T,
) -> std::sync::Arc<T> {
    let mut weak = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = weak.upgrade() {
        return server;
    }
    let server = std::sync::Arc::new(start());
    *weak = std::sync::Arc::downgrade(&server);
    server
}
