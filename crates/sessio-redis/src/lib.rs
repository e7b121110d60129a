//! # sessio-redis
//!
//! A [Redis](https://redis.io) store for [`sessio`]: several app processes, on several
//! machines, share sessions through one Redis (standalone, Cluster or Sentinel), with the
//! engine's guarantees intact — conditional saves, a lock shared by every process, fencing.
//!
//! ```no_run
//! use sessio_redis::RedisStore;
//!
//! # async fn run() -> Result<(), sessio_redis::RedisStoreError> {
//! // Standalone; `redis+cluster://h1:p1,h2:p2` for a Cluster,
//! // `redis+sentinel://h1:p1,h2:p2/mymaster` through Sentinel.
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let layer = sessio_axum::SessionLayer::new(store);
//! # Ok(()) }
//! ```
//!
//! ## How each operation maps to Redis
//!
//! Every store operation is **one round trip**; the multi-step ones are Lua scripts, sent
//! by `EVALSHA` (loaded once, re-sent with `EVAL` if the server lost them):
//!
//! | operation | Redis |
//! |---|---|
//! | load | script: `GET` + `PTTL` — or nothing, from the [near cache](#near-cache) |
//! | create-if-absent | `SET key value NX PX ttl` |
//! | conditional save | script: compare the stored bytes with the loaded ones, then `SET … PX` (and re-read, to stay tracked) |
//! | touch | `PEXPIRE` (never revives an expired key) |
//! | delete | `DEL` |
//! | lock | script: take `{key}:lock` (`SET … PX lease`) unless another token holds it, and return `GET` + `PTTL` of the record |
//! | fenced save / delete | script: write only while our token holds `{key}:lock`; release in the same call |
//! | release | script: compare-and-delete `{key}:lock` |
//!
//! The record's value is the engine's bytes, unchanged, so in `sanic_session`
//! compatibility mode it is exactly the session's JSON object under `session:<id>`, and a
//! Python app reading the same Redis sees its own format. The lock lives beside it, under
//! `{<record key>}:lock`: the hash tag puts it in the record's Cluster slot, so the scripts
//! touch a single slot. (Key prefixes must therefore not contain `{`.)
//!
//! Conditional saves compare the stored bytes with the ones that were loaded, so they also
//! catch writes made by another implementation (a Python app in compatibility mode).
//!
//! ## Near cache
//!
//! A store connected to one Redis server keeps the sessions it read recently in this
//! process (up to 32 MiB by default, [`RedisStoreBuilder::near_cache`]) and serves them again
//! without a round trip, so a request that only reads its session costs no Redis command and
//! one that changes it costs one (the conditional save). The cache stays coherent through
//! Redis's server-assisted client-side caching: the store's connection speaks RESP3 with
//! `CLIENT TRACKING ON OPTOUT NOLOOP`, Redis remembers the keys this process read (but for
//! reads sent right after `CLIENT CACHING NO`, in the same write), and pushes an
//! `invalidate` message on that connection as soon as another client (another app process,
//! a Python app in compatibility mode, `redis-cli`) changes or deletes one of them.
//!
//! What that guarantees, and what it does not:
//!
//! - **No lost updates.** A save is still conditional on the bytes it was based on, so a
//!   save from a stale cached copy conflicts, and the engine reloads from Redis (a conflict
//!   or an unknown outcome drops the key from the cache) and merges as usual.
//! - **Read-your-writes across processes.** An invalidation can arrive after the client's
//!   next request (on a busy machine, one read in eight trailed the write before this was
//!   handled). So the store tells the engine it serves from a cache
//!   ([`Store::serves_from_cache`]), the engine keeps a write count in each record and in
//!   the cookie (`<id>.<count>`), and a request whose cookie shows a newer write than the
//!   cached copy reads Redis ([`Store::load_fresh`]). Another client's writes may still be
//!   seen up to the push's flight time late, as with any cache or replica. Locked sessions
//!   ([`Session::lock`](sessio::Session::lock)) always read from Redis. In the
//!   `sanic_session` compatibility mode the cookie must be the bare id, so this does not
//!   apply; turn the cache off there if it matters (`near_cache(0)`).
//! - **No stale reads when Redis is unreachable.** A dropped connection empties the cache
//!   at once; if the connection goes silent without breaking, the cache stops answering
//!   once Redis has not replied for [`RedisStoreBuilder::near_cache_trust`] (1 s by
//!   default), and reads fail like every other request.
//! - Our own writes keep the cache current: each write script ends with a read of the key,
//!   so Redis goes on tracking it after the write (a write ends tracking).
//! - **Forged ids cost Redis nothing that stays.** A session not in the cache is first read
//!   untracked (`CLIENT CACHING NO`); only one that exists is read again, tracked (one more
//!   round trip on a cache miss), and locks read untracked, so a flood of made-up ids grows
//!   no tracking table. Redis tracks only the keys
//!   this process caches, so other writes to the database cost it nothing.
//!
//! The same connection pipelines automatically: the commands that concurrent requests
//! issue in one turn of the Tokio scheduler are written to Redis together, as one pipeline,
//! and each request gets its own reply. Under load that saves a `write` here and a `read` in
//! Redis per request; at rest a command waits one scheduler turn.
//!
//! Cluster and Sentinel stores, stores over connections passed in
//! ([`from_connection_manager`](RedisStore::from_connection_manager),
//! [`from_cluster`](RedisStore::from_cluster)), and servers that refuse RESP3 or
//! `CLIENT TRACKING` (Redis before 6.0) read from Redis on every load, one command per
//! write.
//!
//! ## Failures
//!
//! Every command is bounded by a timeout (default 500 ms,
//! [`RedisStoreBuilder::command_timeout`]); a Redis that is down or slow yields a
//! [`StoreError`] of kind `Unavailable` or `Timeout`, which the axum layer answers with
//! `503`. Connections re-establish by themselves when Redis returns.
#![warn(missing_docs)]

