//! # sessio-store-tests
//!
//! The conformance suite of the sessio store contract. Every store runs the same tests:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! sessio_store_tests::run_all(sessio::MemoryStore::default(), sessio_store_tests::Timing::FAST).await;
//! # });
//! ```
//!
//! Each test uses keys under a random prefix, so the suite can run against a shared server
//! and in parallel with itself. A failing test panics with a message naming the broken rule.
#![warn(missing_docs)]

pub mod serialized;
pub mod servers;

use std::sync::Arc;
use std::time::Duration;

use sessio::{
    Acquired, Config, Fenced, LeaseToken, LockingStore, Saved, Session, SessionManager, Store,
};

/// How long the store takes to notice expiry, so timing tests wait long enough.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A TTL the store honours precisely enough (records expire after it).
    pub short_ttl: Duration,
    /// How long to sleep to be sure a `short_ttl` record is gone.
    pub past_short_ttl: Duration,
}

impl Timing {
    /// For stores with millisecond expiry (memory, Redis).
    pub const FAST: Timing = Timing {
        short_ttl: Duration::from_millis(300),
        past_short_ttl: Duration::from_millis(700),
    };
    /// For stores with one-second expiry (Memcached, MongoDB with engine checks).
    pub const SECONDS: Timing = Timing {
        short_ttl: Duration::from_secs(1),
        past_short_ttl: Duration::from_millis(2500),
    };
}

const LONG: Duration = Duration::from_secs(60);

fn unique(name: &str) -> String {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).expect("OS random number generator");
    let tag: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("sessio-test:{tag}:{name}")
}

fn locking<S: Store>(store: &S) -> &dyn LockingStore {
    store
        .locking()
        .expect("the store must implement LockingStore (Store::locking returns None)")
}

fn token() -> LeaseToken {
    LeaseToken::generate().expect("OS random number generator")
}

/// Runs every test of the suite against `store`, one after another.
pub async fn run_all<S: Store + Clone>(store: S, timing: Timing) {
    absent_is_not_an_error(&store).await;
    create_then_load_round_trips(&store).await;
    create_never_overwrites(&store).await;
    save_compares_versions(&store).await;
    save_does_not_resurrect(&store).await;
    delete_removes(&store).await;
    touch_extends_expiry(&store, timing).await;
    touch_does_not_revive(&store, timing).await;
    records_expire(&store, timing).await;
    lock_excludes_and_returns_the_record(&store).await;
    dead_holders_lease_lapses(&store, timing).await;
    saves_under_a_lease_are_fenced(&store, timing).await;
    release_is_compare_and_delete(&store).await;
    delete_under_a_lease_is_fenced(&store).await;
    concurrent_updates_lose_nothing(&store).await;
    disjoint_keys_merge(&store).await;
    lock_serializes_read_modify_write(&store).await;
    destroyed_session_is_not_resurrected(&store).await;
    unknown_ids_are_never_adopted(&store).await;
    rotation_keeps_data_and_kills_the_old_id(&store).await;
}

/// `load` of a missing key is `Ok(None)`; `touch` is `Ok(false)`; `delete` is `Ok(())`.
pub async fn absent_is_not_an_error<S: Store>(store: &S) {
    let key = unique("absent");
    assert_eq!(store.load(&key).await.expect("load of a missing key"), None);
    assert!(!store
        .touch(&key, LONG)
        .await
        .expect("touch of a missing key"));
    store.delete(&key).await.expect("delete of a missing key");
}

/// What `create` writes, `load` returns, with an expiry about `ttl` from now.
pub async fn create_then_load_round_trips<S: Store>(store: &S) {
    let key = unique("roundtrip");
    let data: Vec<u8> = (0..=255u8).collect();
    let version = store
        .create(&key, &data, LONG)
        .await
        .unwrap()
        .expect("created");
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
            .duration_since(std::time::SystemTime::now())
            .expect("expiry is in the future");
        assert!(left > LONG - Duration::from_secs(5) && left <= LONG + Duration::from_secs(1));
    }
    store.delete(&key).await.unwrap();
}

/// `create` on an existing key reports a collision and leaves the record alone.
pub async fn create_never_overwrites<S: Store>(store: &S) {
    let key = unique("collide");
    store
        .create(&key, b"first", LONG)
        .await
        .unwrap()
        .expect("created");
    let second = store.create(&key, b"second", LONG).await.unwrap();
    assert!(
        second.is_none(),
        "create must report a collision, not overwrite"
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"first");
    store.delete(&key).await.unwrap();
}

