//! [`PoloDbServer`]: a private PoloDB server, for the MongoDB store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};
use crate::temp::TempDir;

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