mod batch;
mod near;

use batch::Batcher;
use near::NearCache;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, ProtocolVersion, PushInfo, PushKind, RedisError,
    RedisFuture, Script, Value,
};
use sessio::store::support::{ttl_millis, within};
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreErrorKind, StoreResult, Version,
};

/// Why a [`RedisStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The URL is not one of the accepted forms.
    #[error("invalid Redis URL {url:?}: {reason}. Use redis://HOST:PORT[/DB], rediss://…, redis+cluster://H1:P1,H2:P2 or redis+sentinel://H1:P1,H2:P2/MASTER")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting failed.
    #[error("cannot connect to Redis at {target}: {source}; check that Redis runs there and is reachable")]
    Connect {
        /// Where we tried to connect.
        target: String,
        /// The driver's error.
        #[source]
        source: RedisError,
    },
}

/// Sessions in Redis. Cheap to clone; clones share connections.
///
/// Build it from a URL with [`connect`](Self::connect), with options through
/// [`builder`](Self::builder), or from connections you already have
/// ([`from_connection_manager`](Self::from_connection_manager),
/// [`from_cluster`](Self::from_cluster), [`from_client`](Self::from_client)).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

struct Inner {
    backend: Backend,
    timeout: Duration,
    scripts: Scripts,
}

enum Backend {
    Single(ConnectionManager),
    Tracked(Box<Tracked>),
    Cluster(ClusterConnection),
    Sentinel(Box<SentinelBackend>),
}

/// One server over a RESP3 connection with `CLIENT TRACKING ON NOLOOP`, feeding the near
/// cache; re-established after a failure (and the cache emptied).
struct Tracked {
    client: redis::Client,

    connect_timeout: Duration,
    current: std::sync::RwLock<Option<Live>>,
    connecting: tokio::sync::Mutex<()>,
    cache: Arc<NearCache>,
}

#[derive(Clone)]
struct Live {
    conn: Batcher,
    /// Set by the connection's driver when the connection is gone.
    dropped: Arc<AtomicBool>,
}