/// A save based on a stale load is refused as a conflict.
pub async fn save_compares_versions<S: Store>(store: &S) {
    let key = unique("cas");
    store.create(&key, b"v1", LONG).await.unwrap().unwrap();
    let seen = store.load(&key).await.unwrap().unwrap();
    let first = store.save(&key, &seen, b"v2", LONG).await.unwrap();
    let Saved::Stored(v2) = first else {
        panic!("a save based on the current record must succeed, got {first:?}");
    };
    let stale = store.save(&key, &seen, b"v3", LONG).await.unwrap();
    assert_eq!(
        stale,
        Saved::Conflict,
        "a save based on a stale load must conflict"
    );
    let now = store.load(&key).await.unwrap().unwrap();
    assert_eq!(now.data, b"v2");
    assert_eq!(now.version, v2);
    store.delete(&key).await.unwrap();
}

/// A save on a deleted record reports it missing and does not bring it back.
pub async fn save_does_not_resurrect<S: Store>(store: &S) {
    let key = unique("resurrect");
    store.create(&key, b"v1", LONG).await.unwrap().unwrap();
    let seen = store.load(&key).await.unwrap().unwrap();
    store.delete(&key).await.unwrap();
    let outcome = store.save(&key, &seen, b"v2", LONG).await.unwrap();
    assert!(
        matches!(outcome, Saved::Missing | Saved::Conflict),
        "a save on a deleted record must not store, got {outcome:?}"
    );
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "deleted record came back"
    );
}

/// `delete` removes the record.
pub async fn delete_removes<S: Store>(store: &S) {
    let key = unique("delete");
    store.create(&key, b"x", LONG).await.unwrap().unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(
        store.create(&key, b"y", LONG).await.unwrap().is_some(),
        "a deleted key is free again"
    );
    store.delete(&key).await.unwrap();
}

/// `touch` pushes the expiry out without changing the bytes.
pub async fn touch_extends_expiry<S: Store>(store: &S, timing: Timing) {
    let key = unique("touch");
    store
        .create(&key, b"kept", timing.short_ttl)
        .await
        .unwrap()
        .unwrap();
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
    store
        .create(&key, b"gone", timing.short_ttl)
        .await
        .unwrap()
        .unwrap();
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
    store
        .create(&key, b"x", timing.short_ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(store.load(&key).await.unwrap().is_some());
    tokio::time::sleep(timing.past_short_ttl).await;
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "record outlived its TTL"
    );
    assert!(
        store.create(&key, b"y", LONG).await.unwrap().is_some(),
        "an expired key is free"
    );
    store.delete(&key).await.unwrap();
}

/// One lease at a time; the grant carries the current record.
pub async fn lock_excludes_and_returns_the_record<S: Store>(store: &S) {
    let locks = locking(store);
    let key = unique("lock");
    store.create(&key, b"record", LONG).await.unwrap().unwrap();
    let (a, b) = (token(), token());
    match locks.acquire(&key, &a, LONG).await.unwrap() {
        Acquired::Granted(Some(loaded)) => assert_eq!(loaded.data, b"record"),
        other => panic!("first acquire must be granted with the record, got {other:?}"),
    }
    assert_eq!(
        locks.acquire(&key, &b, LONG).await.unwrap(),
        Acquired::Held,
        "lease must exclude"
    );
    assert!(locks.release(&key, &a).await.unwrap());
    assert!(matches!(
        locks.acquire(&key, &b, LONG).await.unwrap(),
        Acquired::Granted(_)
    ));
    assert!(locks.release(&key, &b).await.unwrap());
    // A lease can be taken on a key with no record (a session not stored yet).
    let fresh = unique("lock-fresh");
    assert_eq!(
        locks.acquire(&fresh, &a, LONG).await.unwrap(),
        Acquired::Granted(None)
    );
    assert!(locks.release(&fresh, &a).await.unwrap());
    store.delete(&key).await.unwrap();
}

/// A holder that never releases blocks others only until its lease lapses.
pub async fn dead_holders_lease_lapses<S: Store>(store: &S, timing: Timing) {
    let locks = locking(store);
    let key = unique("lapse");
    let (dead, next) = (token(), token());
    assert!(matches!(
        locks.acquire(&key, &dead, timing.short_ttl).await.unwrap(),
        Acquired::Granted(_)
    ));
    assert_eq!(
        locks.acquire(&key, &next, LONG).await.unwrap(),
        Acquired::Held
    );
    tokio::time::sleep(timing.past_short_ttl).await;
    assert!(
        matches!(
            locks.acquire(&key, &next, LONG).await.unwrap(),
            Acquired::Granted(_)
        ),
        "a lapsed lease must not block"
    );
    assert!(locks.release(&key, &next).await.unwrap());
}

