//! A store wrapper that stops one request at a chosen moment, so that a test can land
//! another request exactly there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sessio::store::{Loaded, Outcome, Store, StoreResult, Version};
use tokio::sync::oneshot;

/// Wraps a store; once [armed](Self::arm), the first `load_fresh` of a key that the
/// filter accepts reads the record, then waits until the test lets it go on. Every other
/// operation goes straight through.
///
/// ```
/// use sessio::store::Store;
/// use sessio::MemoryStore;
/// use sessio_store_tests::pause::PauseAfterFreshRead;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = PauseAfterFreshRead::new(MemoryStore::default(), |key| key.starts_with("a"));
/// let (paused, resume) = store.arm();
/// let reader = store.clone();
/// let read = tokio::spawn(async move { reader.load_fresh("abc").await });
/// paused.await.unwrap(); // the read happened and waits
/// resume.send(()).unwrap();
/// assert!(read.await.unwrap().unwrap().is_none());
/// # });
/// ```
#[derive(Clone)]
pub struct PauseAfterFreshRead<S> {
    store: S,
    filter: fn(&str) -> bool,
    armed: Arc<Mutex<Option<Pause>>>,
}

/// An armed pause: how many matching reads still go through first, then the signal that
/// the read paused and the wait for its go.
type Pause = (usize, oneshot::Sender<()>, oneshot::Receiver<()>);

impl<S> PauseAfterFreshRead<S> {
    /// Wraps `store`; only reads of keys for which `filter` is true may pause.
    pub fn new(store: S, filter: fn(&str) -> bool) -> Self {
        Self {
            store,
            filter,
            armed: Arc::default(),
        }
    }

    /// Arms the pause: the returned receiver fires when a read has paused, and sending on
    /// the returned sender lets it go on.
    pub fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        self.arm_after(0)
    }

    /// Like [`arm`](Self::arm), but the first `skip` matching reads go through and the
    /// next one pauses.
    pub fn arm_after(&self, skip: usize) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (paused_tx, paused_rx) = oneshot::channel();
        let (resume_tx, resume_rx) = oneshot::channel();
        *self.armed.lock().expect("not poisoned") = Some((skip, paused_tx, resume_rx));
        (paused_rx, resume_tx)
    }
}

#[async_trait]
impl<S: Store> Store for PauseAfterFreshRead<S> {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.store.load(key).await
    }
    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let loaded = self.store.load_fresh(key).await;
        let armed = match (self.filter)(key) {
            true => {
                let mut armed = self.armed.lock().expect("not poisoned");
                match armed.as_mut() {
                    Some((skip, _, _)) if *skip > 0 => {
                        *skip -= 1;
                        None
                    }
                    _ => armed.take(),
                }
            }
            false => None,
        };
        if let Some((_, paused, resume)) = armed {
            let _ = paused.send(());
            let _ = resume.await;
        }
        loaded
    }
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        self.store.create(key, data, ttl).await
    }
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        self.store.save(key, expected, data, ttl).await
    }
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        self.store.delete_if(key, expected).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.store.delete(key).await
    }
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.store.touch(key, ttl).await
    }
    fn keeps_live_records(&self) -> bool {
        self.store.keeps_live_records()
    }
}
