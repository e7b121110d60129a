//! A primary store that serves every read, and write-only secondaries that receive a copy
//! of every write (for durability, audit, or a warm standby).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreResult, Version,
};

/// A store made of a primary and write-only secondaries: itself a [`Store`] (and a
/// [`LockingStore`] when the primary is one).
///
/// - **The primary is the authority.** Every read, every condition (compare-and-swap,
///   leases) and every answer comes from it; the secondaries are never read.
/// - **What a secondary sees, and when.** After the primary has *done* a write, and before
///   the request goes on, each secondary in turn receives it: the record's new bytes and TTL
///   for a create or a save (plain or under the lock, a rotation's forward included), a
///   delete for a delete, a new TTL for a touch. A write the primary refused (conflict,
///   missing, lease lost) reaches no secondary; neither do lease operations. The copy is
///   unconditional (the secondary takes the primary's word), so a secondary holds the last
///   bytes written through *any* process; two processes writing one session at the same
///   moment may reach a secondary in either order, which the next write of that session
///   settles.
/// - **A failing secondary** is logged (`tracing`, warning) and counted
///   ([`failures`](Self::failures)) and, by default, does not fail the request: the primary
///   has the write. With [`required`](Self::required) its error is the request's error:
///   for a create or a save the primary has the write all the same, so a retry is safe; a
///   delete (a logout, a clear) goes to the secondaries *first*, so that a failing one
///   stops it before the primary ends the session: a logout either happens everywhere or
///   fails with the session still logged in. (A delete the primary then refuses, because
///   the record changed meanwhile, leaves the secondaries without their copy until the
///   session's next write.)
///
/// ```
/// use sessio::store::{Store, WriteThrough};
/// use sessio::MemoryStore;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let primary = MemoryStore::default();
/// let audit = MemoryStore::default();
/// let store = WriteThrough::new(primary.clone()).with_secondary(audit.clone());
/// let _ = store.create("k", b"v1", Duration::from_secs(60)).await?;
/// assert_eq!(audit.load("k").await?.unwrap().data, b"v1");
/// store.delete("k").await?;
/// assert!(audit.load("k").await?.is_none());
/// # Ok::<(), sessio::store::StoreError>(())
/// # }).unwrap();
/// ```
///
/// Clones share the primary, the secondaries and the failure counts.
#[derive(Clone)]
pub struct WriteThrough {
    primary: Arc<dyn Store>,
    secondaries: Vec<Arc<Secondary>>,
    required: bool,
}

struct Secondary {
    store: Arc<dyn Store>,
    failures: AtomicU64,
}

impl std::fmt::Debug for WriteThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteThrough")
            .field("secondaries", &self.secondaries.len())
            .field("required", &self.required)
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

/// One step of copying a write to a secondary.
enum Mirror<'a> {
    Write(&'a [u8], Duration),
    Delete,
    Touch(Duration),
}

/// How often a copy retries when the secondary's record changes under it (another
/// process copying the same session).
const COPY_ATTEMPTS: usize = 8;

impl WriteThrough {
    /// `primary` alone, to which secondaries are added.
    pub fn new(primary: impl Store) -> Self {
        Self::from_arc(Arc::new(primary))
    }

    /// Like [`new`](Self::new), for a primary already behind an `Arc`.
    pub fn from_arc(primary: Arc<dyn Store>) -> Self {
        Self {
            primary,
            secondaries: Vec::new(),
            required: false,
        }
    }

    /// Adds a write-only secondary.
    #[must_use]
    pub fn with_secondary(self, secondary: impl Store) -> Self {
        self.with_secondary_arc(Arc::new(secondary))
    }

    /// Adds a write-only secondary already behind an `Arc`.
    #[must_use]
    pub fn with_secondary_arc(mut self, secondary: Arc<dyn Store>) -> Self {
        self.secondaries.push(Arc::new(Secondary {
            store: secondary,
            failures: AtomicU64::new(0),
        }));
        self
    }

    /// `true`: a secondary's failure fails the request (after the primary has the write).
    /// Default `false`: it is logged and counted only.
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// How many copies failed, per secondary, in the order they were added.
    pub fn failures(&self) -> Vec<u64> {
        self.secondaries
            .iter()
            .map(|s| s.failures.load(Ordering::Relaxed))
            .collect()
    }

