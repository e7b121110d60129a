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
//! The lease of a session's lock lives inside the session's own item, beside the record
//! (client flags tell the shapes apart: a record, a record under a lease, a lease alone).
//! So one CAS checks both the record and the lease, and a write under the lock is one
//! command. Taking the lock rewrites the item, which moves its CAS: a write prepared under
//! an earlier lease, even by a holder that has not noticed its lease lapsed, fails its CAS
//! and is refused. The lease's end is kept in milliseconds and judged by the reading
//! process's clock (memcached's own ticks in whole seconds and would end a 1 s lease after
//! anything from 0 to 1 s).
//!
//! | operation | commands | round trips |
//! |---|---|---|
//! | load | `mg key v c f t` | 1 |
//! | create-if-absent | `ms key T<ttl> ME` (add mode) | 1 |
//! | conditional save | `ms key T<ttl> C<cas>` | 1; 2 while the item holds someone's live lease (`mg` first, to keep it) |
//! | conditional delete | `md key C<cas>` | 1; 2 under a live lease (the lease stays, alone) |
//! | delete (logout) | `mg key v c f`, then `md key C<cas>` (or the lease alone, if one is live) | 2 |
//! | touch | `mg key T<ttl> f` (a missing or expired item is not revived) | 1 |
//! | lock | `mg key v c f t`, then `ms key C<cas>` (or `ME` when absent) with our lease in the item | 2 |
//! | save / delete under the lock, keeping or releasing the lease | `ms key C<cas>` (or `md key C<cas>`) against the item as this process last wrote it under the lease | 1; 2 after another writer changed the record meanwhile |
//! | release | `mg key v c f`, then `ms key C<cas>` without the lease (or `md key C<cas>` for a lease alone) | 2 |
//!
//! The one-command locked write needs the item's CAS from this process's own last write
//! under the lease, which the store remembers per held lease (entries go on release; a
//! forgotten one costs a read, never correctness).
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
    Loaded, LockingStore, Outcome, Store, StoreError, StoreErrorKind, StoreResult, Version,
};
use sha2::{Digest, Sha256};

use crate::item::{cas_of, encode, Item, Lease, LEASE_BIT, LEASE_ONLY, PLAIN};

mod item;
mod lock;

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
    held: lock::Held,
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
                held: lock::Held::default(),
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

/// The item TTL for a record due to live `record` more (if any) under `lease` (if any):
/// a lease outlives its end by a second, whatever the record's TTL, so that memcached's
/// coarse clock never drops it early.
fn item_ttl(record: Option<Duration>, lease: Option<&Lease>) -> Duration {
    let for_lease = lease.map_or(Duration::ZERO, |l| l.left() + Duration::from_secs(1));
    record.unwrap_or(Duration::ZERO).max(for_lease)
}

/// What is left of an item's TTL, as memcached reported it, plus the second its clock may
/// be into. An item without expiry (sessio never writes one) is given the longest relative
/// TTL.
fn ttl_left(item: &Item) -> Duration {
    Duration::from_secs(item.ttl_left.map_or(RELATIVE_LIMIT, |t| t + 1))
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

/// One item write: its value and flags, TTL, and condition.
struct Write<'a> {
    value: &'a [u8],
    flags: u32,
    ttl: Duration,
    /// `Some(cas)`: only over the item with that CAS; `None`: only if there is no item.
    cas: Option<u64>,
}

/// What a conditional item write or delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    /// Written (with the item's new CAS) or deleted.
    Done(u64),
    /// The item changed since its CAS was read (or, adding, an item exists).
    Changed,
    /// There is no item.
    Gone,
}

impl Wrote {
    fn record(self) -> Outcome<Version> {
        match self {
            Wrote::Done(cas) => Outcome::Done(Version(cas)),
            Wrote::Changed => Outcome::Conflict,
            Wrote::Gone => Outcome::Missing,
        }
    }
}

/// How often an operation that lost a race with another writer reads the item again.
const RACE_RETRIES: usize = 8;

fn kept_changing(op: &str) -> StoreError {
    StoreError::protocol(format!(
        "the session kept changing during {op} ({RACE_RETRIES} attempts); retry"
    ))
}

impl MemcachedStore {
    /// The item under `key`: `mg key v c f t`.
    async fn item(&self, op: &'static str, key: &str) -> StoreResult<Option<Item>> {
        let k = wire_key(key);
        let value = self
            .run(op, key, async |c| {
                c.meta_get(&*k, false, None, Some(&["v", "c", "f", "t"]))
                    .await
            })
            .await?;
        value.map(Item::decode).transpose()
    }

