//! [`PostgresServer`]: a private PostgreSQL cluster made by `initdb`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, is_root};
use crate::temp::TempDir;

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