/// After a lease lapses and another takes it, the old holder's saves are refused.
pub async fn saves_under_a_lease_are_fenced<S: Store>(store: &S, timing: Timing) {
    let locks = locking(store);
    let key = unique("fence");
    let (old, new) = (token(), token());
    assert!(matches!(
        locks.acquire(&key, &old, timing.short_ttl).await.unwrap(),
        Acquired::Granted(None)
    ));
    assert!(matches!(
        locks
            .save_locked(&key, &old, b"by-old", LONG, false)
            .await
            .unwrap(),
        Fenced::Done(_)
    ));
    tokio::time::sleep(timing.past_short_ttl).await;
    assert!(matches!(
        locks.acquire(&key, &new, LONG).await.unwrap(),
        Acquired::Granted(Some(_))
    ));
    assert_eq!(
        locks
            .save_locked(&key, &old, b"late", LONG, true)
            .await
            .unwrap(),
        Fenced::LeaseLost,
        "a save under a lapsed lease must be refused"
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"by-old");
    assert!(matches!(
        locks
            .save_locked(&key, &new, b"by-new", LONG, true)
            .await
            .unwrap(),
        Fenced::Done(_)
    ));
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"by-new");
    let other = token();
    assert!(
        matches!(
            locks.acquire(&key, &other, LONG).await.unwrap(),
            Acquired::Granted(_)
        ),
        "save_locked with release must free the lease"
    );
    assert!(locks.release(&key, &other).await.unwrap());
    store.delete(&key).await.unwrap();
}

/// `release` frees only the caller's own lease.
pub async fn release_is_compare_and_delete<S: Store>(store: &S) {
    let locks = locking(store);
    let key = unique("release");
    let (holder, stranger) = (token(), token());
    assert!(matches!(
        locks.acquire(&key, &holder, LONG).await.unwrap(),
        Acquired::Granted(_)
    ));
    assert!(
        !locks.release(&key, &stranger).await.unwrap(),
        "release by a non-holder"
    );
    assert_eq!(
        locks.acquire(&key, &stranger, LONG).await.unwrap(),
        Acquired::Held
    );
    assert!(locks.release(&key, &holder).await.unwrap());
    assert!(
        !locks.release(&key, &holder).await.unwrap(),
        "double release"
    );
}

/// `delete_locked` deletes only for the lease holder, and frees the lease.
pub async fn delete_under_a_lease_is_fenced<S: Store>(store: &S) {
    let locks = locking(store);
    let key = unique("delete-locked");
    store.create(&key, b"x", LONG).await.unwrap().unwrap();
    let (holder, stranger) = (token(), token());
    assert!(matches!(
        locks.acquire(&key, &holder, LONG).await.unwrap(),
        Acquired::Granted(Some(_))
    ));
    assert_eq!(
        locks.delete_locked(&key, &stranger).await.unwrap(),
        Fenced::LeaseLost
    );
    assert!(store.load(&key).await.unwrap().is_some());
    assert!(matches!(
        locks.delete_locked(&key, &holder).await.unwrap(),
        Fenced::Done(_)
    ));
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(matches!(
        locks.acquire(&key, &stranger, LONG).await.unwrap(),
        Acquired::Granted(None)
    ));
    assert!(locks.release(&key, &stranger).await.unwrap());
}

fn manager<S: Store + Clone>(store: &S, name: &str) -> SessionManager {
    // 40 requests racing on one session: the last may lose up to 39 rounds, and the last of
    // 20 lock holders waits for 19 others. The suite checks that nothing is lost and nothing
    // overlaps, not how fast a slow server resolves contention, so it allows enough retries
    // and a long lock wait.
    let config = Config::default()
        .with_key_prefix(format!("{}:", unique(name)))
        .with_max_retries(200)
        .with_lock_wait(Duration::from_secs(120));
    SessionManager::from_arc(Arc::new(store.clone()), config).expect("valid config")
}

/// The `name=value` part of a `Set-Cookie` value.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

fn request(manager: &SessionManager, cookie: &str) -> Session {
    manager.session([cookie.as_bytes()])
}

async fn new_session<S: Store + Clone>(store: &S, name: &str) -> (SessionManager, String) {
    let manager = manager(store, name);
    let first = manager.session(std::iter::empty());
    first.insert("seed", &true).await.unwrap();
    let cookie = first
        .commit()
        .await
        .unwrap()
        .expect("a new session sets a cookie");
    (manager, cookie_pair(&cookie))
}