    /// Copies a write the primary has done to every secondary.
    async fn copy(&self, key: &str, what: Mirror<'_>) -> StoreResult<()> {
        let mut first_error = None;
        for (i, secondary) in self.secondaries.iter().enumerate() {
            if let Err(error) = copy_to(secondary.store.as_ref(), key, &what).await {
                secondary.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(secondary = i, %error, required = self.required, "a secondary session store did not take a write");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) if self.required => Err(error),
            _ => Ok(()),
        }
    }

    /// Copies the write if the primary did it.
    async fn after<T>(
        &self,
        key: &str,
        outcome: Outcome<T>,
        what: Mirror<'_>,
    ) -> StoreResult<Outcome<T>> {
        if let Outcome::Done(_) = outcome {
            self.copy(key, what).await?;
        }
        Ok(outcome)
    }

    fn primary_locking(&self) -> StoreResult<&dyn LockingStore> {
        self.primary
            .locking()
            .ok_or_else(|| StoreError::protocol("the primary store has no lock ability"))
    }
}

/// Writes `what` under `key` in `store` whatever it holds there.
async fn copy_to(store: &dyn Store, key: &str, what: &Mirror<'_>) -> StoreResult<()> {
    match what {
        Mirror::Delete => store.delete(key).await,
        Mirror::Touch(ttl) => store.touch(key, *ttl).await.map(|_| ()),
        Mirror::Write(data, ttl) => {
            for _ in 0..COPY_ATTEMPTS {
                let outcome = match store.load_fresh(key).await? {
                    None => store.create(key, data, *ttl).await?,
                    Some(old) => store.save(key, &old, data, *ttl).await?,
                };
                if let Outcome::Done(_) = outcome {
                    return Ok(());
                }
            }
            Err(StoreError::protocol(format!(
                "the secondary's record kept changing during {COPY_ATTEMPTS} attempts to copy a write"
            )))
        }
    }
}

#[async_trait]
impl Store for WriteThrough {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.primary.load(key).await
    }
    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.primary.load_fresh(key).await
    }
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let outcome = self.primary.create(key, data, ttl).await?;
        self.after(key, outcome, Mirror::Write(data, ttl)).await
    }
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let outcome = self.primary.save(key, expected, data, ttl).await?;
        self.after(key, outcome, Mirror::Write(data, ttl)).await
    }
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        if self.required {
            self.copy(key, Mirror::Delete).await?;
            return self.primary.delete_if(key, expected).await;
        }
        let outcome = self.primary.delete_if(key, expected).await?;
        self.after(key, outcome, Mirror::Delete).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        if self.required {
            self.copy(key, Mirror::Delete).await?;
            return self.primary.delete(key).await;
        }
        self.primary.delete(key).await?;
        self.copy(key, Mirror::Delete).await
    }
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let touched = self.primary.touch(key, ttl).await?;
        if touched {
            self.copy(key, Mirror::Touch(ttl)).await?;
        }
        Ok(touched)
    }
    fn serves_from_cache(&self) -> bool {
        self.primary.serves_from_cache()
    }
    fn keeps_live_records(&self) -> bool {
        self.primary.keeps_live_records()
    }
    fn locking(&self) -> Option<&dyn LockingStore> {
        self.primary.locking().map(|_| self as &dyn LockingStore)
    }
}

#[async_trait]
impl LockingStore for WriteThrough {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        self.primary_locking()?.acquire(key, token, lease).await
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
        let outcome = self
            .primary_locking()?
            .save_locked(key, token, expected, data, ttl, then)
            .await?;
        self.after(key, outcome, Mirror::Write(data, ttl)).await
    }
    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        if self.required {
            self.copy(key, Mirror::Delete).await?;
            return self
                .primary_locking()?
                .delete_locked(key, token, expected, then)
                .await;
        }
        let outcome = self
            .primary_locking()?
            .delete_locked(key, token, expected, then)
            .await?;
        self.after(key, outcome, Mirror::Delete).await
    }
    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        self.primary_locking()?.release(key, token).await
    }
}
