//! The store contract: opaque bytes under a key, with an expiry.
//!
//! A store knows nothing about sessions. It keeps bytes under a key until an expiry, and
//! offers the few conditional operations the engine needs to stay correct when requests
//! race: create-if-absent, compare-and-swap, touch, and (optionally, through
//! [`LockingStore`]) a lease-based lock whose holder's saves are fenced by its token.
//!
//! Every operation must tell "absent" (`Ok(None)`, `Ok(false)`, [`Saved::Missing`]) apart
//! from "failed" (`Err`). The engine never turns an `Err` into "no session".
//!
//! Stores should do each operation in one round trip where the backend allows it (a Lua
//! script on Redis, `gets`/`cas`/`add` on Memcached, a conditional update on MongoDB).
//! The [`sessio-store-tests`](https://docs.rs/sessio-store-tests) crate holds the
//! conformance suite every store must pass.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A store-defined token that changes whenever the bytes under a key are written.
///
/// The engine hands it back unchanged in [`Store::save`]. Stores that compare on the
/// loaded bytes instead may set it to anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u64);

/// A record as read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The bytes last written under the key.
    pub data: Vec<u8>,
    /// The version of those bytes; passed back to [`Store::save`] for compare-and-swap.
    pub version: Version,
    /// When the record expires, if the store can tell. The engine treats a record whose
    /// expiry has passed as absent, even if the store has not reaped it yet, and uses the
    /// expiry to throttle [`Store::touch`].
    pub expires_at: Option<SystemTime>,
}

/// What a conditional save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The bytes were written; this is their new version.
    Stored(Version),
    /// The record changed since it was loaded; nothing was written.
    Conflict,
    /// The record no longer exists (deleted or expired); nothing was written.
    Missing,
}

/// The session store interface: five operations over opaque bytes.
///
/// Implementations must be cheap to share (`Send + Sync`) and must never report an error as
/// absence. TTLs are whole milliseconds; stores with coarser clocks round up.
///
/// The engine calls a store through `Arc<dyn Store>`, so the trait is object safe.
///
/// ```
/// use sessio::{MemoryStore, Store};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::default();
/// assert!(store.load("k").await?.is_none());
/// store.create("k", b"bytes", Duration::from_secs(60)).await?.expect("k was absent");
/// assert!(store.create("k", b"other", Duration::from_secs(60)).await?.is_none(), "no overwrite");
/// assert_eq!(store.load("k").await?.unwrap().data, b"bytes");
/// # Ok::<(), sessio::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads the record under `key`; `Ok(None)` when there is none or it has expired.
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>>;

    /// Writes `data` under `key` only if no record exists there.
    ///
    /// Returns the new version, or `Ok(None)` if a record already exists (an id
    /// collision); an existing record is never overwritten.
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Option<Version>>;

    /// Replaces the record under `key` only if it is still the one described by `expected`
    /// (compare-and-swap), and sets its expiry to `ttl` from now.
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Saved>;

    /// Sets the expiry of an existing record to `ttl` from now without rewriting it.
    ///
    /// Returns `false` if there is no live record: touch never revives an expired one.
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool>;

    /// Deletes the record under `key`; deleting nothing is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// The store's lock operations, if it has them. Stores that implement
    /// [`LockingStore`] return `Some(self)`.
    fn locking(&self) -> Option<&dyn LockingStore> {
        None
    }
}

/// A lease holder's secret, 128 random bits. Saves made under a lease carry it, and the
/// store refuses them once another holder has the lease (fencing).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken([u8; 16]);

impl LeaseToken {
    /// A fresh random token.
    ///
    /// # Errors
    /// [`crate::Error::Random`] if the OS random number generator fails.
    pub fn generate() -> Result<Self, crate::Error> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(crate::Error::Random)?;
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

/// What a save under a lease did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    /// Written (or deleted) while our lease was still held; for a save, the new version.
    Done(Option<Version>),
    /// Our lease expired and may be held by someone else; nothing was written.
    LeaseLost,
}

/// The optional lock ability of a store: a lease per key, acquired together with a read.
///
/// The lease lives beside the record (its own key or fields), so a session can be locked
/// before it exists. A lease expires by itself after its TTL, so a crashed holder blocks
/// others for at most that long.
#[async_trait]
pub trait LockingStore: Store {
    /// Takes the lease on `key` for `lease` if nobody else holds a live one, and returns
    /// the record in the same round trip.
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired>;

    /// Writes `data` under `key` (creating it if absent) only while `token` holds the
    /// lease, and releases the lease in the same round trip if `release` is set.
    async fn save_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        data: &[u8],
        ttl: Duration,
        release: bool,
    ) -> StoreResult<Fenced>;

    /// Deletes the record under `key` and releases the lease, only while `token` holds it.
    async fn delete_locked(&self, key: &str, token: &LeaseToken) -> StoreResult<Fenced>;

    /// Releases the lease if `token` still holds it (compare-and-delete). Returns whether
    /// it did.
    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool>;
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or refused the connection.
    Unavailable,
    /// The store did not answer within the configured timeout.
    Timeout,
    /// The store is full and its policy is to refuse new records.
    Full,
    /// The store answered something the client could not understand.
    Protocol,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "session store unavailable",
            Self::Timeout => "session store timed out",
            Self::Full => "session store full",
            Self::Protocol => "unexpected answer from the session store",
        })
    }
}

/// A store operation failed. This is never "absent": the engine reports it to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A new error of `kind`, with a message that says what to check.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error (a driver's, an I/O error).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}
