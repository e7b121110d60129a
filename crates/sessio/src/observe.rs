//! Tracing of store calls: every call the engine makes to its store runs in a
//! `sessio.store` span (level `debug`) with the store's name, the operation and its
//! outcome, and its latency and errors are counted (see `meter.rs`; the session counters
//! are counted where the engine decides what a call meant). Keys are never recorded: a key
//! is the session's id (or its hash), and a span field outlives the request in whatever
//! collects traces.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument;

use crate::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreResult, Version,
};

/// A store whose calls are traced; the engine wraps its store in one.
pub(crate) struct Observed {
    inner: Arc<dyn Store>,
    name: &'static str,
}

impl Observed {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        let name = inner.name();
        Self { inner, name }
    }
}

/// How a call's result is told in its span's `outcome` field.
trait Told {
    fn told(&self) -> &'static str;
}

impl Told for Option<Loaded> {
    fn told(&self) -> &'static str {
        if self.is_some() {
            "found"
        } else {
            "absent"
        }
    }
}

impl<T> Told for Outcome<T> {
    fn told(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Conflict => "conflict",
            Outcome::Missing => "missing",
            Outcome::LeaseLost => "lease_lost",
        }
    }
}

impl Told for bool {
    fn told(&self) -> &'static str {
        if *self {
            "done"
        } else {
            "missing"
        }
    }
}

impl Told for Acquired {
    fn told(&self) -> &'static str {
        match self {
            Acquired::Granted(_) => "granted",
            Acquired::Held => "held",
        }
    }
}

impl Told for () {
    fn told(&self) -> &'static str {
        "done"
    }
}

async fn traced<T: Told>(
    store: &'static str,
    op: &'static str,
    call: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let span = tracing::debug_span!("sessio.store", store, op, outcome = tracing::field::Empty);
    let started = Instant::now();
    let result = if span.is_disabled() {
        call.await
    } else {
        call.instrument(span.clone()).await
    };
    let outcome = match &result {
        Ok(value) => value.told(),
        Err(error) => {
            crate::meter::store_error(error.kind());
            crate::meter::kind_label(error.kind())
        }
    };
    span.record("outcome", outcome);
    crate::meter::store_call(store, op, started.elapsed());
    result
}

#[async_trait]
impl Store for Observed {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        traced(self.name, "load", self.inner.load(key)).await
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        traced(self.name, "create", self.inner.create(key, data, ttl)).await
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        traced(self.name, "save", self.inner.save(key, expected, data, ttl)).await
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        traced(self.name, "delete_if", self.inner.delete_if(key, expected)).await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        traced(self.name, "delete", self.inner.delete(key)).await
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        traced(self.name, "touch", self.inner.touch(key, ttl)).await
    }

    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        traced(self.name, "load_fresh", self.inner.load_fresh(key)).await
    }

    fn serves_from_cache(&self) -> bool {
        self.inner.serves_from_cache()
    }

    fn keeps_live_records(&self) -> bool {
        self.inner.keeps_live_records()
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        self.inner.locking().map(|_| self as &dyn LockingStore)
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

impl Observed {
    /// The inner store's lock operations; only called through [`Store::locking`], which
    /// answers `Some` only when the inner store has them.
    fn locks(&self) -> &dyn LockingStore {
        self.inner
            .locking()
            .expect("Observed::locking is Some only for a locking inner store")
    }
}

#[async_trait]
impl LockingStore for Observed {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        traced(
            self.name,
            "acquire",
            self.locks().acquire(key, token, lease),
        )
        .await
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
        let call = self
            .locks()
            .save_locked(key, token, expected, data, ttl, then);
        traced(self.name, "save_locked", call).await
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let call = self.locks().delete_locked(key, token, expected, then);
        traced(self.name, "delete_locked", call).await
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        traced(self.name, "release", self.locks().release(key, token)).await
    }
}
