//! [`MemcachedServer`]: a private `memcached`, and [`memcached_url`] over several.

use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};

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

/// `memcached://` URL over several servers.
pub fn memcached_url(servers: &[&MemcachedServer]) -> String {
    let addrs: Vec<String> = servers.iter().map(|s| s.addr()).collect();
    format!("memcached://{}", addrs.join(","))
}
