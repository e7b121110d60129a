//! The store contract: opaque bytes under a key, with an expiry.
//!
//! A store knows nothing about sessions. It keeps bytes under a key until an expiry and
//! offers the few conditional operations the engine needs to stay correct when requests
//! race. Ids, cookies, expiry rules, codecs and the merge of concurrent changes all live in
//! the engine, above the store.
//!
//! # Implementing a store
//!
//! [`Store`] has six operations; [`LockingStore`] adds four for the session lock. Every
//! one of them is a single atomic step on the backend (one round trip where it allows:
//! a Lua script on Redis, a conditional `UPDATE` in SQL, a CAS in Memcached). The rules:
//!
//! - Tell "absent" apart from "failed": a missing record is `Ok(None)` or
//!   [`Outcome::Missing`]; only a failure is `Err`. The engine never turns an `Err` into
//!   "no session".
//! - Conditional writes compare with what was loaded ([`Loaded::version`], or the bytes)
//!   and never create a record that is not there: that is what keeps a logged-out
//!   session logged out.
//! - Writes under a lease ([`LockingStore`]) are conditional too, and are refused with
//!   [`Outcome::LeaseLost`] once the lease is not the caller's.
//! - TTLs are whole milliseconds; a store with a coarser clock rounds up.
//! - Bound every operation by a timeout ([`support::within`]) so that a stuck backend is an
//!   error, not a hang.
//!
//! The crate `sessio-store-tests` holds the conformance suite every store must pass. Here
//! is a whole store, a map behind a mutex, that passes it:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//!
//! use sessio::store::{Loaded, Outcome, Store, StoreResult, Version};
//!
//! #[derive(Default)]
//! struct MapStore {
//!     records: Mutex<HashMap<String, (Vec<u8>, u64, Instant)>>,
//!     versions: std::sync::atomic::AtomicU64,
//! }
//!
//! impl MapStore {
//!     fn next(&self) -> u64 {
//!         self.versions.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
//!     }
//!     /// The live record under `key`, dropping an expired one.
//!     fn live<'a>(
//!         map: &'a mut HashMap<String, (Vec<u8>, u64, Instant)>,
//!         key: &str,
//!     ) -> Option<&'a mut (Vec<u8>, u64, Instant)> {
//!         if map.get(key).is_some_and(|r| r.2 <= Instant::now()) {
//!             map.remove(key);
//!         }
//!         map.get_mut(key)
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl Store for MapStore {
//!     async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
//!         let mut map = self.records.lock().unwrap();
//!         Ok(Self::live(&mut map, key).map(|(data, v, _)| Loaded {
//!             data: data.clone(),
//!             version: Version(*v),
//!             expires_at: None,
//!         }))
//!     }
//!     async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
//!         let mut map = self.records.lock().unwrap();
//!         if Self::live(&mut map, key).is_some() {
//!             return Ok(Outcome::Conflict);
//!         }
//!         let v = self.next();
//!         map.insert(key.into(), (data.to_vec(), v, Instant::now() + ttl));
//!         Ok(Outcome::Done(Version(v)))
//!     }
//!     async fn save(&self, key: &str, expected: &Loaded, data: &[u8], ttl: Duration)
//!         -> StoreResult<Outcome<Version>> {
//!         let v = self.next();
//!         let mut map = self.records.lock().unwrap();
//!         Ok(match Self::live(&mut map, key) {
//!             None => Outcome::Missing,
//!             Some(r) if r.1 != expected.version.0 => Outcome::Conflict,
//!             Some(r) => {
//!                 *r = (data.to_vec(), v, Instant::now() + ttl);
//!                 Outcome::Done(Version(v))
//!             }
//!         })
//!     }
//!     async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
//!         let mut map = self.records.lock().unwrap();
//!         Ok(match Self::live(&mut map, key) {
//!             None => Outcome::Missing,
//!             Some(r) if r.1 != expected.version.0 => Outcome::Conflict,
//!             Some(_) => {
//!                 map.remove(key);
//!                 Outcome::Done(())
//!             }
//!         })
//!     }
//!     async fn delete(&self, key: &str) -> StoreResult<()> {
//!         self.records.lock().unwrap().remove(key);
//!         Ok(())
//!     }
//!     async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
//!         let mut map = self.records.lock().unwrap();
//!         Ok(Self::live(&mut map, key).map(|r| r.2 = Instant::now() + ttl).is_some())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let manager = sessio::SessionManager::new(MapStore::default(), sessio::Config::default())?;
//! let session = manager.session(std::iter::empty());
//! session.insert("hello", "world").await?;
//! assert!(session.commit().await?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Implementing the lock
//!
//! The lock is an optional ability, a trait of its own: a store that can hold a lease
//! implements [`LockingStore`] and returns `Some(self)` from [`Store::locking`]; the rest
//! of the engine works without it, and [`Session::lock`](crate::Session::lock) then
//! answers [`Error::LockUnsupported`](crate::Error::LockUnsupported). What a
//! `LockingStore` must hold to:
//!
//! - **Where the lease lives.** Beside the record and apart from it: a token and a
//!   deadline per key, with their own expiry (the lease duration), not the record's TTL.
//!   A lease must be possible on a key with no record (a lock taken on a new session, or
//!   on one a logout just deleted) and must outlive a delete of the record, so that a
//!   logout racing a locked section cannot hand the key to another holder. The
//!   [`MemoryStore`](crate::MemoryStore) keeps leases in a map of their own beside the
//!   records; the SQL stores in two columns of the record's row (a row without data for a
//!   lease alone); Redis under a key of its own; Memcached in the same item.
//! - **Acquire and read together.** [`LockingStore::acquire`] takes the lease only if no
//!   other live lease is there (taking our own again extends it) and returns the record
//!   as it is at that moment, in the same atomic step, so that the holder's view cannot
//!   be older than its lease.
//! - **Fencing.** Every write under a lease ([`LockingStore::save_locked`],
//!   [`LockingStore::delete_locked`]) checks, in one atomic step with the write, that the
//!   lease is still the caller's and still live *and* that the record is still the one the
//!   caller expects. A lapsed lease answers [`Outcome::LeaseLost`] (also when the version
//!   check fails too), never a write: a holder that stalled past its lease cannot
//!   overwrite the next holder's work.
//! - **[`AfterWrite::Release`].** Ends the lease in the same step as a write that is
//!   done; a write that is refused leaves the lease as it was (the engine then releases it
//!   with [`LockingStore::release`], a compare-and-delete on the token).
//!
//! [`MemoryStore`](crate::MemoryStore) is the reference implementation (`memory.rs`); the
//! conformance crate's `locking_suite!` checks all of the above on a real backend,
//! across two managers.
pub mod support;
mod write_through;

pub use write_through::WriteThrough;

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use crate::error::{StoreError, StoreErrorKind};

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A store-defined token that changes whenever the bytes under a key are written.
///
/// The engine hands it back unchanged in conditional writes. Stores that compare on the
/// loaded bytes instead may set it to anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u64);

/// A record as read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The bytes last written under the key.
    pub data: Vec<u8>,
    /// The version of those bytes; passed back to conditional writes.
    pub version: Version,
    /// When the record expires, if the store can tell. The engine treats a record whose
    /// expiry has passed as absent, even if the store has not reaped it yet, and uses the
    /// expiry to throttle [`Store::touch`].
    pub expires_at: Option<SystemTime>,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome<T> {
    /// Written (or deleted); for a write, the new version.
    Done(T),
    /// Nothing was written: the record is not the one expected (it changed since it was
    /// loaded, or, for a create, a record already exists).
    Conflict,
    /// Nothing was written: there is no live record (deleted, expired, never created).
    Missing,
    /// Nothing was written: the caller's lease lapsed and may be held by someone else.
    /// Only [`LockingStore`] operations answer this.
    LeaseLost,
}

impl<T> Outcome<T> {
    /// Maps the value of a done write.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(t) => Outcome::Done(f(t)),
            Outcome::Conflict => Outcome::Conflict,
            Outcome::Missing => Outcome::Missing,
            Outcome::LeaseLost => Outcome::LeaseLost,
        }
    }
}