impl Tracked {
    fn live(&self) -> Option<Batcher> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|live| !live.dropped.load(Ordering::Acquire))
            .map(|live| live.conn.clone())
    }

    async fn conn(&self) -> redis::RedisResult<Batcher> {
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let live = self.open().await?;
        let conn = live.conn.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(live);
        Ok(conn)
    }

    async fn open(&self) -> redis::RedisResult<Live> {
        let dropped = Arc::new(AtomicBool::new(false));
        let (cache, flag) = (self.cache.clone(), dropped.clone());
        // Runs inside the connection's driver, in stream order: an invalidation is applied
        // before any reply that Redis sent after it reaches its caller.
        let on_push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            match push.kind {
                PushKind::Invalidate => invalidate(&cache, push.data),
                PushKind::Disconnection => {
                    flag.store(true, Ordering::Release);
                    cache.flush();
                }
                _ => {}
            }
            Ok(())
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            // `RedisStore::run` bounds every operation; a second timer per command is waste.
            .set_response_timeout(None)
            .set_push_sender(on_push);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // OPTOUT: Redis tracks what we read except right after `CLIENT CACHING NO`, which
        // the store sends before a read of a key not known to exist, so a flood of forged
        // ids grows no tracking table, and the common path (a cached read, a save that
        // re-reads its key) sends nothing extra. (OPTIN would need `CLIENT CACHING YES`
        // before every save; BCAST would need no table at all, but Redis 7.0 does not apply
        // NOLOOP to writes made inside a script, so every save of ours would invalidate
        // itself.)
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("OPTOUT")
            .arg("NOLOOP")
            .exec_async(&mut conn)
            .await?;
        // Nothing read over an earlier connection may outlive it.
        self.cache.flush();
        Ok(Live {
            conn: Batcher::new(conn),
            dropped,
        })
    }

    /// The connection `failed` broke: drop it and everything it was tracking. If another
    /// request has already replaced it, the newer connection and what it tracks stay (its
    /// `open` emptied the cache when it replaced the broken one).
    fn broken(&self, failed: &Batcher) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|live| live.conn.same(failed)) {
            if let Some(live) = current.take() {
                live.dropped.store(true, Ordering::Release);
            }
            self.cache.flush();
        }
    }
}

/// Applies an `invalidate` push: a list of keys, or null for "everything".
fn invalidate(cache: &NearCache, data: Vec<Value>) {
    for value in data {
        match value {
            Value::Array(keys) | Value::Set(keys) => {
                for key in keys {
                    match key {
                        Value::BulkString(key) => cache.forget(&key),
                        Value::SimpleString(key) => cache.forget(key.as_bytes()),
                        _ => cache.flush(),
                    }
                }
            }
            _ => cache.flush(),
        }
    }
}

/// A master found through Sentinel; re-resolved after a connection failure (failover).
struct SentinelBackend {
    client: tokio::sync::Mutex<SentinelClient>,
    current: tokio::sync::RwLock<Option<MultiplexedConnection>>,
    describe: String,
}

