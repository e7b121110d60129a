//! A store wrapper that applies one operation at a time, for test servers that do not make
//! a write atomic against concurrent writes.

use std::time::Duration;

use async_trait::async_trait;
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreResult, Version,
};
use tokio::sync::Mutex;

/// Runs every operation of the wrapped store alone, one after another.
///
/// MongoDB applies each write to one document atomically, and `sessio-mongodb` relies on
/// that. PoloDB, the only MongoDB-wire-compatible server installable where sessio is
/// developed, does not: two concurrent conditional updates of one document can both match.
/// Wrapping the store in `Serialized` gives the test server that atomicity on the client
/// side, so the conformance suite still checks every filter, version and duplicate-key rule
/// of the store, while requests still interleave between operations (a load and the save
/// based on it remain separate, so conflicts still happen and must be caught).
#[derive(Debug)]
pub struct Serialized<S> {
    store: S,
    one_at_a_time: std::sync::Arc<Mutex<()>>,
}

impl<S: Clone> Clone for Serialized<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            one_at_a_time: self.one_at_a_time.clone(),
        }
    }
}

impl<S> Serialized<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            one_at_a_time: Default::default(),
        }
    }
}

#[async_trait]
impl<S: LockingStore> Store for Serialized<S> {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.load(key).await
    }
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.create(key, data, ttl).await
    }
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.save(key, expected, data, ttl).await
    }
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.delete_if(key, expected).await
    }
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.touch(key, ttl).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.delete(key).await
    }
    fn keeps_live_records(&self) -> bool {
        self.store.keeps_live_records()
    }
    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

#[async_trait]
impl<S: LockingStore> LockingStore for Serialized<S> {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.acquire(key, token, lease).await
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
        let _turn = self.one_at_a_time.lock().await;
        self.store
            .save_locked(key, token, expected, data, ttl, then)
            .await
    }
    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.delete_locked(key, token, expected, then).await
    }
    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let _turn = self.one_at_a_time.lock().await;
        self.store.release(key, token).await
    }
}
