//! The [`Store`] contract: absence, create-if-absent, conditional writes, touch, expiry.

use std::time::{Duration, SystemTime};

use sessio::store::{Outcome, Store};

use crate::{unique, Timing, LONG};

/// The version of a write that must have been done.
pub(crate) fn done<T: std::fmt::Debug>(outcome: Outcome<T>, what: &str) -> T {
    match outcome {
        Outcome::Done(t) => t,
        other => panic!("{what} must be done, got {other:?}"),
    }
}

/// `load` of a missing key is `Ok(None)`; `touch` is `Ok(false)`; `delete` is `Ok(())`.
pub async fn absent_is_not_an_error<S: Store>(store: &S, _: Timing) {
    let key = unique("absent");
    assert_eq!(store.load(&key).await.expect("load of a missing key"), None);
    assert!(!store
        .touch(&key, LONG)
        .await
        .expect("touch of a missing key"));
    store.delete(&key).await.expect("delete of a missing key");
}

/// What `create` writes, `load` returns, with an expiry about `ttl` from now.
pub async fn create_then_load_round_trips<S: Store>(store: &S, _: Timing) {
    let key = unique("roundtrip");
    let data: Vec<u8> = (0..=255u8).collect();
    let version = done(store.create(&key, &data, LONG).await.unwrap(), "create");
    let loaded = store
        .load(&key)
        .await
        .unwrap()
        .expect("present after create");
    assert_eq!(loaded.data, data, "bytes must round-trip exactly");
    assert_eq!(
        loaded.version, version,
        "load reports the version create returned"
    );
    if let Some(expires) = loaded.expires_at {
        let left = expires
            .duration_since(SystemTime::now())
            .expect("expiry is in the future");
        assert!(left > LONG - Duration::from_secs(5) && left <= LONG + Duration::from_secs(1));
    }
    store.delete(&key).await.unwrap();
}

/// `create` on an existing key reports a conflict and leaves the record alone.
pub async fn create_never_overwrites<S: Store>(store: &S, _: Timing) {
    let key = unique("collide");
    done(store.create(&key, b"first", LONG).await.unwrap(), "create");
    let second = store.create(&key, b"second", LONG).await.unwrap();
    assert_eq!(
        second,
        Outcome::Conflict,
        "create must report a collision, not overwrite"
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"first");
    store.delete(&key).await.unwrap();
}

/// A save based on a stale load is refused as a conflict.
pub async fn save_compares_versions<S: Store>(store: &S, _: Timing) {
    let key = unique("cas");
    done(store.create(&key, b"v1", LONG).await.unwrap(), "create");
    let seen = store.load(&key).await.unwrap().unwrap();
    let v2 = done(
        store.save(&key, &seen, b"v2", LONG).await.unwrap(),
        "a save based on the current record",
    );
    let stale = store.save(&key, &seen, b"v3", LONG).await.unwrap();
    assert_eq!(
        stale,
        Outcome::Conflict,
        "a save based on a stale load must conflict"
    );
    let now = store.load(&key).await.unwrap().unwrap();
    assert_eq!(now.data, b"v2");
    assert_eq!(now.version, v2);
    store.delete(&key).await.unwrap();
}

/// A save on a deleted record reports it missing and does not bring it back.
pub async fn save_does_not_resurrect<S: Store>(store: &S, _: Timing) {
    let key = unique("resurrect");
    done(store.create(&key, b"v1", LONG).await.unwrap(), "create");
    let seen = store.load(&key).await.unwrap().unwrap();
    store.delete(&key).await.unwrap();
    let outcome = store.save(&key, &seen, b"v2", LONG).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Missing | Outcome::Conflict),
        "a save on a deleted record must not store, got {outcome:?}"
    );
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "deleted record came back"
    );
}

/// `delete_if` deletes only the record that was loaded.
pub async fn delete_if_compares<S: Store>(store: &S, _: Timing) {
    let key = unique("delete-if");
    done(store.create(&key, b"v1", LONG).await.unwrap(), "create");
    let stale = store.load(&key).await.unwrap().unwrap();
    done(store.save(&key, &stale, b"v2", LONG).await.unwrap(), "save");
    assert_eq!(
        store.delete_if(&key, &stale).await.unwrap(),
        Outcome::Conflict,
        "a delete based on a stale load must conflict"
    );
    let current = store
        .load(&key)
        .await
        .unwrap()
        .expect("the record survives a stale delete");
    assert_eq!(current.data, b"v2");
    done(
        store.delete_if(&key, &current).await.unwrap(),
        "a delete based on the current record",
    );
    assert_eq!(store.load(&key).await.unwrap(), None);
    let again = store.delete_if(&key, &current).await.unwrap();
    assert!(
        matches!(again, Outcome::Missing | Outcome::Conflict),
        "{again:?}"
    );
}

/// `delete` removes the record.
pub async fn delete_removes<S: Store>(store: &S, _: Timing) {
    let key = unique("delete");
    done(store.create(&key, b"x", LONG).await.unwrap(), "create");
    store.delete(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    done(
        store.create(&key, b"y", LONG).await.unwrap(),
        "a create on a deleted key",
    );
    store.delete(&key).await.unwrap();
}

/// `touch` pushes the expiry out without changing the bytes.
pub async fn touch_extends_expiry<S: Store>(store: &S, timing: Timing) {
    let key = unique("touch");
    done(
        store.create(&key, b"kept", timing.short_ttl).await.unwrap(),
        "create",
    );
    assert!(
        store.touch(&key, LONG).await.unwrap(),
        "touch of a live record"
    );
    tokio::time::sleep(timing.past_short_ttl).await;
    let loaded = store
        .load(&key)
        .await
        .unwrap()
        .expect("touched record outlives its first TTL");
    assert_eq!(loaded.data, b"kept");
    store.delete(&key).await.unwrap();
}

/// `touch` of an expired record fails and does not revive it.
pub async fn touch_does_not_revive<S: Store>(store: &S, timing: Timing) {
    let key = unique("revive");
    done(
        store.create(&key, b"gone", timing.short_ttl).await.unwrap(),
        "create",
    );
    tokio::time::sleep(timing.past_short_ttl).await;
    assert!(
        !store.touch(&key, LONG).await.unwrap(),
        "touch must not find an expired record"
    );
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "touch revived an expired record"
    );
}

/// Records expire after their TTL.
pub async fn records_expire<S: Store>(store: &S, timing: Timing) {
    let key = unique("expire");
    done(
        store.create(&key, b"x", timing.short_ttl).await.unwrap(),
        "create",
    );
    assert!(store.load(&key).await.unwrap().is_some());
    tokio::time::sleep(timing.past_short_ttl).await;
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "record outlived its TTL"
    );
    done(
        store.create(&key, b"y", LONG).await.unwrap(),
        "a create on an expired key",
    );
    store.delete(&key).await.unwrap();
}
