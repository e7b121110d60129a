//! [`RedisServer`]: a private standalone `redis-server`.

use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};

pub(crate) const REDIS_HINT: &str =
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

pub(crate) fn redis_args(port: u16) -> Vec<String> {
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