/// One connection handle of whichever kind, for one command.
enum Conn {
    Single(ConnectionManager),
    Batched(Batcher),
    Cluster(ClusterConnection),
    Multiplexed(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Batched(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Multiplexed(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Batched(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Batched(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Multiplexed(c) => c.get_db(),
        }
    }
}

struct Scripts {
    load: Script,
    save: Script,
    delete_if: Script,
    acquire: Script,
    save_locked: Script,
    delete_locked: Script,
    release: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            load: Script::new("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"),
            // 1 = missing, 2 = conflict, 3 = stored (the codes of `fenced`). The closing
            // read makes Redis track the key for this connection again (a write ends
            // tracking): see `near`.
            save: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[1] then return 2 end
                redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                redis.call('PTTL', KEYS[1])
                return 3",
            ),
            // 1 = missing, 2 = conflict, 3 = deleted.
            delete_if: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[1] then return 2 end
                redis.call('DEL', KEYS[1])
                return 3",
            ),
            // {0} = held by another; {1, value, pttl} = granted
            acquire: Script::new(
                r"local holder = redis.call('GET', KEYS[2])
                if holder and holder ~= ARGV[1] then return {0} end
                redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
                return {1, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}",
            ),
            // 0 = lease lost, 1 = missing, 2 = conflict, 3 = done. ARGV[2] is the expected
            // bytes, or empty with ARGV[5] = '1' for "only if absent".
            save_locked: Script::new(
                r"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
                local cur = redis.call('GET', KEYS[1])
                if ARGV[5] == '1' then
                    if cur then return 2 end
                else
                    if not cur then return 1 end
                    if cur ~= ARGV[2] then return 2 end
                end
                redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
                if ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
                redis.call('PTTL', KEYS[1])
                return 3",
            ),
            delete_locked: Script::new(
                r"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
                local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[2] then return 2 end
                redis.call('DEL', KEYS[1])
                if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
                return 3",
            ),
            release: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                    return redis.call('DEL', KEYS[1])
                end
                return 0",
            ),
        }
    }
}

