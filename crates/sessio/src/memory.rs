//! The in-memory store: the default, for development and single-process deployments.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hashbrown::{DefaultHashBuilder, HashMap};
use indexmap::IndexMap;

/// Records sampled per eviction.
const SAMPLE: usize = 5;

use crate::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreResult, Version,
};

/// What one record costs beyond its key and bytes: the map slot, the boxes' headers, the
/// allocator's rounding (measured, rounded up).
const ENTRY_OVERHEAD: usize = 96;

/// What a full [`MemoryStore`] does with a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Drop expired sessions, then, if still full, evict one among a small sample: a
    /// session nobody came back to if there is one (so a flood of one-shot sessions evicts
    /// its own kind), the one closest to expiry among those (the least recently active,
    /// since every use extends the expiry). New visitors are always served.
    #[default]
    EvictSoonestExpiring,
    /// Drop expired sessions, then, if still full, refuse the new session with a
    /// [`StoreErrorKind::Full`](crate::store::StoreErrorKind::Full) error (answered `503` by the axum layer). Existing
    /// sessions are never evicted.
    Reject,
}

/// Sessions kept in this process's memory, in shards of hash maps behind mutexes.
///
/// - **Bounded by bytes**: the records' keys, bytes and bookkeeping together stay within
///   [`max_bytes`](MemoryStoreBuilder::max_bytes) (default 128 MiB), and their number
///   within [`max_sessions`](MemoryStoreBuilder::max_sessions) (default: no limit beyond
///   the bytes); what happens past that is set by [`WhenFull`].
/// - **Swept**: a background task (started when the store is created inside a tokio
///   runtime) drops expired records every
///   [`sweep_interval`](MemoryStoreBuilder::sweep_interval) (default 60 s), and stops by
///   itself when the last clone of the store is dropped. Expired records are invisible
///   before that, since every read checks expiry.
/// - **Complete**: it implements [`LockingStore`], so every feature of sessio, locks
///   included, works without a server.
///
/// Clones share the same data. Sessions do not survive a restart and are not shared between
/// processes: use a networked store for that.
///
/// ```
/// use sessio::memory::{MemoryStore, WhenFull};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::builder()
///     .max_sessions(10_000)
///     .when_full(WhenFull::Reject)
///     .sweep_interval(Some(Duration::from_secs(30)))
///     .build();
/// assert_eq!(store.len(), 0);
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("bytes", &self.bytes())
            .field("max_sessions", &self.inner.max)
            .field("max_bytes", &self.inner.max_bytes)
            .finish()
    }
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: DefaultHashBuilder,
    /// Records held across all shards, swept or not.
    count: AtomicUsize,
    /// Bytes held across all shards (see `ENTRY_OVERHEAD`).
    bytes: AtomicUsize,
    max: usize,
    max_bytes: usize,
    when_full: WhenFull,
}

impl Inner {
    /// Tells the metrics recorder, if any, the store's size.
    fn report(&self) {
        crate::meter::memory_store(
            self.bytes.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        );
    }
}

#[derive(Default)]
struct Shard {
    /// Indexable, so that eviction can sample records at random in O(1).
    records: IndexMap<Box<str>, Entry, DefaultHashBuilder>,
    leases: HashMap<Box<str>, Lease>,
    next_version: u64,
    /// State of the xorshift generator that picks eviction samples (not security-relevant).
    rng: u64,
    /// When a full store last scanned this shard for expired records (unix ms).
    last_purge_ms: u64,
}

struct Entry {
    data: Box<[u8]>,
    expires_ms: u64,
    version: u64,
    /// Read or written again since it was created: a session someone came back to.
    /// Eviction takes never-reused records first, so a flood of one-shot sessions (bots,
    /// forged ids) pushes out its own kind, not the sessions of returning users.
    reused: bool,
}

struct Lease {
    token: LeaseToken,
    expires_ms: u64,
}

/// Builds a [`MemoryStore`]; see its fields' methods for the defaults.
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    max_sessions: usize,
    max_bytes: usize,
    shards: usize,
    sweep_interval: Option<Duration>,
    when_full: WhenFull,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_sessions: usize::MAX,
            max_bytes: 128 << 20,
            shards: 64,
            sweep_interval: Some(Duration::from_secs(60)),
            when_full: WhenFull::default(),
        }
    }
}

