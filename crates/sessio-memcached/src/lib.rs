//! # sessio-memcached
//!
//! A [Memcached](https://memcached.org) store for [`sessio`], over one server or a ring of
//! several with consistent hashing: adding a server moves only about 1/N of the sessions,
//! so users who outgrow one box add boxes.
//!
//! ```no_run
//! use sessio_memcached::MemcachedStore;
//!
//! # async fn run() -> Result<(), sessio_memcached::MemcachedStoreError> {
//! let store = MemcachedStore::connect("memcached://10.0.0.1:11211,10.0.0.2:11211").await?;
//! # Ok(()) }
//! ```
//!
//! ## The client
//!
//! Built on [`async-memcached`](https://docs.rs/async-memcached) (Shopify's tokio client),
//! chosen over the other crates.io clients because it is maintained and speaks the **meta
//! protocol**, which gives what the store contract needs in single commands: the value,
//! its CAS token and its remaining TTL in one `mg`; add-if-absent and compare-and-swap as
//! modes of `ms`; touch as `mg … T`; a CAS-guarded `md`. `memcache` (rust-memcache) is
//! synchronous; `memcache-async` has no CAS; the others are unmaintained. Connections are
//! pooled per server with [`deadpool`]; a connection that saw an error or a timeout is
//! discarded, never reused.
//!
//! ## How each operation maps to Memcached
//!
//! | operation | commands | round trips |
//! |---|---|---|
//! | load | `mg key v c t` | 1 |
//! | create-if-absent | `ms key T<ttl> ME` (add mode) | 1 |
//! | conditional save | `ms key T<ttl> C<cas>` | 1 |
//! | touch | `mg key T<ttl>` (a missing or expired item is not revived) | 1 |
//! | delete | `md key` | 1 |
//! | lock | `ms key:lock ME` (add; over a lapsed lease `mg` + `ms C<cas>`), then `mg key v c t` and `ms key C<cas>` (the same bytes: the record's CAS moves) | 3 |
//! | conditional delete | `md key C<cas>` | 1 |
//! | fenced save / delete | `mg key:lock v c` (our live lease?), then `ms key C<cas>` (or `md key C<cas>`), then the release | 2–4 |
//! | release | `mg key:lock v c`, then `md key:lock C<cas>` (compare-and-delete) | 2 |
//!
//! Memcached has no scripting, so the lease check and the fenced write are two commands.
//! The gap between them is closed by the lock itself: taking a lease rewrites the record
//! (same bytes), so its CAS moves, and a write prepared under the previous lease, even one
//! whose check passed just before that lease lapsed, fails its CAS and is refused. The
//! lease's end is kept in the lock item in milliseconds and checked by this process's
//! clock (memcached's own clock ticks in whole seconds and would end a 1 s lease after
//! anything from 0 to 1 s). The lock of a session lives on the same server as its record.
//!
//! ## Keys and TTLs
//!
//! Keys are always valid for memcached: a key longer than 250 bytes or holding spaces or
//! control characters is replaced by `sessio:h:` + the base64url SHA-256 of it. TTLs are
//! whole seconds, rounded up; TTLs over 30 days are sent as Unix timestamps, since
//! memcached reads larger values that way.
#![warn(missing_docs)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{Client, Error as McError, MetaProtocol, MetaValue, Status};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use sessio::store::support::{ttl_secs, within};
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreErrorKind, StoreResult, Version,
};
use sha2::{Digest, Sha256};

/// Why a [`MemcachedStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemcachedStoreError {
    /// The URL is not `memcached://HOST:PORT[,HOST:PORT...]`.
    #[error("invalid memcached URL {url:?}: expected memcached://HOST:PORT[,HOST:PORT...]")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// A server did not accept a connection.
    #[error("cannot connect to memcached at {server}: {message}; check that memcached runs there")]
    Connect {
        /// The server.
        server: String,
        /// What went wrong.
        message: String,
    },
}

