//! The near cache: recently seen records kept in this process, dropped the moment Redis says
//! they changed.
//!
//! Redis tracks the keys each connection read (`CLIENT TRACKING ON NOLOOP`) and pushes an
//! `invalidate` message on that connection when another client modifies one. Three rules
//! keep the cache from ever holding bytes that Redis no longer has, beyond the delay of that
//! push:
//!
//! 1. **Generations.** A read records its key's generation before the command is sent
//!    and fills the cache only if the generation is unchanged when the reply is in.
//!    Every invalidation, every write of our own and every flush bumps it, so a reply that
//!    raced with any of them is not cached. (Pushes are handled inside the connection's
//!    driver, in stream order, before any later reply is handed out.) A generation is kept
//!    per stripe, one of `SHARDS * STRIPES` picked by the key's hash, rather than per key,
//!    so that keys never cached can be invalidated too. With 4096 stripes, another key's
//!    event rarely refuses a fill: with one counter per shard, about a fifth of the saves
//!    under 32 concurrent requests were refused, and each cost the next request a read.
//! 2. **Own writes.** With `NOLOOP` our own writes send us nothing, and Redis stops
//!    tracking a key once it is modified, so every write script ends with a read of the
//!    key (tracking it again) and the cache takes the bytes it wrote, or forgets the key
//!    when the outcome is not known.
//! 3. **Trust window.** An entry is served only while Redis answered this connection
//!    within the window (a reply proves every earlier push has been handled), and only if
//!    Redis confirmed the entry itself (a read, or our write) within the window, so that a
//!    change that sends no invalidation (`SWAPDB`, a lost push) is served for at most that
//!    long. If the
//!    connection goes silent (a partition without a reset), the cache stops answering and
//!    reads go to Redis, which fails or times out like any other request. A dropped
//!    connection empties the cache at once.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hashbrown::DefaultHashBuilder;
use indexmap::IndexMap;
use sessio::store::Loaded;

const SHARDS: usize = 64;
/// Generation counters per shard.
const STRIPES: usize = 64;

pub(crate) struct NearCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: DefaultHashBuilder,
    /// Byte budget of each shard.
    per_shard: usize,
    trust: Duration,
    origin: Instant,
    /// Nanoseconds after `origin` of the latest reply on the tracked connection, plus one;
    /// 0 = nothing heard since the last flush.
    heard: AtomicU64,
}

struct Shard {
    map: IndexMap<Box<str>, Entry, DefaultHashBuilder>,
    /// Bytes held (see `cost`).
    bytes: usize,
    generations: [u64; STRIPES],
    evictions: u64,
}

struct Entry {
    data: Box<[u8]>,
    expires_at: Option<SystemTime>,
    /// Nanoseconds after `origin` when Redis last confirmed these bytes (a read or our
    /// write). An entry older than the trust window is read again: a change that sends
    /// no invalidation (`SWAPDB`, a lost push) is served for at most that long.
    confirmed: u64,
}

/// What the cache holds for a key.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A record it may serve.
    Hit(Loaded),
    /// An unexpired record it may not serve (unconfirmed within the trust window, or the
    /// connection silent): Redis had the key a moment ago, so the read that replaces it
    /// is tracked at once, in one round trip.
    Stale,
    /// Nothing (or an expired record): the key may not exist in Redis.
    Miss,
}

/// A key's generation, taken before a command is sent.
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    slot: Slot,
    generation: u64,
}

/// Where a key's entry and generation live.
#[derive(Clone, Copy)]
struct Slot {
    shard: usize,
    stripe: usize,
}

/// What one entry costs: key, data, and the map slot and boxes around them.
fn cost(key: &str, data: &[u8]) -> usize {
    key.len() + data.len() + 80
}

impl Shard {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.map.swap_remove(key) {
            self.bytes -= cost(key, &entry.data);
        }
    }
}