/// 40 concurrent `update`s of one key on one session: the count ends at exactly 40.
pub async fn concurrent_updates_lose_nothing<S: Store + Clone>(store: &S) {
    let (manager, cookie) = new_session(store, "updates").await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let session = request(&manager, &cookie);
            tokio::spawn(async move {
                let n = session
                    .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
                    .await
                    .unwrap();
                session.commit().await.unwrap();
                n
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<_>>(),
        "each update must see a distinct count"
    );
    let after = request(&manager, &cookie);
    assert_eq!(after.get::<u32>("n").await.unwrap(), Some(40));
}

/// 40 concurrent requests, each inserting its own key: all 40 keys are kept.
pub async fn disjoint_keys_merge<S: Store + Clone>(store: &S) {
    let (manager, cookie) = new_session(store, "merge").await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let session = request(&manager, &cookie);
            tokio::spawn(async move {
                session.get::<bool>("seed").await.unwrap();
                tokio::task::yield_now().await;
                session.insert(&format!("k{i}"), &i).await.unwrap();
                session.commit().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = request(&manager, &cookie);
    for i in 0..40 {
        assert_eq!(
            after.get::<i32>(&format!("k{i}")).await.unwrap(),
            Some(i),
            "key k{i} was lost"
        );
    }
    assert_eq!(after.get::<bool>("seed").await.unwrap(), Some(true));
}

/// 20 concurrent lock holders doing read, sleep, write: results are exactly 1..=20.
pub async fn lock_serializes_read_modify_write<S: Store + Clone>(store: &S) {
    let (manager, cookie) = new_session(store, "lock-rmw").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let session = request(&manager, &cookie);
            tokio::spawn(async move {
                let guard = session.lock().await.unwrap();
                let n: u32 = guard.get("locked").await.unwrap().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(2)).await;
                guard.insert("locked", &(n + 1)).await.unwrap();
                guard.unlock().await.unwrap();
                session.commit().await.unwrap();
                n + 1
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<_>>(),
        "lock holders overlapped"
    );
}

/// A request that saves after another destroyed the session does not bring it back.
pub async fn destroyed_session_is_not_resurrected<S: Store + Clone>(store: &S) {
    let (manager, cookie) = new_session(store, "destroy").await;
    let writer = request(&manager, &cookie);
    writer.get::<bool>("seed").await.unwrap();
    let logout = request(&manager, &cookie);
    logout.destroy().await.unwrap();
    let removal = logout
        .commit()
        .await
        .unwrap()
        .expect("destroy expires the cookie");
    assert!(removal.contains("Max-Age=0"), "removal cookie: {removal}");
    writer.insert("late", &1).await.unwrap();
    let answer = writer.commit().await.unwrap();
    assert!(
        answer.as_deref().is_some_and(|c| c.contains("Max-Age=0")),
        "the late writer must be told the session is gone, got {answer:?}"
    );
    let after = request(&manager, &cookie);
    assert!(
        after.is_empty().await.unwrap(),
        "destroyed session came back"
    );
}

/// An id the server never issued is replaced, not adopted.
pub async fn unknown_ids_are_never_adopted<S: Store + Clone>(store: &S) {
    let manager = manager(store, "fixation");
    let forged = sessio::SessionId::generate().unwrap();
    let cookie = format!("{}={}", manager.config().cookie_name(), forged.as_str());
    let session = request(&manager, &cookie);
    session.insert("user", "victim").await.unwrap();
    let set = session.commit().await.unwrap().expect("a new id is issued");
    assert!(
        !set.contains(forged.as_str()),
        "attacker-chosen id was adopted"
    );
    let replay = request(&manager, &cookie);
    assert!(
        replay.is_empty().await.unwrap(),
        "data is reachable through the forged id"
    );
}

/// `cycle_id` keeps the data under a new id; the old id no longer works.
pub async fn rotation_keeps_data_and_kills_the_old_id<S: Store + Clone>(store: &S) {
    let (manager, old) = new_session(store, "rotate").await;
    let session = request(&manager, &old);
    session.cycle_id().await.unwrap();
    let set = session
        .commit()
        .await
        .unwrap()
        .expect("rotation sends the new id");
    let new = cookie_pair(&set);
    assert_ne!(new, old);
    assert_eq!(
        request(&manager, &new).get::<bool>("seed").await.unwrap(),
        Some(true)
    );
    assert!(
        request(&manager, &old).is_empty().await.unwrap(),
        "old id still works"
    );
}