/// Sessions in Memcached. Cheap to clone; clones share the connection pools.
#[derive(Clone)]
pub struct MemcachedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("servers", &self.inner.servers)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

struct Inner {
    servers: Vec<String>,
    pools: Vec<managed::Pool<Connector>>,
    ring: Ring,
    timeout: Duration,
}

/// Opens connections to one server for the pool.
struct Connector {
    server: String,
}

impl managed::Manager for Connector {
    type Type = Client;
    type Error = McError;

    async fn create(&self) -> Result<Client, McError> {
        Client::new(format!("tcp://{}", self.server)).await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<McError> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// A consistent-hash ring: each server owns many points; a key goes to the first point at
/// or after its hash. Adding a server takes over only the arcs before its own points.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, usize)>,
}

/// Points per server: enough for an even spread (a few percent) over a handful of servers.
const POINTS_PER_SERVER: usize = 160;

impl Ring {
    /// A ring over `servers` (addresses as `HOST:PORT`; their order does not matter).
    pub fn new(servers: &[String]) -> Self {
        let mut points: Vec<(u64, usize)> = servers
            .iter()
            .enumerate()
            .flat_map(|(i, server)| {
                (0..POINTS_PER_SERVER)
                    .map(move |p| (stable_hash(format!("{server}#{p}").as_bytes()), i))
            })
            .collect();
        points.sort_unstable();
        Self { points }
    }

    /// The index (in the list given to [`new`](Self::new)) of the server owning `key`.
    pub fn server_for(&self, key: &str) -> usize {
        let h = stable_hash(key.as_bytes());
        let at = self.points.partition_point(|&(p, _)| p < h);
        self.points[at % self.points.len()].1
    }
}

/// FNV-1a, then a splitmix64 finish for spread: stable across processes and builds, so
/// every app process maps a key to the same server.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Options for a [`MemcachedStore`].
#[derive(Debug, Clone)]
pub struct MemcachedStoreBuilder {
    timeout: Duration,
    pool_size: usize,
}

impl Default for MemcachedStoreBuilder {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(500),
            pool_size: 16,
        }
    }
}