impl NearCache {
    /// A cache of at most `max_bytes` (keys, data and bookkeeping).
    pub(crate) fn new(max_bytes: usize, trust: Duration) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: IndexMap::default(),
                        bytes: 0,
                        generations: [0; STRIPES],
                        evictions: 0,
                    })
                })
                .collect(),
            hasher: DefaultHashBuilder::default(),
            per_shard: max_bytes.div_ceil(SHARDS).max(1),
            trust,
            origin: Instant::now(),
            heard: AtomicU64::new(0),
        }
    }

    fn slot_of(&self, key: &[u8]) -> Slot {
        let hash = self.hasher.hash_one(key);
        Slot {
            shard: (hash % SHARDS as u64) as usize,
            stripe: ((hash >> 32) % STRIPES as u64) as usize,
        }
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave it inconsistent (single map calls).
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn trusted(&self) -> bool {
        let heard = self.heard.load(Ordering::Acquire);
        heard != 0 && self.nanos().saturating_sub(heard) <= self.trust.as_nanos() as u64
    }

    /// Redis answered on the tracked connection: every push sent before has been handled.
    pub(crate) fn heard(&self) {
        self.heard.fetch_max(self.nanos(), Ordering::AcqRel);
    }

    /// The cached record under `key`, if it is there, unexpired, and the cache is trusted;
    /// [`Lookup::Stale`] for an entry held but not served: past the trust window (it is
    /// dropped), or the cache not trusted now (it stays, for when Redis is heard again).
    pub(crate) fn get(&self, key: &str, now: SystemTime) -> Lookup {
        let slot = self.slot_of(key.as_bytes());
        let mut shard = self.lock(slot.shard);
        let fresh_since = self.nanos().saturating_sub(self.trust.as_nanos() as u64);
        let trusted = self.trusted();
        match shard.map.get(key) {
            Some(entry)
                if trusted
                    && entry.expires_at.is_none_or(|at| at > now)
                    && entry.confirmed >= fresh_since =>
            {
                Lookup::Hit(Loaded {
                    data: entry.data.to_vec(),
                    version: crate::store::VERSION,
                    expires_at: entry.expires_at,
                })
            }
            Some(entry) => {
                let unexpired = entry.expires_at.is_none_or(|at| at > now);
                // An entry confirmed within the window waits for the connection to be
                // heard again; any other is dropped.
                if !(unexpired && entry.confirmed >= fresh_since) {
                    shard.remove(key);
                }
                if unexpired {
                    Lookup::Stale
                } else {
                    Lookup::Miss
                }
            }
            None => Lookup::Miss,
        }
    }

    /// Whether an entry for `key` is held, served or not: Redis had the key when it last
    /// confirmed the entry.
    pub(crate) fn holds(&self, key: &str) -> bool {
        let slot = self.slot_of(key.as_bytes());
        self.lock(slot.shard).map.contains_key(key)
    }

    fn nanos(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64 + 1
    }

    /// A ticket for a write to `key`, taken before the write is sent.
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        let slot = self.slot_of(key.as_bytes());
        Ticket {
            slot,
            generation: self.lock(slot.shard).generations[slot.stripe],
        }
    }

    /// Caches what a read returned, unless something happened to the key (or to another key
    /// of its stripe) since `ticket`.
    pub(crate) fn fill(&self, key: &str, ticket: Ticket, record: &Loaded) {
        let mut shard = self.lock(ticket.slot.shard);
        if shard.generations[ticket.slot.stripe] == ticket.generation {
            self.insert(&mut shard, key, &record.data, record.expires_at);
        }
    }

    /// Our own write stored `data`: cache it if nothing else happened in the key's stripe
    /// since `ticket`, otherwise drop what we held. Either way later fills from before the
    /// write are refused.
    pub(crate) fn wrote(
        &self,
        key: &str,
        ticket: Ticket,
        data: &[u8],
        expires_at: Option<SystemTime>,
    ) {
        let mut shard = self.lock(ticket.slot.shard);
        let generation = &mut shard.generations[ticket.slot.stripe];
        let unchanged = *generation == ticket.generation;
        *generation += 1;
        if unchanged {
            self.insert(&mut shard, key, data, expires_at);
        } else {
            shard.remove(key);
        }
    }

    /// Drops `key` (changed elsewhere, or by a write of ours whose result we do not cache).
    pub(crate) fn forget(&self, key: &[u8]) {
        let slot = self.slot_of(key);
        let mut shard = self.lock(slot.shard);
        if let Ok(key) = std::str::from_utf8(key) {
            shard.remove(key);
        } else {
            // Our keys are UTF-8; some other client's key cannot be cached here.
        }
        shard.generations[slot.stripe] += 1;
    }

    /// Drops everything and distrusts the cache until Redis answers again.
    pub(crate) fn flush(&self) {
        self.heard.store(0, Ordering::Release);
        for index in 0..SHARDS {
            let mut shard = self.lock(index);
            shard.map.clear();
            shard.bytes = 0;
            for generation in &mut shard.generations {
                *generation += 1;
            }
        }
    }

    fn insert(&self, shard: &mut Shard, key: &str, data: &[u8], expires_at: Option<SystemTime>) {
        shard.remove(key);
        let size = cost(key, data);
        if size > self.per_shard {
            // Too large for this cache: read from Redis every time.
            return;
        }
        while shard.bytes + size > self.per_shard && !shard.map.is_empty() {
            // Evict a pseudo-random entry: cheap, and fair enough for a cache of hot sessions.
            shard.evictions += 1;
            let victim = (self.hasher.hash_one(shard.evictions) % shard.map.len() as u64) as usize;
            if let Some((k, e)) = shard.map.swap_remove_index(victim) {
                shard.bytes -= cost(&k, &e.data);
            }
        }
        shard.bytes += size;
        shard.map.insert(
            key.into(),
            Entry {
                data: data.into(),
                expires_at,
                confirmed: self.nanos(),
            },
        );
    }

    /// Bytes cached now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).bytes).sum()
    }

    /// Entries cached now (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &[u8]) -> Loaded {
        Loaded {
            data: data.to_vec(),
            version: crate::store::VERSION,
            expires_at: None,
        }
    }

    fn hit(cache: &NearCache, key: &str) -> Option<Vec<u8>> {
        match cache.get(key, SystemTime::now()) {
            Lookup::Hit(record) => Some(record.data),
            Lookup::Stale | Lookup::Miss => None,
        }
    }

    /// The ticket of a read that missed.
    fn ticket(cache: &NearCache, key: &str) -> Ticket {
        assert_eq!(hit(cache, key), None, "expected a miss");
        cache.ticket(key)
    }

    #[test]
    fn serves_only_while_redis_was_heard_recently() {
        let cache = NearCache::new(1 << 20, Duration::from_millis(50));
        let t = ticket(&cache, "k");
        cache.fill("k", t, &record(b"v"));
        assert_eq!(hit(&cache, "k"), None, "nothing heard yet: not trusted");
        cache.heard();
        assert_eq!(hit(&cache, "k").as_deref(), Some(&b"v"[..]));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(hit(&cache, "k"), None, "silent for longer than the window");
        cache.heard();
        let t = ticket(&cache, "k");
        cache.fill("k", t, &record(b"v"));
        assert_eq!(hit(&cache, "k").as_deref(), Some(&b"v"[..]));
        cache.flush();
        cache.heard();
        assert_eq!(hit(&cache, "k"), None, "a flush empties the cache");
    }

    /// A change that sends no invalidation (SWAPDB) is served for at most the window:
    /// an entry Redis has not confirmed for that long is read again.
    #[test]
    fn entries_older_than_the_window_are_read_again() {
        let cache = NearCache::new(1 << 20, Duration::from_millis(50));
        cache.heard();
        let t = ticket(&cache, "k");
        cache.fill("k", t, &record(b"v"));
        std::thread::sleep(Duration::from_millis(80));
        cache.heard(); // other traffic keeps the connection trusted
        assert_eq!(
            hit(&cache, "k"),
            None,
            "an unconfirmed entry outlived the window"
        );
        let write = cache.ticket("k");
        cache.wrote("k", write, b"v2", None);
        assert_eq!(
            hit(&cache, "k").as_deref(),
            Some(&b"v2"[..]),
            "our write confirms it"
        );
    }

    #[test]
    fn a_reply_that_raced_with_an_invalidation_is_not_cached() {
        let cache = NearCache::new(1 << 20, Duration::from_secs(5));
        cache.heard();
        let t = ticket(&cache, "k");
        cache.forget(b"k"); // the push arrived while the read was in flight
        cache.fill("k", t, &record(b"old"));
        assert_eq!(hit(&cache, "k"), None);
    }

    #[test]
    fn an_event_for_another_key_of_the_shard_does_not_refuse_a_fill() {
        let cache = NearCache::new(1 << 20, Duration::from_secs(5));
        cache.heard();
        let mine = cache.slot_of(b"k");
        let neighbour = (0..)
            .map(|i| format!("n{i}"))
            .find(|n| {
                let slot = cache.slot_of(n.as_bytes());
                slot.shard == mine.shard && slot.stripe != mine.stripe
            })
            .expect("some key shares the shard but not the stripe");
        let read = ticket(&cache, "k");
        let write = cache.ticket("k");
        cache.forget(neighbour.as_bytes());
        cache.fill("k", read, &record(b"v1"));
        assert_eq!(hit(&cache, "k").as_deref(), Some(&b"v1"[..]));
        cache.wrote("k", write, b"v2", None);
        assert_eq!(hit(&cache, "k").as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn a_read_older_than_our_own_write_is_not_cached() {
        let cache = NearCache::new(1 << 20, Duration::from_secs(5));
        cache.heard();
        let read = ticket(&cache, "k");
        let write = cache.ticket("k");
        cache.wrote("k", write, b"new", None);
        cache.fill("k", read, &record(b"old"));
        assert_eq!(hit(&cache, "k").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_write_that_raced_drops_the_entry() {
        let cache = NearCache::new(1 << 20, Duration::from_secs(5));
        cache.heard();
        let t = ticket(&cache, "k");
        cache.fill("k", t, &record(b"v1"));
        let write = cache.ticket("k");
        cache.forget(b"k");
        let t = ticket(&cache, "k");
        cache.fill("k", t, &record(b"v2"));
        cache.wrote("k", write, b"v3", None);
        assert_eq!(
            hit(&cache, "k"),
            None,
            "outcome order unknown: nothing cached"
        );
    }

    #[test]
    fn expired_entries_are_not_served_and_size_is_bounded() {
        let cache = NearCache::new(64 * 1024, Duration::from_secs(5));
        cache.heard();
        let t = ticket(&cache, "gone");
        cache.fill(
            "gone",
            t,
            &Loaded {
                expires_at: Some(SystemTime::now() - Duration::from_secs(1)),
                ..record(b"v")
            },
        );
        assert_eq!(hit(&cache, "gone"), None);
        for i in 0..10_000 {
            let key = format!("k{i}");
            let t = ticket(&cache, &key);
            cache.fill(&key, t, &record(b"v"));
        }
        assert!(cache.bytes() <= 64 * 1024, "{} bytes", cache.bytes());
        assert!(
            cache.len() > 100,
            "the budget holds many small entries: {}",
            cache.len()
        );
        // An entry larger than a shard's budget is not cached at all.
        let big = vec![0u8; 64 * 1024];
        let t = ticket(&cache, "big");
        cache.fill("big", t, &record(&big));
        assert_eq!(hit(&cache, "big"), None);
        assert!(cache.bytes() <= 64 * 1024);
    }
}
