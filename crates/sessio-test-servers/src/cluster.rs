//! [`RedisCluster`]: a private Redis Cluster of three masters.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{free_port, wait_for_port, Process};
use crate::redis::{redis_args, REDIS_HINT};
use crate::temp::TempDir;

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