impl MemcachedStoreBuilder {
    /// The longest one store operation may take (default 500 ms); past it the operation
    /// fails with a `Timeout` store error (a `503` at the edge).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connections kept per server (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Connects to the servers of `url`: `memcached://HOST:PORT[,HOST:PORT...]`.
    ///
    /// # Errors
    /// [`MemcachedStoreError`] for a bad URL or a server that does not answer.
    pub async fn connect(self, url: &str) -> Result<MemcachedStore, MemcachedStoreError> {
        let servers: Vec<String> = url
            .strip_prefix("memcached://")
            .map(|rest| {
                rest.trim_end_matches('/')
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if servers.is_empty() || servers.iter().any(|s| !s.contains(':')) {
            return Err(MemcachedStoreError::InvalidUrl {
                url: url.to_string(),
            });
        }
        self.servers(servers).await
    }

    /// Connects to `servers` (`HOST:PORT` each).
    ///
    /// # Errors
    /// [`MemcachedStoreError::Connect`] if a server does not answer.
    pub async fn servers(
        self,
        servers: Vec<String>,
    ) -> Result<MemcachedStore, MemcachedStoreError> {
        let mut pools = Vec::with_capacity(servers.len());
        for server in &servers {
            let pool = managed::Pool::builder(Connector {
                server: server.clone(),
            })
            .max_size(self.pool_size)
            .runtime(deadpool::Runtime::Tokio1)
            .create_timeout(Some(self.timeout))
            .wait_timeout(Some(self.timeout))
            .build()
            .map_err(|e| MemcachedStoreError::Connect {
                server: server.clone(),
                message: e.to_string(),
            })?;
            // Check the server now, so a typo fails at start-up rather than per request.
            let mut conn: Object<Connector> =
                pool.get().await.map_err(|e| MemcachedStoreError::Connect {
                    server: server.clone(),
                    message: e.to_string(),
                })?;
            conn.version()
                .await
                .map_err(|e| MemcachedStoreError::Connect {
                    server: server.clone(),
                    message: e.to_string(),
                })?;
            pools.push(pool);
        }
        Ok(MemcachedStore {
            inner: Arc::new(Inner {
                ring: Ring::new(&servers),
                servers,
                pools,
                timeout: self.timeout,
            }),
        })
    }
}

impl MemcachedStore {
    /// Connects with default options; see [`MemcachedStoreBuilder::connect`].
    ///
    /// # Errors
    /// [`MemcachedStoreError`] for a bad URL or a server that does not answer.
    pub async fn connect(url: &str) -> Result<Self, MemcachedStoreError> {
        MemcachedStoreBuilder::default().connect(url).await
    }

    /// Options: timeout, pool size.
    pub fn builder() -> MemcachedStoreBuilder {
        MemcachedStoreBuilder::default()
    }

    /// The servers, in the order given.
    pub fn servers(&self) -> &[String] {
        &self.inner.servers
    }

    /// The index of the server that holds `key` (and its lock).
    pub fn server_for(&self, key: &str) -> usize {
        self.inner.ring.server_for(key)
    }

    /// Runs `f` on a pooled connection to the server owning `owner`, within the timeout.
    async fn run<T>(
        &self,
        op: &'static str,
        owner: &str,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, McError>,
    ) -> StoreResult<T> {
        let server = self.inner.ring.server_for(owner);
        let pool = &self.inner.pools[server];
        let name = &self.inner.servers[server];
        let work = async {
            let mut conn = pool.get().await.map_err(|e| {
                StoreError::unavailable(format!(
                    "no connection to memcached at {name} for {op}: {e}; check that memcached runs there"
                ))
            })?;
            match f(&mut conn).await {
                Ok(value) => Ok(value),
                Err(error) => {
                    if !matches!(error, McError::Protocol(_)) {
                        // The connection's state is unknown: never reuse it.
                        let _ = Object::take(conn);
                    }
                    Err(store_error(error, op, name))
                }
            }
        };
        within(
            op,
            &format!("memcached at {name}"),
            self.inner.timeout,
            work,
        )
        .await
    }
}

fn store_error(error: McError, op: &str, server: &str) -> StoreError {
    let kind = match &error {
        McError::Protocol(_) | McError::ParseError(_) => StoreErrorKind::Protocol,
        _ => StoreErrorKind::Unavailable,
    };
    StoreError::new(
        kind,
        format!("memcached {op} at {server} failed: {error:?}"),
    )
}

/// A key memcached accepts: at most 250 bytes, no spaces or control characters.
fn wire_key(key: &str) -> Cow<'_, str> {
    if !key.is_empty() && key.len() <= 250 && key.bytes().all(|b| b.is_ascii_graphic()) {
        Cow::Borrowed(key)
    } else {
        let mut safe = String::from("sessio:h:");
        URL_SAFE_NO_PAD.encode_string(Sha256::digest(key.as_bytes()), &mut safe);
        Cow::Owned(safe)
    }
}

fn lock_key(key: &str) -> String {
    wire_key(&format!("{key}:lock")).into_owned()
}

/// Longest TTL memcached reads as relative; larger values are Unix timestamps.
const RELATIVE_LIMIT: u64 = 30 * 24 * 3600;

/// The `T` flag for a TTL: whole seconds rounded up, absolute past 30 days.
fn ttl_flag(ttl: Duration) -> String {
    let secs = ttl_secs(ttl);
    if secs <= RELATIVE_LIMIT {
        format!("T{secs}")
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("T{}", now + secs)
    }
}

fn loaded(value: MetaValue) -> Loaded {
    let expires_at = value
        .ttl_remaining
        .filter(|&t| t >= 0)
        // Memcached counts whole seconds; the item lives until the end of the last one.
        .map(|t| SystemTime::now() + Duration::from_secs(t as u64 + 1));
    Loaded {
        data: value.data.unwrap_or_default(),
        version: Version(value.cas.unwrap_or(0)),
        expires_at,
    }
}

/// What an `ms` did, whether memcached answered with a bare status or with flags.
enum SetOutcome {
    Stored(Option<u64>),
    NotStored,
    Exists,
    NotFound,
}

fn set_outcome(reply: Result<Option<MetaValue>, McError>) -> Result<SetOutcome, McError> {
    match reply {
        Ok(Some(value)) => Ok(match value.status {
            Some(Status::NotStored) => SetOutcome::NotStored,
            Some(Status::Exists) => SetOutcome::Exists,
            Some(Status::NotFound) => SetOutcome::NotFound,
            _ => SetOutcome::Stored(value.cas),
        }),
        Ok(None) => Ok(SetOutcome::Stored(None)),
        Err(McError::Protocol(Status::NotStored)) => Ok(SetOutcome::NotStored),
        Err(McError::Protocol(Status::Exists)) => Ok(SetOutcome::Exists),
        Err(McError::Protocol(Status::NotFound)) => Ok(SetOutcome::NotFound),
        Err(e) => Err(e),
    }
}

fn status(error: &McError) -> Option<&Status> {
    match error {
        McError::Protocol(status) => Some(status),
        _ => None,
    }
}

impl MemcachedStore {
    /// `ms` with a CAS (`expected`) or in add mode (`None`).
    async fn set_if(
        &self,
        op: &'static str,
        key: &str,
        expected: Option<&Loaded>,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let k = wire_key(key);
        let t = ttl_flag(ttl);
        let mode = match expected {
            Some(e) => format!("C{}", e.version.0),
            None => "ME".to_string(),
        };
        self.run(op, key, async |c| {
            let reply = c
                .meta_set(&*k, data, false, None, Some(&[&t, &mode, "c"]))
                .await;
            Ok(match set_outcome(reply)? {
                SetOutcome::Stored(cas) => Outcome::Done(Version(cas.unwrap_or(0))),
                SetOutcome::Exists => Outcome::Conflict,
                // Add mode answers NS when the key exists; a CAS on a missing key, NF.
                SetOutcome::NotStored if expected.is_none() => Outcome::Conflict,
                SetOutcome::NotFound | SetOutcome::NotStored => Outcome::Missing,
            })
        })
        .await
    }

