//! [`RedisStore`]: sessions in Redis, the engine's [`Store`] and [`LockingStore`] over the
//! scripts and the near cache.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::Value;
use sessio::store::support::ttl_millis;
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreResult, Version,
};

use crate::connection::{Backend, ReplicaAcks, Tracking};
use crate::near::{Lookup, NearCache};
use crate::scripts::{fenced, flag, lock_key, Scripts};
use crate::{RedisStoreBuilder, RedisStoreError};

/// Sessions in Redis. Cheap to clone; clones share connections.
///
/// Build it from a URL with [`connect`](Self::connect), with options through
/// [`builder`](Self::builder), or from connections you already have
/// ([`from_connection_manager`](Self::from_connection_manager),
/// [`from_cluster`](Self::from_cluster), [`from_client`](Self::from_client)).
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) timeout: Duration,
    pub(crate) scripts: Scripts,
    pub(crate) replica_acks: Option<ReplicaAcks>,
    /// The server has `DELIFEQ` and `SET … IFEQ` (Valkey 9): found at connect time.
    pub(crate) compare_commands: bool,
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

    /// Asks the server whether it has `DELIFEQ` (Valkey 9 adds it, beside `SET … IFEQ` of
    /// Valkey 8.1); if so, the release and the plain conditional save use them instead of
    /// a script (see the crate's docs). Asking for the command, rather than reading a
    /// version, also finds it on a fork or a later Redis that adds it.
    pub(crate) async fn with_server_commands(mut self) -> Self {
        let found = self
            .run_with("connect", Tracking::Off, async |c| {
                redis::cmd("COMMAND")
                    .arg("INFO")
                    .arg("DELIFEQ")
                    .query_async::<Vec<Value>>(c)
                    .await
            })
            .await
            .is_ok_and(|info| info.first().is_some_and(|i| *i != Value::Nil));
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.compare_commands = found;
        }
        self.check_replicas().await;
        self
    }

    /// With replica acknowledgements on, warns at connect time when the server (one
    /// server, or Sentinel's master) has fewer replicas than required: every write would
    /// fail until enough of them connect. (A Cluster's masters are checked by each write.)
    async fn check_replicas(&self) {
        let Some(acks) = self.inner.replica_acks else {
            return;
        };
        if matches!(self.inner.backend, Backend::Cluster(_)) {
            return;
        }
        let info = self
            .run_with("connect", Tracking::Off, async |c| {
                redis::cmd("INFO")
                    .arg("replication")
                    .query_async::<String>(c)
                    .await
            })
            .await
            .unwrap_or_default();
        let connected = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(connected) = connected.filter(|&n| n < acks.replicas) {
            tracing::warn!(
                connected,
                required = acks.replicas,
                "Redis has fewer replicas than replica_acks requires: every write will fail (503) until enough replicas connect"
            );
        }
    }

    fn forget(&self, key: &str) {
        if let Some(cache) = self.cache() {
            cache.forget(key.as_bytes());
        }
    }

    pub(crate) fn cache(&self) -> Option<&NearCache> {
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
}

/// Saves compare the stored bytes, not a version, so every record carries the same one;
/// hashing the bytes on every load and save would be work nothing reads.
pub(crate) const VERSION: Version = Version(0);

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
        self.read_tracked(key, cache).await
    }

    /// Reads `key` from Redis, tracked, and caches it when it is safe: for a key known to
    /// exist (one the cache held a moment ago), one round trip instead of [`read`]'s two.
    ///
    /// [`read`]: Self::read
    async fn read_tracked(&self, key: &str, cache: &NearCache) -> StoreResult<Option<Loaded>> {
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
            .run_write(op, key, tracking, async |c| invoke.invoke_async(c).await)
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
            match cache.get(key, SystemTime::now()) {
                Lookup::Hit(record) => {
                    metrics::counter!("sessio_near_cache_hits_total").increment(1);
                    return Ok(Some(record));
                }
                Lookup::Stale => {
                    metrics::counter!("sessio_near_cache_misses_total").increment(1);
                    return self.read_tracked(key, cache).await;
                }
                Lookup::Miss => metrics::counter!("sessio_near_cache_misses_total").increment(1),
            }
        }
        self.read(key).await
    }

    fn serves_from_cache(&self) -> bool {
        self.cache().is_some()
    }

    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        match self.cache() {
            // Held a moment ago (a refresh after a conflict, a client with a newer write
            // count): the key exists, and one tracked read does.
            Some(cache) if cache.holds(key) => self.read_tracked(key, cache).await,
            _ => self.read(key).await,
        }
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        if self.cache().is_some() {
            let mut invoke = self.inner.scripts.create.key(key);
            invoke.arg(data).arg(ttl_millis(ttl));
            let code = self
                .write("create", key, Some((data, ttl)), Tracking::On, invoke)
                .await?;
            return Ok(fenced(code, VERSION));
        }
        let set: Option<String> = self
            .run_write("create", key, Tracking::On, async |c| {
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
        if self.inner.compare_commands && self.cache().is_none() {
            // One command instead of the script. `GET` returns what was there, whether or
            // not it was replaced: nothing (missing), our bytes (saved), or another's.
            let previous: Option<Vec<u8>> = self
                .run_write("save", key, Tracking::On, async |c| {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(data)
                        .arg("IFEQ")
                        .arg(&expected.data[..])
                        .arg("GET")
                        .arg("PX")
                        .arg(ttl_millis(ttl))
                        .query_async(c)
                        .await
                })
                .await?;
            return Ok(match previous {
                None => Outcome::Missing,
                Some(previous) if previous == expected.data => Outcome::Done(VERSION),
                Some(_) => Outcome::Conflict,
            });
        }
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
            .run_write("touch", key, Tracking::On, async |c| {
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
            .run_write("delete", key, Tracking::On, async |c| {
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
                if self.inner.compare_commands {
                    return redis::cmd("DELIFEQ")
                        .arg(&lock)
                        .arg(token.to_hex())
                        .query_async(c)
                        .await;
                }
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
