//! Write-through secondaries: the combined store passes the whole conformance suite; a
//! secondary receives every write the primary did, and only those; a failing secondary
//! is counted and, unless required, does not fail the request.

use std::time::Duration;

use async_trait::async_trait;
use sessio::store::{Loaded, Outcome, Store, StoreError, StoreResult, Version, WriteThrough};
use sessio::{Config, MemoryStore, SessionManager};
use sessio_store_tests::{Fixture, Timing};

async fn memory_with_secondary() -> Fixture<WriteThrough> {
    Fixture::new(WriteThrough::new(MemoryStore::default()).with_secondary(MemoryStore::default()))
}

mod conformance {
    use super::*;
    sessio_store_tests::basic_suite!(memory_with_secondary, Timing::FAST);
    sessio_store_tests::locking_suite!(memory_with_secondary, Timing::FAST);
    sessio_store_tests::devices_suite!(memory_with_secondary, Timing::FAST);
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The records of a memory store, as key → bytes, for comparing primary and secondary.
async fn same_records(primary: &MemoryStore, secondary: &MemoryStore, keys: &[String]) {
    for key in keys {
        let p = primary.load(key).await.unwrap().map(|l| l.data);
        let s = secondary.load(key).await.unwrap().map(|l| l.data);
        assert_eq!(p, s, "primary and secondary differ under {key}");
    }
}

#[tokio::test]
async fn the_secondary_receives_every_save_rotation_lock_and_logout() {
    let primary = MemoryStore::default();
    let secondary = MemoryStore::default();
    let store = WriteThrough::new(primary.clone()).with_secondary(secondary.clone());
    let manager = SessionManager::new(store, Config::default().with_hashed_keys(false)).unwrap();
    let key = |cookie: &str| format!("session:{}", cookie.trim_start_matches("id="));

    let session = manager.session(std::iter::empty());
    session.insert("n", 1).await.unwrap();
    let cookie = pair(&session.commit().await.unwrap().unwrap());
    same_records(&primary, &secondary, &[key(&cookie)]).await;
    assert!(secondary.load(&key(&cookie)).await.unwrap().is_some());

    let session = manager.session([cookie.as_bytes()]);
    let guard = session.lock().await.unwrap();
    guard.insert("locked", true).await.unwrap();
    guard.cycle_id().await.unwrap();
    guard.unlock().await.unwrap();
    let rotated = pair(&session.commit().await.unwrap().unwrap());
    // The new record, and the old one's forward.
    same_records(&primary, &secondary, &[key(&cookie), key(&rotated)]).await;

    let session = manager.session([rotated.as_bytes()]);
    session.logout().await.unwrap();
    session.commit().await.unwrap();
    assert!(
        secondary.load(&key(&rotated)).await.unwrap().is_none(),
        "the logout reached it"
    );
    // The old id's forward lives out its grace on both.
    same_records(&primary, &secondary, &[key(&cookie), key(&rotated)]).await;
}

/// A store that is down: every operation fails.
#[derive(Debug, Clone, Copy)]
struct Down;

#[async_trait]
impl Store for Down {
    async fn load(&self, _: &str) -> StoreResult<Option<Loaded>> {
        Err(StoreError::unavailable("down"))
    }
    async fn create(&self, _: &str, _: &[u8], _: Duration) -> StoreResult<Outcome<Version>> {
        Err(StoreError::unavailable("down"))
    }
    async fn save(
        &self,
        _: &str,
        _: &Loaded,
        _: &[u8],
        _: Duration,
    ) -> StoreResult<Outcome<Version>> {
        Err(StoreError::unavailable("down"))
    }
    async fn delete_if(&self, _: &str, _: &Loaded) -> StoreResult<Outcome<()>> {
        Err(StoreError::unavailable("down"))
    }
    async fn delete(&self, _: &str) -> StoreResult<()> {
        Err(StoreError::unavailable("down"))
    }
    async fn touch(&self, _: &str, _: Duration) -> StoreResult<bool> {
        Err(StoreError::unavailable("down"))
    }
}

#[tokio::test]
async fn a_failing_secondary_is_counted_and_fails_the_request_only_when_required() {
    let store = WriteThrough::new(MemoryStore::default()).with_secondary(Down);
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("n", 1).await.unwrap();
    let cookie = pair(
        &session
            .commit()
            .await
            .unwrap()
            .expect("served by the primary"),
    );
    assert_eq!(
        manager
            .session([cookie.as_bytes()])
            .get::<i32>("n")
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.failures(), [1]);

    let required = WriteThrough::new(MemoryStore::default())
        .with_secondary(Down)
        .required(true);
    let manager = SessionManager::new(required, Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("n", 1).await.unwrap();
    let error = session.commit().await.unwrap_err();
    assert_eq!(error.status(), 503, "{error}");
}
