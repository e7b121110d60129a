//! Connecting to Redis: the URL forms, one server (tracked for the near cache, or through a
//! reconnecting manager), Cluster and Sentinel, and running one command on whichever
//! connection the store has, with its timeout and error mapping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, ProtocolVersion, PushInfo, PushKind, RedisError,
    RedisFuture, Value,
};
use sessio::store::support::within;
use sessio::store::{StoreError, StoreErrorKind, StoreResult};

use crate::batch::Batcher;
use crate::near::NearCache;
use crate::{RedisStore, RedisStoreBuilder};

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

pub(crate) enum Backend {
    Single(ConnectionManager),
    Tracked(Box<Tracked>),
    Cluster(ClusterConnection),
    Sentinel(Box<SentinelBackend>),
}

/// One server over a RESP3 connection with `CLIENT TRACKING ON NOLOOP`, feeding the near
/// cache; re-established after a failure (and the cache emptied).
pub(crate) struct Tracked {
    client: redis::Client,

    connect_timeout: Duration,
    current: std::sync::RwLock<Option<Live>>,
    connecting: tokio::sync::Mutex<()>,
    pub(crate) cache: Arc<NearCache>,
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
pub(crate) struct SentinelBackend {
    client: tokio::sync::Mutex<SentinelClient>,
    current: tokio::sync::RwLock<Option<MultiplexedConnection>>,
    describe: String,
}

/// One connection handle of whichever kind, for one command.
pub(crate) enum Conn {
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

impl Conn {
    /// `WAIT replicas timeout` on the connection that made the last write to `key` (on a
    /// Cluster, the master of `key`'s slot): how many replicas have every write this
    /// connection made so far.
    async fn replicas_with_writes(
        &mut self,
        key: &str,
        acks: ReplicaAcks,
    ) -> redis::RedisResult<i64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(acks.replicas).arg(
            u64::try_from(acks.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        match self {
            Conn::Cluster(c) => {
                // WAIT names no key, so the driver would ask every master; it must go to
                // the master that took the write: the master of `key`'s slot.
                let master = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(master));
                Ok(redis::from_redis_value(
                    c.route_command(wait, routing).await?,
                )?)
            }
            other => wait.query_async(other).await,
        }
    }
}

/// [`RedisStoreBuilder::replica_acks`]: how many replicas must have a write, and how long
/// to wait for them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaAcks {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

impl RedisStoreBuilder {
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
                // The cluster client would send a command again after its connection
                // broke, even one the server had already run: a conditional save whose
                // reply was lost would then meet its own write, look like a conflict, and
                // be merged a second time. A lost reply is an error here (the engine
                // reports it, as on one server); the next command finds the new topology.
                .retries(0)
                .build()
                .map_err(|e| invalid(&e.to_string()))?;
            let conn = client.get_async_connection().await.map_err(connect_error)?;
            return Ok(self
                .build(Backend::Cluster(conn))
                .with_server_commands()
                .await);
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
            let store = self.build(Backend::Sentinel(Box::new(SentinelBackend {
                client: tokio::sync::Mutex::new(client),
                current: tokio::sync::RwLock::new(Some(first)),
                describe: url.to_string(),
            })));
            return Ok(store.with_server_commands().await);
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
                Ok(_) => {
                    let store = self.build(Backend::Tracked(Box::new(tracked)));
                    return Ok(store.with_server_commands().await);
                }
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
        Ok(self
            .build(Backend::Single(manager))
            .with_server_commands()
            .await)
    }
}

impl RedisStore {
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

    /// [`run_with`](Self::run_with) for an operation that writes `key`: with
    /// [replica acknowledgements](RedisStoreBuilder::replica_acks) on, it is done only once
    /// enough replicas have the write, and a store error otherwise.
    pub(crate) async fn run_write<T, F>(
        &self,
        op: &'static str,
        key: &str,
        tracking: Tracking,
        f: F,
    ) -> StoreResult<T>
    where
        F: AsyncFnOnce(&mut Conn) -> redis::RedisResult<T>,
    {
        let Some(acks) = self.inner.replica_acks else {
            return self.run_with(op, tracking, f).await;
        };
        let (value, acked) = self
            .run_with(op, tracking, async |c| {
                let value = f(c).await?;
                Ok((value, c.replicas_with_writes(key, acks).await?))
            })
            .await?;
        if acked < i64::from(acks.replicas) {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "Redis {op}: {acked} of the {} replicas required acknowledged the write within {:?}, so it may not survive a failover; check the replicas (INFO replication), or lower replica_acks",
                    acks.replicas, acks.timeout
                ),
            ));
        }
        Ok(value)
    }

    /// Runs one operation with the command timeout, mapping errors; asks Redis to track
    /// the keys the operation reads when `tracking` is on and the store has a near cache.
    pub(crate) async fn run_with<T, F>(
        &self,
        op: &'static str,
        tracking: Tracking,
        f: F,
    ) -> StoreResult<T>
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
pub(crate) enum Tracking {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VERSION;
    use sessio::store::Loaded;
    use sessio_test_servers::RedisServer;

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