/// Options for a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    command_timeout: Duration,
    connect_timeout: Duration,
    near_cache: usize,
    near_cache_trust: Duration,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            near_cache: 32 << 20,
            near_cache_trust: Duration::from_secs(1),
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

    /// Connects to the Redis (or Cluster, or Sentinel-managed master) at `url`.
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidUrl`] or [`RedisStoreError::Connect`].
    pub async fn connect(self, url: &str) -> Result<RedisStore, RedisStoreError> {
        let invalid = |reason: &str| RedisStoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let connect_error = |source| RedisStoreError::Connect {
            target: url.to_string(),
            source,
        };
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = rest
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            if nodes.is_empty() {
                return Err(invalid("no cluster node given"));
            }
            let client = redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.command_timeout)
                .build()
                .map_err(|e| invalid(&e.to_string()))?;
            let conn = client.get_async_connection().await.map_err(connect_error)?;
            return Ok(self.build(Backend::Cluster(conn)));
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (hosts, master) = rest
                .split_once('/')
                .ok_or_else(|| invalid("the master's name is missing after the hosts"))?;
            if master.is_empty() {
                return Err(invalid("the master's name is empty"));
            }
            let sentinels: Vec<String> = hosts
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            let mut client = SentinelClient::build(
                sentinels,
                master.to_string(),
                None,
                SentinelServerType::Master,
            )
            .map_err(|e| invalid(&e.to_string()))?;
            let first = tokio::time::timeout(self.connect_timeout, client.get_async_connection())
                .await
                .map_err(|_| {
                    connect_error(RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer from Sentinel",
                    )))
                })?
                .map_err(connect_error)?;
            return Ok(self.build(Backend::Sentinel(Box::new(SentinelBackend {
                client: tokio::sync::Mutex::new(client),
                current: tokio::sync::RwLock::new(Some(first)),
                describe: url.to_string(),
            }))));
        }
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://")
            || url.starts_with("unix://"))
        {
            return Err(invalid("unknown scheme"));
        }
        let client = redis::Client::open(url).map_err(|e| invalid(&e.to_string()))?;
        self.from_client(client).await.map_err(|e| match e {
            RedisStoreError::Connect { source, .. } => connect_error(source),
            other => other,
        })
    }

    /// Builds on an existing client (one Redis server). With the near cache on (the
    /// default) the store opens its own RESP3 connection with client tracking from the
    /// client's settings; if the server cannot track keys (Redis before 6, some proxies),
    /// or with the cache off, it uses a reconnecting `ConnectionManager`.
    ///
    /// # Errors
    /// [`RedisStoreError::Connect`] if the first connection fails.
    pub async fn from_client(self, client: redis::Client) -> Result<RedisStore, RedisStoreError> {
        let target = format!("{:?}", client.get_connection_info().addr());
        // Why the near cache could not be had; said only once the plain connection works,
        // so that a cause both share (a bad database index, a wrong password) is reported
        // as itself, not as a missing RESP3.
        let mut no_tracking = None;
        if self.near_cache > 0 {
            let info = client.get_connection_info().clone();
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let tracked_client =
                redis::Client::open(info.set_redis_settings(resp3)).map_err(|source| {
                    RedisStoreError::Connect {
                        target: target.clone(),
                        source,
                    }
                })?;
            let tracked = Tracked {
                client: tracked_client,

                connect_timeout: self.connect_timeout,
                current: std::sync::RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                cache: Arc::new(NearCache::new(self.near_cache, self.near_cache_trust)),
            };
            match tracked.conn().await {
                Ok(_) => return Ok(self.build(Backend::Tracked(Box::new(tracked)))),
                Err(e) if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() => {
                    return Err(RedisStoreError::Connect { target, source: e });
                }
                Err(e) => no_tracking = Some(e),
            }
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| RedisStoreError::Connect { target, source })?;
        if let Some(error) = no_tracking {
            tracing::warn!(
                %error,
                "Redis refused RESP3 or CLIENT TRACKING; sessions are read from Redis on every request (no near cache)"
            );
        }
        Ok(self.build(Backend::Single(manager)))
    }

    fn build(self, backend: Backend) -> RedisStore {
        let store = RedisStore {
            inner: Arc::new(Inner {
                backend,
                timeout: self.command_timeout,
                scripts: Scripts::new(),
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

impl RedisStore {
    /// Connects with the default options; see [`RedisStoreBuilder::connect`] for the URL
    /// forms.
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidUrl`] or [`RedisStoreError::Connect`].
    pub async fn connect(url: &str) -> Result<Self, RedisStoreError> {
        RedisStoreBuilder::default().connect(url).await
    }

    /// Options: timeouts.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// A store over an existing client (as sanic_session lets an app pass its own pool).
    ///
    /// # Errors
    /// [`RedisStoreError::Connect`] if the first connection fails.
    pub async fn from_client(client: redis::Client) -> Result<Self, RedisStoreError> {
        RedisStoreBuilder::default().from_client(client).await
    }

    /// A store over a connection manager you already have (it reconnects by itself).
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        RedisStoreBuilder::default().build(Backend::Single(manager))
    }

    /// A store over a Redis Cluster connection you already have.
    pub fn from_cluster(connection: ClusterConnection) -> Self {
        RedisStoreBuilder::default().build(Backend::Cluster(connection))
    }

    async fn conn(&self) -> StoreResult<Conn> {
        match &self.inner.backend {
            Backend::Single(c) => Ok(Conn::Single(c.clone())),
            Backend::Tracked(t) => t
                .conn()
                .await
                .map(Conn::Batched)
                .map_err(|e| store_error(e, "connect")),
            Backend::Cluster(c) => Ok(Conn::Cluster(c.clone())),
            Backend::Sentinel(s) => {
                if let Some(c) = s.current.read().await.as_ref() {
                    return Ok(Conn::Multiplexed(c.clone()));
                }
                let conn = s
                    .client
                    .lock()
                    .await
                    .get_async_connection()
                    .await
                    .map_err(|e| store_error(e, &s.describe))?;
                *s.current.write().await = Some(conn.clone());
                Ok(Conn::Multiplexed(conn))
            }
        }
    }

    fn forget(&self, key: &str) {
        if let Some(cache) = self.cache() {
            cache.forget(key.as_bytes());
        }
    }

    fn cache(&self) -> Option<&NearCache> {
        match &self.inner.backend {
            Backend::Tracked(t) => Some(&t.cache),
            _ => None,
        }
    }

    /// Entries in the near cache now; `None` when the store has no near cache.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sessio_redis::RedisStoreError> {
    /// let store = sessio_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.near_cache_len(), Some(0));
    /// # Ok(()) }
    /// ```
    pub fn near_cache_len(&self) -> Option<usize> {
        self.cache().map(NearCache::len)
    }

    /// Runs one operation with the command timeout; maps errors.
    async fn run<T, F>(&self, op: &'static str, f: F) -> StoreResult<T>
    where
        F: AsyncFnOnce(&mut Conn) -> redis::RedisResult<T>,
    {
        self.run_with(op, Tracking::On, f).await
    }

    /// [`run`](Self::run), asking Redis to track the keys the operation reads when
    /// `tracking` is on and the store has a near cache.
    async fn run_with<T, F>(&self, op: &'static str, tracking: Tracking, f: F) -> StoreResult<T>
    where
        F: AsyncFnOnce(&mut Conn) -> redis::RedisResult<T>,
    {
        let work = async {
            let mut conn = match (self.conn().await?, tracking) {
                (Conn::Batched(b), Tracking::Off) => Conn::Batched(b.untracked()),
                (conn, _) => conn,
            };
            let result = f(&mut conn).await;
            match (&self.inner.backend, &result) {
                (Backend::Tracked(t), Ok(_)) => t.cache.heard(),
                (Backend::Tracked(t), Err(e)) if connection_lost(e) => {
                    if let Conn::Batched(failed) = &conn {
                        t.broken(failed);
                    }
                }
                (Backend::Sentinel(s), Err(e)) if connection_lost(e) => {
                    // A failover may have moved the master: ask Sentinel again next time.
                    if let Ok(mut current) = s.current.try_write() {
                        *current = None;
                    }
                }
                _ => {}
            }
            result.map_err(|e| store_error(e, op))
        };
        within(op, "Redis", self.inner.timeout, work).await
    }
}

/// Whether Redis should track the keys an operation reads (for the near cache).
#[derive(Clone, Copy)]
enum Tracking {
    Off,
    On,
}

fn connection_lost(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn store_error(e: RedisError, op: &str) -> StoreError {
    let kind = if e.is_timeout() {
        StoreErrorKind::Timeout
    } else if connection_lost(&e) {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Protocol
    };
    StoreError::new(
        kind,
        format!("Redis {op} failed; check that Redis is up and reachable"),
    )
    .with_source(e)
}

fn lock_key(key: &str) -> String {
    format!("{{{key}}}:lock")
}

fn flag(then: AfterWrite) -> &'static str {
    match then {
        AfterWrite::Release => "1",
        AfterWrite::KeepLease => "0",
    }
}

/// The answer of a write script: 0 = lease lost, 1 = missing, 2 = conflict, 3 = done.
fn fenced<T>(code: i64, done: T) -> Outcome<T> {
    match code {
        3 => Outcome::Done(done),
        2 => Outcome::Conflict,
        1 => Outcome::Missing,
        _ => Outcome::LeaseLost,
    }
}

/// Saves compare the stored bytes, not a version, so every record carries the same one;
/// hashing the bytes on every load and save would be work nothing reads.
const VERSION: Version = Version(0);

fn loaded(value: Option<Vec<u8>>, pttl: i64) -> Option<Loaded> {
    value.map(|data| Loaded {
        version: VERSION,
        expires_at: (pttl > 0).then(|| SystemTime::now() + Duration::from_millis(pttl as u64)),
        data,
    })
}

impl RedisStore {
    async fn read_once(&self, key: &str, tracking: Tracking) -> StoreResult<Option<Loaded>> {
        let (value, pttl): (Option<Vec<u8>>, i64) = self
            .run_with("load", tracking, async |c| {
                self.inner.scripts.load.key(key).invoke_async(c).await
            })
            .await?;
        Ok(loaded(value, pttl))
    }

    /// Reads `key` from Redis (never the cache), filling the cache when it is safe.
    ///
    /// The first read is untracked: a key that does not exist (a forged id, say) costs
    /// Redis nothing that stays. Only a session that exists is read again, tracked, to go
    /// into the cache.
    async fn read(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let record = self.read_once(key, Tracking::Off).await?;
        let Some(cache) = self.cache() else {
            return Ok(record);
        };
        if record.is_none() {
            // Absent in Redis: whatever we held is stale (even if no invalidation came,
            // e.g. after SWAPDB or FLUSHDB on a server that does not send one).
            cache.forget(key.as_bytes());
            return Ok(None);
        }
        let ticket = cache.ticket(key);
        let record = self.read_once(key, Tracking::On).await?;
        match &record {
            Some(record) => cache.fill(key, ticket, record),
            None => cache.forget(key.as_bytes()),
        }
        Ok(record)
    }

    /// Runs a write script; the cache takes the bytes written if it is done, and forgets
    /// the key otherwise (stale, gone, or unknown).
    async fn write(
        &self,
        op: &'static str,
        key: &str,
        written: Option<(&[u8], Duration)>,
        tracking: Tracking,
        invoke: redis::ScriptInvocation<'_>,
    ) -> StoreResult<i64> {
        let ticket = self.cache().map(|c| c.ticket(key));
        // A plain save ends with a read of the key, which Redis tracks (`tracking` on): the
        // key stays in the near cache (a write ends Redis's tracking of a key). Writes under
        // a lease also read the lock key, which Redis would go on tracking after its
        // deletion, one entry per lock ever taken (forged ids included): they run untracked,
        // and the cache forgets what they wrote.
        let outcome: StoreResult<i64> = self
            .run_with(op, tracking, async |c| invoke.invoke_async(c).await)
            .await;
        if let Some(cache) = self.cache() {
            match (&outcome, ticket, written, tracking) {
                (Ok(3), Some(ticket), Some((data, ttl)), Tracking::On) => {
                    cache.wrote(key, ticket, data, Some(SystemTime::now() + ttl));
                }
                _ => cache.forget(key.as_bytes()),
            }
        }
        outcome
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        if let Some(cache) = self.cache() {
            // The near cache's hit rate, for the application's metrics recorder if any
            // (`sessio_near_cache_hits_total`, `sessio_near_cache_misses_total`).
            if let Some(record) = cache.get(key, SystemTime::now()) {
                metrics::counter!("sessio_near_cache_hits_total").increment(1);
                return Ok(Some(record));
            }
            metrics::counter!("sessio_near_cache_misses_total").increment(1);
        }
        self.read(key).await
    }

    fn serves_from_cache(&self) -> bool {
        self.cache().is_some()
    }

    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.read(key).await
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let set: Option<String> = self
            .run("create", async |c| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(data)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_millis(ttl))
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(match set {
            Some(_) => Outcome::Done(VERSION),
            None => Outcome::Conflict,
        })
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let mut invoke = self.inner.scripts.save.key(key);
        invoke
            .arg(&expected.data[..])
            .arg(data)
            .arg(ttl_millis(ttl));
        let code = self
            .write("save", key, Some((data, ttl)), Tracking::On, invoke)
            .await?;
        Ok(fenced(code, VERSION))
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        let mut invoke = self.inner.scripts.delete_if.key(key);
        invoke.arg(&expected.data[..]);
        let code = self
            .write("delete", key, None, Tracking::On, invoke)
            .await?;
        Ok(fenced(code, ()))
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let touched = self
            .run("touch", async |c| {
                redis::cmd("PEXPIRE")
                    .arg(key)
                    .arg(ttl_millis(ttl))
                    .query_async(c)
                    .await
            })
            .await;
        // The cached expiry is out of date.
        self.forget(key);
        touched
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.forget(key);
        let deleted = self
            .run("delete", async |c| {
                redis::cmd("DEL").arg(key).query_async::<()>(c).await
            })
            .await;
        self.forget(key);
        deleted
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

#[async_trait]
impl LockingStore for RedisStore {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        let lock = lock_key(key);
        let reply: Vec<Value> = self
            .run_with("lock", Tracking::Off, async |c| {
                self.inner
                    .scripts
                    .acquire
                    .key(key)
                    .key(&lock)
                    .arg(token.to_hex())
                    .arg(ttl_millis(lease))
                    .invoke_async(c)
                    .await
            })
            .await?;
        let protocol = || StoreError::protocol("unexpected reply from the Redis lock script");
        let mut reply = reply.into_iter();
        let granted: i64 =
            redis::from_redis_value(reply.next().ok_or_else(protocol)?).map_err(|_| protocol())?;
        if granted == 0 {
            return Ok(Acquired::Held);
        }
        let value: Option<Vec<u8>> =
            redis::from_redis_value(reply.next().unwrap_or(Value::Nil)).map_err(|_| protocol())?;
        let pttl: i64 = redis::from_redis_value(reply.next().unwrap_or(Value::Int(-2)))
            .map_err(|_| protocol())?;
        Ok(Acquired::Granted(loaded(value, pttl)))
    }

    async fn save_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: Option<&Loaded>,
        data: &[u8],
        ttl: Duration,
        then: AfterWrite,
    ) -> StoreResult<Outcome<Version>> {
        let lock = lock_key(key);
        let mut invoke = self.inner.scripts.save_locked.key(key);
        invoke
            .key(&lock)
            .arg(token.to_hex())
            .arg(expected.map_or(&[][..], |e| &e.data[..]))
            .arg(data)
            .arg(ttl_millis(ttl))
            .arg(if expected.is_none() { "1" } else { "0" })
            .arg(flag(then));
        let code = self
            .write(
                "save under lock",
                key,
                Some((data, ttl)),
                Tracking::Off,
                invoke,
            )
            .await?;
        Ok(fenced(code, VERSION))
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let lock = lock_key(key);
        let mut invoke = self.inner.scripts.delete_locked.key(key);
        invoke
            .key(&lock)
            .arg(token.to_hex())
            .arg(&expected.data[..])
            .arg(flag(then));
        let code = self
            .write("delete under lock", key, None, Tracking::Off, invoke)
            .await?;
        Ok(fenced(code, ()))
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let lock = lock_key(key);
        let released: i64 = self
            .run_with("unlock", Tracking::Off, async |c| {
                self.inner
                    .scripts
                    .release
                    .key(&lock)
                    .arg(token.to_hex())
                    .invoke_async(c)
                    .await
            })
            .await?;
        Ok(released == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessio_store_tests::servers::RedisServer;

    fn tracked(store: &RedisStore) -> &Tracked {
        match &store.inner.backend {
            Backend::Tracked(t) => t,
            _ => panic!("a store from a redis:// URL with the near cache on is tracked"),
        }
    }

    fn cache_one(t: &Tracked, key: &str) {
        let ticket = t.cache.ticket(key);
        let record = Loaded {
            data: b"{}".to_vec(),
            version: VERSION,
            expires_at: None,
        };
        t.cache.fill(key, ticket, &record);
    }

    // A request whose command failed on a connection that another request has already
    // replaced must not drop the new connection or what it tracks.
    #[tokio::test]
    async fn a_late_failure_of_a_replaced_connection_leaves_the_new_one() {
        let server = RedisServer::start();
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let t = tracked(&store);
        let old = t.conn().await.unwrap();
        // The old connection is gone (as its driver reports); the next request reconnects.
        if let Some(live) = t.current.read().unwrap().as_ref() {
            live.dropped.store(true, Ordering::Release);
        }
        let new = t.conn().await.unwrap();
        assert!(!new.same(&old), "a dropped connection was handed out again");
        cache_one(t, "session:k");
        assert_eq!(t.cache.len(), 1);

        t.broken(&old);
        assert!(
            t.conn().await.unwrap().same(&new),
            "the new connection was dropped"
        );
        assert_eq!(
            t.cache.len(),
            1,
            "what the new connection tracks was flushed"
        );

        // A failure of the current connection drops it and its entries.
        t.broken(&new);
        assert_eq!(t.cache.len(), 0);
        assert!(!t.conn().await.unwrap().same(&new));
    }
}