    /// `md` with a CAS.
    async fn delete_cas(
        &self,
        op: &'static str,
        key: &str,
        expected: &Loaded,
    ) -> StoreResult<Outcome<()>> {
        let k = wire_key(key);
        let cas = format!("C{}", expected.version.0);
        self.run(op, key, async |c| {
            match c.meta_delete(&*k, false, None, Some(&[&cas])).await {
                Ok(_) => Ok(Outcome::Done(())),
                Err(e) if status(&e) == Some(&Status::NotFound) => Ok(Outcome::Missing),
                Err(e) if status(&e) == Some(&Status::Exists) => Ok(Outcome::Conflict),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

#[async_trait]
impl Store for MemcachedStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let k = wire_key(key);
        let value = self
            .run("load", key, async |c| {
                c.meta_get(&*k, false, None, Some(&["v", "c", "t"])).await
            })
            .await?;
        Ok(value.map(loaded))
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        self.set_if("create", key, None, data, ttl).await
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        self.set_if("save", key, Some(expected), data, ttl).await
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        self.delete_cas("delete", key, expected).await
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let k = wire_key(key);
        let t = ttl_flag(ttl);
        self.run("touch", key, async |c| {
            // `s` (size) makes a hit answer with a flag to parse; a miss is a bare `EN`.
            Ok(c.meta_get(&*k, false, None, Some(&[&t, "s"]))
                .await?
                .is_some())
        })
        .await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let k = wire_key(key);
        self.run("delete", key, async |c| {
            match c.meta_delete(&*k, false, None, None).await {
                Ok(_) => Ok(()),
                Err(e) if status(&e) == Some(&Status::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

/// The lock item of a session: `<token hex>:<until, Unix ms>`. The item itself lives a
/// second or two longer than the lease (memcached's clock ticks in whole seconds and would
/// end a 1 s lease after anything from 0 to 1 s); the lease ends at `until`, by this
/// process's clock.
struct LockItem {
    token: String,
    until_ms: u64,
    cas: u64,
}

impl LockItem {
    fn parse(value: MetaValue) -> Option<Self> {
        let data = String::from_utf8(value.data?).ok()?;
        let (token, until) = data.split_once(':')?;
        Some(Self {
            token: token.to_owned(),
            until_ms: until.parse().ok()?,
            cas: value.cas.unwrap_or(0),
        })
    }

    fn live(&self) -> bool {
        self.until_ms > now_ms()
    }

    fn held_by(&self, token: &str) -> bool {
        self.live() && self.token == token
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The value and item TTL flag of a lock item for `token`, leased for `lease` from now.
fn lock_value(token: &str, lease: Duration) -> (String, String) {
    let until = now_ms().saturating_add(lease.as_millis().try_into().unwrap_or(u64::MAX));
    (
        format!("{token}:{until}"),
        ttl_flag(lease + Duration::from_secs(1)),
    )
}

impl MemcachedStore {
    /// The lock item of `key`, if there is one.
    async fn lock_item(&self, key: &str, lock: &str) -> StoreResult<Option<LockItem>> {
        let value = self
            .run("lock check", key, async |c| {
                c.meta_get(lock, false, None, Some(&["v", "c"])).await
            })
            .await?;
        Ok(value.and_then(LockItem::parse))
    }

    /// Takes the lock item of `key` for `token` (add, or a CAS over a lapsed or own lease).
    async fn take_lock(&self, key: &str, token: &str, lease: Duration) -> StoreResult<bool> {
        let lock = lock_key(key);
        let (value, t) = lock_value(token, lease);
        let added = self
            .run("lock", key, async |c| {
                let reply = c
                    .meta_set(&lock, value.as_bytes(), false, None, Some(&[&t, "ME"]))
                    .await;
                Ok(matches!(set_outcome(reply)?, SetOutcome::Stored(_)))
            })
            .await?;
        if added {
            return Ok(true);
        }
        let Some(item) = self.lock_item(key, &lock).await? else {
            // Released meanwhile: the next attempt adds it.
            return Ok(false);
        };
        if item.live() && item.token != token {
            return Ok(false);
        }
        let cas = format!("C{}", item.cas);
        self.run("lock", key, async |c| {
            let reply = c
                .meta_set(&lock, value.as_bytes(), false, None, Some(&[&t, &cas]))
                .await;
            Ok(matches!(set_outcome(reply)?, SetOutcome::Stored(_)))
        })
        .await
    }

    /// Rewrites the record unchanged so that its CAS moves: a write prepared under an
    /// earlier lease (whose check passed just before the lease lapsed) can no longer land.
    /// Returns the record with its new CAS.
    async fn fence(&self, key: &str) -> StoreResult<Option<Loaded>> {
        for _ in 0..8 {
            let Some(current) = self.load(key).await? else {
                return Ok(None);
            };
            let left = current
                .expires_at
                .and_then(|at| at.duration_since(SystemTime::now()).ok())
                .unwrap_or(Duration::from_secs(1));
            match self
                .set_if("lock", key, Some(&current), &current.data, left)
                .await?
            {
                Outcome::Done(version) => return Ok(Some(Loaded { version, ..current })),
                Outcome::Missing => return Ok(None),
                // A write landed between the read and the rewrite: read again.
                Outcome::Conflict | Outcome::LeaseLost => {}
            }
        }
        Err(StoreError::protocol(
            "the session kept changing while its lock was taken; retry",
        ))
    }

    /// Whether `token` holds a live lease on `key`.
    async fn holds(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let item = self.lock_item(key, &lock_key(key)).await?;
        Ok(item.is_some_and(|i| i.held_by(&token.to_hex())))
    }
}

#[async_trait]
impl LockingStore for MemcachedStore {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        if !self.take_lock(key, &token.to_hex(), lease).await? {
            return Ok(Acquired::Held);
        }
        match self.fence(key).await {
            Ok(record) => Ok(Acquired::Granted(record)),
            Err(error) => {
                // Not granted after all: the lease must not outlive the error.
                let _ = self.release(key, token).await;
                Err(error)
            }
        }
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
        if !self.holds(key, token).await? {
            return Ok(Outcome::LeaseLost);
        }
        let outcome = self
            .set_if("save under lock", key, expected, data, ttl)
            .await?;
        if matches!(outcome, Outcome::Done(_)) && then == AfterWrite::Release {
            self.release(key, token).await?;
        }
        Ok(outcome)
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        if !self.holds(key, token).await? {
            return Ok(Outcome::LeaseLost);
        }
        let outcome = self.delete_cas("delete under lock", key, expected).await?;
        if matches!(outcome, Outcome::Done(_)) && then == AfterWrite::Release {
            self.release(key, token).await?;
        }
        Ok(outcome)
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let lock = lock_key(key);
        let Some(item) = self
            .lock_item(key, &lock)
            .await?
            .filter(|i| i.held_by(&token.to_hex()))
        else {
            return Ok(false);
        };
        let cas = format!("C{}", item.cas);
        self.run("unlock", key, async |c| {
            match c.meta_delete(&lock, false, None, Some(&[&cas])).await {
                Ok(_) => Ok(true),
                Err(e) if matches!(status(&e), Some(Status::NotFound | Status::Exists)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_always_valid_for_memcached() {
        assert_eq!(wire_key("session:abc"), "session:abc");
        for bad in ["has space", "tab\there", "nl\n", "", &"x".repeat(251), "é"] {
            let key = wire_key(bad);
            assert!(
                key.len() <= 250 && key.bytes().all(|b| b.is_ascii_graphic()),
                "{key:?}"
            );
            assert!(key.starts_with("sessio:h:"));
        }
        assert_ne!(wire_key("a b"), wire_key("a  b"));
    }

    #[test]
    fn long_ttls_become_timestamps() {
        assert_eq!(ttl_flag(Duration::from_millis(300)), "T1");
        assert_eq!(
            ttl_flag(Duration::from_secs(RELATIVE_LIMIT)),
            format!("T{RELATIVE_LIMIT}")
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let flag = ttl_flag(Duration::from_secs(RELATIVE_LIMIT + 1));
        let at: u64 = flag[1..].parse().unwrap();
        assert!(
            at >= now + RELATIVE_LIMIT && at <= now + RELATIVE_LIMIT + 5,
            "{flag}"
        );
    }

    #[test]
    fn adding_a_server_moves_about_one_in_n_keys() {
        let three: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", 11211 + i)).collect();
        let mut four = three.clone();
        four.push("127.0.0.1:11214".into());
        let (before, after) = (Ring::new(&three), Ring::new(&four));
        let keys: Vec<String> = (0..20_000).map(|i| format!("session:{i}")).collect();
        let moved = keys
            .iter()
            .filter(|k| before.server_for(k) != after.server_for(k))
            .count();
        let share = moved as f64 / keys.len() as f64;
        assert!(
            (0.15..0.35).contains(&share),
            "{share:.3} of keys moved; expected about 1/4"
        );
        for k in &keys {
            let (b, a) = (before.server_for(k), after.server_for(k));
            assert!(a == b || a == 3, "a key moved between old servers");
        }
        let mut per_server = [0usize; 3];
        for k in &keys {
            per_server[before.server_for(k)] += 1;
        }
        for n in per_server {
            assert!((4_500..8_800).contains(&n), "uneven ring: {per_server:?}");
        }
    }
}