    /// `ms` with a CAS, or in add mode.
    async fn write(&self, op: &'static str, key: &str, w: Write<'_>) -> StoreResult<Wrote> {
        let k = wire_key(key);
        let t = ttl_flag(w.ttl);
        let f = format!("F{}", w.flags);
        let mode = match w.cas {
            Some(cas) => format!("C{cas}"),
            None => "ME".to_string(),
        };
        self.run(op, key, async |c| {
            let reply = c
                .meta_set(&*k, w.value, false, None, Some(&[&t, &f, &mode, "c"]))
                .await;
            Ok(match set_outcome(reply)? {
                SetOutcome::Stored(cas) => Wrote::Done(cas.unwrap_or(0)),
                SetOutcome::Exists => Wrote::Changed,
                // Add mode answers NS when the key exists; a CAS on a missing key, NF.
                SetOutcome::NotStored if w.cas.is_none() => Wrote::Changed,
                SetOutcome::NotFound | SetOutcome::NotStored => Wrote::Gone,
            })
        })
        .await
    }

    /// `md` with a CAS.
    async fn remove(&self, op: &'static str, key: &str, cas: u64) -> StoreResult<Wrote> {
        let k = wire_key(key);
        let cas_flag = format!("C{cas}");
        self.run(op, key, async |c| {
            match c.meta_delete(&*k, false, None, Some(&[&cas_flag])).await {
                Ok(_) => Ok(Wrote::Done(0)),
                Err(e) if status(&e) == Some(&Status::NotFound) => Ok(Wrote::Gone),
                Err(e) if status(&e) == Some(&Status::Exists) => Ok(Wrote::Changed),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Replaces the record of the item `item` (still at its CAS) with `record`, or removes
    /// it (`None`), keeping the item's live lease if it has one.
    async fn rewrite_keeping_lease(
        &self,
        op: &'static str,
        key: &str,
        item: &Item,
        record: Option<(&[u8], Duration)>,
    ) -> StoreResult<Wrote> {
        let lease = item.live_lease();
        match (record, lease) {
            (None, None) => self.remove(op, key, item.cas).await,
            (record, lease) => {
                let (value, flags) = encode(record.map(|r| r.0), lease.as_ref());
                let ttl = item_ttl(record.map(|r| r.1), lease.as_ref());
                let cas = Some(item.cas);
                self.write(
                    op,
                    key,
                    Write {
                        value: &value,
                        flags,
                        ttl,
                        cas,
                    },
                )
                .await
            }
        }
    }

    /// A plain conditional write or delete of the record `expected`: one command, unless
    /// the item held a live lease when it was loaded, which the write must keep (a read
    /// first).
    async fn replace_plain(
        &self,
        op: &'static str,
        key: &str,
        expected: &Loaded,
        record: Option<(&[u8], Duration)>,
    ) -> StoreResult<Wrote> {
        let cas = cas_of(expected.version);
        if expected.version.0 & LEASE_BIT == 0 {
            return match record {
                Some((data, ttl)) => {
                    let w = Write {
                        value: data,
                        flags: PLAIN,
                        ttl,
                        cas: Some(cas),
                    };
                    self.write(op, key, w).await
                }
                None => self.remove(op, key, cas).await,
            };
        }
        match self.item(op, key).await? {
            Some(item) if item.record.is_none() => Ok(Wrote::Gone),
            Some(item) if item.cas == cas => {
                self.rewrite_keeping_lease(op, key, &item, record).await
            }
            Some(_) => Ok(Wrote::Changed),
            None => Ok(Wrote::Gone),
        }
    }
}

#[async_trait]
impl Store for MemcachedStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        Ok(self.item("load", key).await?.and_then(Item::loaded))
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let w = Write {
            value: data,
            flags: PLAIN,
            ttl,
            cas: None,
        };
        Ok(self.write("create", key, w).await?.record())
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        Ok(self
            .replace_plain("save", key, expected, Some((data, ttl)))
            .await?
            .record())
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        Ok(self
            .replace_plain("delete", key, expected, None)
            .await?
            .record()
            .map(|_| ()))
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let k = wire_key(key);
        let t = ttl_flag(ttl);
        self.run("touch", key, async |c| {
            // `f` makes a hit answer with a flag to parse (a miss is a bare `EN`), and
            // tells a record from a lease alone.
            Ok(c.meta_get(&*k, false, None, Some(&[&t, "f"]))
                .await?
                .is_some_and(|v| v.flags.unwrap_or(PLAIN) != LEASE_ONLY))
        })
        .await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        // A read first: a live lease in the item stays (as a lease alone) for its holder.
        for _ in 0..RACE_RETRIES {
            let Some(item) = self.item("delete", key).await? else {
                return Ok(());
            };
            if item.record.is_none() {
                return Ok(());
            }
            match self
                .rewrite_keeping_lease("delete", key, &item, None)
                .await?
            {
                Wrote::Done(_) | Wrote::Gone => return Ok(()),
                Wrote::Changed => {}
            }
        }
        Err(kept_changing("delete"))
    }

    /// Memcached evicts live items when it needs room, so it cannot hold the sessions
    /// index.
    fn keeps_live_records(&self) -> bool {
        false
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
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