/// The session store interface: six operations over opaque bytes.
///
/// Implementations must be cheap to share (`Send + Sync`) and must never report an error as
/// absence. The engine calls a store through `Arc<dyn Store>`, so the trait is object safe.
/// See the [module docs](self) for the rules and a complete example.
///
/// ```
/// use sessio::store::{Outcome, Store};
/// use sessio::MemoryStore;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::default();
/// assert!(store.load("k").await?.is_none());
/// assert!(matches!(store.create("k", b"bytes", Duration::from_secs(60)).await?, Outcome::Done(_)));
/// assert_eq!(store.create("k", b"other", Duration::from_secs(60)).await?, Outcome::Conflict);
/// assert_eq!(store.load("k").await?.unwrap().data, b"bytes");
/// # Ok::<(), sessio::store::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads the record under `key`; `Ok(None)` when there is none or it has expired.
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>>;

    /// Writes `data` under `key` only if no live record exists there.
    ///
    /// [`Outcome::Done`] with the new version, or [`Outcome::Conflict`] if a record is
    /// already there (an id collision); an existing record is never overwritten.
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>>;

    /// Replaces the record under `key` only if it is still the one described by `expected`
    /// (compare-and-swap), and sets its expiry to `ttl` from now.
    ///
    /// [`Outcome::Conflict`] if it changed, [`Outcome::Missing`] if it is gone: a save
    /// never creates a record.
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>>;

    /// Deletes the record under `key` only if it is still the one described by `expected`.
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>>;

    /// Deletes the record under `key` whatever it holds (a logout); deleting nothing is not
    /// an error. A lease on the key, if any, is left to lapse or be released.
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// Sets the expiry of an existing record to `ttl` from now without rewriting it.
    ///
    /// Returns `false` if there is no live record: touch never revives an expired one.
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool>;

    /// Reads the record under `key` from the authoritative copy, bypassing any cache the
    /// store keeps in this process. The engine calls it when the client proves that a
    /// newer write exists than the one a cache returned (read-your-writes). The default
    /// is [`load`](Self::load).
    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.load(key).await
    }

    /// Whether [`load`](Self::load) may answer from a cache in this process that another
    /// process's write reaches only later (the Redis near cache). The engine then keeps a
    /// write count in the cookie, and a client whose cookie shows a newer write than the
    /// cached copy is read with [`load_fresh`](Self::load_fresh): read-your-writes across
    /// processes. Default `false`.
    fn serves_from_cache(&self) -> bool {
        false
    }

    /// Whether a live record stays until it expires or is deleted. A cache that may drop
    /// live records to make room (Memcached) answers `false`, and the user's sessions
    /// index ([`Config::with_devices`](crate::Config::with_devices)) refuses
    /// it: an index dropped under the sessions it lists would end them all. Default
    /// `true`; a store that wraps another answers what the inner store answers.
    fn keeps_live_records(&self) -> bool {
        true
    }

    /// The store's lock operations, if it has them. Stores that implement
    /// [`LockingStore`] return `Some(self)`.
    fn locking(&self) -> Option<&dyn LockingStore> {
        None
    }

    /// The store's name in traces (the `store` field of each `sessio.store` span). The
    /// default is the implementing type's path, such as `sessio_redis::RedisStore`.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// A lease holder's secret, 128 random bits. Writes made under a lease carry it, and the
