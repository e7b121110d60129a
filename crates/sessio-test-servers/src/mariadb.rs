//! [`MariaDbServer`]: a private MariaDB data directory and server.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{free_port, is_root, wait_for_port, Process};
use crate::temp::TempDir;

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