impl MemoryStoreBuilder {
    /// The most sessions kept at once (default: as many as [`max_bytes`](Self::max_bytes)
    /// allows).
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// The most memory the records may take, in bytes: keys, data and about 96 bytes of
    /// bookkeeping each (default 128 MiB). A session larger than this is refused.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1024);
        self
    }

    /// Number of independently locked shards (default 64).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// How often the background sweeper drops expired sessions (default 60 s); `None`
    /// turns it off (expired sessions are then dropped only when a shard is full).
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every;
        self
    }

    /// What to do when full (default [`WhenFull::EvictSoonestExpiring`]).
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Builds the store, and starts its sweeper if called inside a tokio runtime.
    pub fn build(self) -> MemoryStore {
        let shards = self.shards.min(self.max_sessions).max(1);
        let inner = Arc::new(Inner {
            shards: (0..shards as u64)
                .map(|i| {
                    Mutex::new(Shard {
                        rng: 0x9E37_79B9_7F4A_7C15 ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9),
                        ..Shard::default()
                    })
                })
                .collect(),
            hasher: Default::default(),
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max: self.max_sessions,
            max_bytes: self.max_bytes,
            when_full: self.when_full,
        });
        if let (Some(every), Ok(runtime)) =
            (self.sweep_interval, tokio::runtime::Handle::try_current())
        {
            runtime.spawn(sweep(Arc::downgrade(&inner), every));
        }
        MemoryStore { inner }
    }
}