/// store refuses them once another holder has the lease (fencing).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken([u8; 16]);

impl LeaseToken {
    /// A fresh random token.
    ///
    /// # Errors
    /// [`crate::error::Error::Random`] if the OS random number generator fails.
    pub fn generate() -> Result<Self, crate::error::Error> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(crate::error::Error::Random)?;
        Ok(Self(raw))
    }

    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The token as 32 lowercase hex digits, for stores that keep strings.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseToken(<redacted>)")
    }
}

/// The answer to [`LockingStore::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is ours; this is the record as it is now (`None` if absent).
    Granted(Option<Loaded>),
    /// Someone else holds a live lease.
    Held,
}

/// What happens to the lease after a successful write under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrite {
    /// The caller goes on holding the lease.
    KeepLease,
    /// The lease is released in the same step as the write (only if the write is done).
    Release,
}

/// The optional lock ability of a store: a lease per key, acquired together with a read.
///
/// The lease lives beside the record (its own key or fields), so a session can be locked
/// before it exists, and no plain operation of [`Store`] changes it. A lease expires by
/// itself after its TTL, so a crashed holder blocks others for at most that long.
///
/// Writes under a lease are conditional exactly like [`Store::save`] and
/// [`Store::delete_if`] (the lock excludes other lock holders, not plain writers), and are
/// refused with [`Outcome::LeaseLost`] when the lease is not the caller's. A lease check
/// and a version check that both fail answer `LeaseLost`.
#[async_trait]
pub trait LockingStore: Store {
    /// Takes the lease on `key` for `lease` if nobody else holds a live one (re-taking our
    /// own extends it), and returns the record in the same round trip.
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired>;

    /// While `token` holds the lease: writes `data` under `key` if the record is still
    /// `expected` (`None`: only if there is no live record, i.e. a create).
    #[allow(clippy::too_many_arguments)]
    async fn save_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: Option<&Loaded>,
        data: &[u8],
        ttl: Duration,
        then: AfterWrite,
    ) -> StoreResult<Outcome<Version>>;

    /// While `token` holds the lease: deletes the record under `key` if it is still
    /// `expected`.
    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>>;

    /// Releases the lease if `token` still holds it (compare-and-delete). Returns whether
    /// it did.
    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool>;
}
