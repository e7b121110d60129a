//! [`RedisSentinel`]: a private Redis Sentinel watching a private master.

use std::time::Duration;

use crate::process::{free_port, wait_for_port, Process};
use crate::redis::{RedisServer, REDIS_HINT};
use crate::temp::TempDir;

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