async fn sweep(store: Weak<Inner>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let now = now_ms();
        for shard in inner.shards.iter() {
            lock(shard).purge(now, &inner);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn deadline(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(ttl.as_millis().try_into().unwrap_or(u64::MAX))
}

fn cost(key: &str, data: &[u8]) -> usize {
    key.len() + data.len() + ENTRY_OVERHEAD
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave it half-written (every critical section
    // is a single map operation), so a poisoned lock is safe to keep using.
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shard {
    /// Drops expired records and leases; returns how many records went.
    fn purge(&mut self, now: u64, store: &Inner) -> usize {
        let (mut count, mut bytes) = (0, 0);
        self.records.retain(|key, e| {
            let keep = e.expires_ms > now;
            if !keep {
                count += 1;
                bytes += cost(key, &e.data);
            }
            keep
        });
        self.leases.retain(|_, l| l.expires_ms > now);
        store.count.fetch_sub(count, Ordering::Relaxed);
        store.bytes.fetch_sub(bytes, Ordering::Relaxed);
        count
    }

    /// Removes the record under `key`, keeping the counters right.
    fn take(&mut self, key: &str, store: &Inner) -> bool {
        match self.records.swap_remove_full(key) {
            Some((_, k, e)) => {
                store.count.fetch_sub(1, Ordering::Relaxed);
                store.bytes.fetch_sub(cost(&k, &e.data), Ordering::Relaxed);
                store.report();
                true
            }
            None => false,
        }
    }

    fn live(&self, key: &str, now: u64) -> Option<&Entry> {
        self.records.get(key).filter(|e| e.expires_ms > now)
    }

    fn random(&mut self) -> u64 {
        // xorshift64: uniform enough to pick eviction samples.
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Writes a record; makes room first if the store is over its bounds.
    fn put(
        &mut self,
        key: &str,
        data: &[u8],
        now: u64,
        ttl: Duration,
        store: &Inner,
    ) -> StoreResult<u64> {
        let size = cost(key, data);
        if size > store.max_bytes {
            return Err(StoreError::full(format!(
                "a {size}-byte session does not fit the in-memory store's budget of {} bytes; raise MemoryStoreBuilder::max_bytes",
                store.max_bytes
            )));
        }
        let old = self.records.get(key).map_or(0, |e| cost(key, &e.data));
        let new_record = old == 0;
        let over = |store: &Inner| {
            store.bytes.load(Ordering::Relaxed) + size > store.max_bytes + old
                || (new_record && store.count.load(Ordering::Relaxed) >= store.max)
        };
        // Scanning a shard for expired records costs its size, so a full store does it
        // at most once a second per shard; in between it evicts from a sample.
        if over(store) && now >= self.last_purge_ms + 1000 {
            self.last_purge_ms = now;
            self.purge(now, store);
        }
        while over(store) {
            if store.when_full == WhenFull::Reject {
                return Err(StoreError::full(
                    "the in-memory store is at its bound (bytes or sessions); raise MemoryStoreBuilder::max_bytes or max_sessions",
                ));
            }
            // Of a few records picked at random in this shard, the one closest to expiry
            // (the least recently active) goes; never the one being written.
            let len = self.records.len();
            let mut victim = None;
            for _ in 0..SAMPLE.min(len) {
                let i = self.random() as usize % len;
                let (k, e) = self.records.get_index(i).expect("index in range");
                let rank = (e.reused, e.expires_ms);
                if &**k != key && victim.is_none_or(|(_, best)| rank < best) {
                    victim = Some((i, rank));
                }
            }
            let Some((victim, _)) = victim else {
                // This shard has nothing else to give; the others stay within the bound.
                break;
            };
            let (k, e) = self
                .records
                .swap_remove_index(victim)
                .expect("index in range");
            store.count.fetch_sub(1, Ordering::Relaxed);
            store.bytes.fetch_sub(cost(&k, &e.data), Ordering::Relaxed);
        }
        let version = self.version();
        let entry = Entry {
            data: data.into(),
            expires_ms: deadline(now, ttl),
            version,
            reused: old != 0,
        };
        if let Some(existing) = self.records.get_mut(key) {
            *existing = entry;
            store.bytes.fetch_add(size, Ordering::Relaxed);
            store.bytes.fetch_sub(old, Ordering::Relaxed);
        } else {
            self.records.insert(key.into(), entry);
            store.count.fetch_add(1, Ordering::Relaxed);
            store.bytes.fetch_add(size, Ordering::Relaxed);
        }
        store.report();
        Ok(version)
    }

    fn lease_holder(&self, key: &str, now: u64) -> Option<&LeaseToken> {
        self.leases
            .get(key)
            .filter(|l| l.expires_ms > now)
            .map(|l| &l.token)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MemoryStore {
    /// A store with the default limits (see [`MemoryStoreBuilder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to set the limits.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// The number of records held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// The bytes the records take now, by the measure of
    /// [`max_bytes`](MemoryStoreBuilder::max_bytes).
    pub fn bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = self.inner.hasher.hash_one(key) as usize % self.inner.shards.len();
        lock(&self.inner.shards[index])
    }

    fn loaded(entry: &Entry) -> Loaded {
        Loaded {
            data: entry.data.to_vec(),
            version: Version(entry.version),
            expires_at: Some(UNIX_EPOCH + Duration::from_millis(entry.expires_ms)),
        }
    }
}

/// A conditional write's check: is the live record under `key` the one expected?
fn check<T>(shard: &Shard, key: &str, expected: Option<&Loaded>, now: u64) -> Option<Outcome<T>> {
    match (shard.live(key, now), expected) {
        (None, None) => None,
        (None, Some(_)) => Some(Outcome::Missing),
        (Some(_), None) => Some(Outcome::Conflict),
        (Some(e), Some(x)) if e.version != x.version.0 => Some(Outcome::Conflict),
        (Some(_), Some(_)) => None,
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let now = now_ms();
        let mut shard = self.shard(key);
        Ok(match shard.records.get_mut(key) {
            Some(e) if e.expires_ms > now => {
                e.reused = true;
                Some(Self::loaded(e))
            }
            _ => None,
        })
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let now = now_ms();
        let mut shard = self.shard(key);
        if let Some(refused) = check(&shard, key, None, now) {
            return Ok(refused);
        }
        let v = shard.put(key, data, now, ttl, &self.inner)?;
        Ok(Outcome::Done(Version(v)))
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let now = now_ms();
        let mut shard = self.shard(key);
        if let Some(refused) = check(&shard, key, Some(expected), now) {
            return Ok(refused);
        }
        let v = shard.put(key, data, now, ttl, &self.inner)?;
        Ok(Outcome::Done(Version(v)))
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        let now = now_ms();
        let mut shard = self.shard(key);
        if let Some(refused) = check(&shard, key, Some(expected), now) {
            return Ok(refused);
        }
        shard.take(key, &self.inner);
        Ok(Outcome::Done(()))
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let now = now_ms();
        let mut shard = self.shard(key);
        match shard.records.get_mut(key) {
            Some(e) if e.expires_ms > now => {
                e.expires_ms = deadline(now, ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.shard(key).take(key, &self.inner);
        Ok(())
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

#[async_trait]
impl LockingStore for MemoryStore {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        let now = now_ms();
        let mut shard = self.shard(key);
        if shard.lease_holder(key, now).is_some_and(|t| t != token) {
            return Ok(Acquired::Held);
        }
        let lease = Lease {
            token: *token,
            expires_ms: deadline(now, lease),
        };
        shard.leases.insert(key.into(), lease);
        Ok(Acquired::Granted(shard.live(key, now).map(Self::loaded)))
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
        let now = now_ms();
        let mut shard = self.shard(key);
        if shard.lease_holder(key, now) != Some(token) {
            return Ok(Outcome::LeaseLost);
        }
        if let Some(refused) = check(&shard, key, expected, now) {
            return Ok(refused);
        }
        let v = shard.put(key, data, now, ttl, &self.inner)?;
        if then == AfterWrite::Release {
            shard.leases.remove(key);
        }
        Ok(Outcome::Done(Version(v)))
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let now = now_ms();
        let mut shard = self.shard(key);
        if shard.lease_holder(key, now) != Some(token) {
            return Ok(Outcome::LeaseLost);
        }
        if let Some(refused) = check(&shard, key, Some(expected), now) {
            return Ok(refused);
        }
        shard.take(key, &self.inner);
        if then == AfterWrite::Release {
            shard.leases.remove(key);
        }
        Ok(Outcome::Done(()))
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let mut shard = self.shard(key);
        if shard.leases.get(key).is_some_and(|l| l.token == *token) {
            shard.leases.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}
