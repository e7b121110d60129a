//! [`RedisStoreBuilder`]: the store's options (timeouts, near cache), and the assembly of a
//! store once connected. (Connecting itself, by URL or client, is in `connection`.)

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Backend, ReplicaAcks};
use crate::scripts::Scripts;
use crate::store::{Inner, RedisStore};

/// Options for a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) near_cache: usize,
    pub(crate) near_cache_trust: Duration,
    pub(crate) replica_acks: Option<ReplicaAcks>,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            near_cache: 32 << 20,
            near_cache_trust: Duration::from_secs(1),
            replica_acks: None,
        }
    }
}

impl RedisStoreBuilder {
    /// The longest any store operation may take, reconnection included (default 500 ms).
    /// Past it the operation fails with a `Timeout` store error (a `503` at the edge).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many bytes of recently seen sessions this process keeps in its [near
    /// cache](crate#near-cache), keys and about 80 bytes of bookkeeping per entry included
    /// (default 32 MiB; `0` turns the cache off). Only a store on one Redis server built by
    /// this builder has the cache; Cluster and Sentinel stores, and stores over connections
    /// you pass in, always read from Redis.
    ///
    /// ```
    /// let builder = sessio_redis::RedisStore::builder().near_cache(64 << 20);
    /// ```
    pub fn near_cache(mut self, bytes: usize) -> Self {
        self.near_cache = bytes;
        self
    }

    /// How long after Redis last answered the near cache may still serve a read (default
    /// 1 s). A reply proves every invalidation Redis sent before it has been applied, so
    /// this bounds how stale a cached read can be if the connection goes silent without
    /// breaking (a network partition); under traffic every request refreshes it. It also
    /// bounds how long an entry is served after Redis last confirmed it (a read, or our
    /// write), so a change that sends no invalidation (`SWAPDB`, a lost push) is seen
    /// within it; a session read more often than that costs one read per window.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = sessio_redis::RedisStore::builder().near_cache_trust(Duration::from_millis(250));
    /// ```
    pub fn near_cache_trust(mut self, window: Duration) -> Self {
        self.near_cache_trust = window;
        self
    }

    /// Makes every write wait until `replicas` replicas have it (Redis `WAIT`), for at most
    /// `timeout`; a write that fewer replicas acknowledge in time fails with an
    /// `Unavailable` store error (a `503` at the edge), though the master has it. Off by
    /// default.
    ///
    /// Redis replicates asynchronously: a master answers a write before any replica has it,
    /// and if it fails in that moment, the replica promoted in its place (by Cluster or
    /// Sentinel) never had the write. A login, a logout or a save acknowledged with this on
    /// is on `replicas` replicas too, so it survives the failover of its master, provided
    /// the promoted replica is one of them (with one replica per master, it is).
    ///
    /// The cost: every write (a save, a creation, a touch, a logout) takes one more round
    /// trip and waits for replication, and while `WAIT` blocks, later commands on the same
    /// connection queue behind it. Reads are unchanged. `timeout` counts within
    /// [`command_timeout`](Self::command_timeout), so keep it below that. A master left
    /// without enough replicas (its replica just promoted, say, until a new one joins)
    /// refuses every write until it has them: durability is chosen over availability (a
    /// store with fewer replicas than required at connect time logs a warning).
    ///
    /// A write that fails this way has been applied on the master; only its survival is
    /// in doubt. Like a timeout, the request answers `503` with an outcome the client
    /// cannot know: a retried non-idempotent change may apply twice.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = sessio_redis::RedisStore::builder().replica_acks(1, Duration::from_millis(200));
    /// ```
    pub fn replica_acks(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_acks = (replicas > 0).then_some(ReplicaAcks { replicas, timeout });
        self
    }

    pub(crate) fn build(self, backend: Backend) -> RedisStore {
        let store = RedisStore {
            inner: Arc::new(Inner {
                backend,
                timeout: self.command_timeout,
                scripts: Scripts::new(),
                replica_acks: self.replica_acks,
                compare_commands: false,
            }),
        };
        if store.cache().is_some() {
            // Exported at 0 from the start, so that a scrape before any traffic lists them.
            for (name, help) in [
                (
                    "sessio_near_cache_hits_total",
                    "session reads served by the near cache",
                ),
                (
                    "sessio_near_cache_misses_total",
                    "session reads the near cache could not serve",
                ),
            ] {
                metrics::describe_counter!(name, help);
                metrics::counter!(name).increment(0);
            }
        }
        store
    }
}
