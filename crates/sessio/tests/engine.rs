//! Engine behaviour seen through the public API: laziness, expiry, cookies, compat mode,
//! and the in-memory store's bounds and sweeper.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use sessio::memory::WhenFull;
use sessio::store::{Loaded, LockingStore, Outcome, Store, StoreErrorKind, StoreResult, Version};
use sessio::{Config, MemoryStore, SessionManager};

/// A real MemoryStore that counts the operations the engine makes.
#[derive(Clone, Default)]
struct Counted {
    store: MemoryStore,
    ops: Arc<AtomicUsize>,
    touches: Arc<AtomicUsize>,
}

impl Counted {
    fn ops(&self) -> usize {
        self.ops.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for Counted {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.store.load(key).await
    }
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.store.create(key, data, ttl).await
    }
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.store.save(key, expected, data, ttl).await
    }
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.store.delete_if(key, expected).await
    }
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.store.touch(key, ttl).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        self.store.delete(key).await
    }
    fn keeps_live_records(&self) -> bool {
        self.store.keeps_live_records()
    }
    fn locking(&self) -> Option<&dyn LockingStore> {
        self.store.locking()
    }
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn untouched_sessions_cost_nothing_and_reads_cost_one_round_trip() {
    let store = Counted::default();
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let created = manager.session(std::iter::empty());
    created.insert("a", 1).await.unwrap();
    let cookie = pair(&created.commit().await.unwrap().unwrap());
    let before = store.ops();

    let untouched = manager.session([cookie.as_bytes()]);
    assert_eq!(untouched.commit().await.unwrap(), None);
    assert_eq!(
        store.ops(),
        before,
        "an untouched session made a store call"
    );

    let reader = manager.session([cookie.as_bytes()]);
    assert_eq!(reader.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(
        reader.commit().await.unwrap(),
        None,
        "a fresh session needs no new cookie"
    );
    assert_eq!(
        store.ops(),
        before + 1,
        "a read is one load, with no touch while fresh"
    );

    let same_value = manager.session([cookie.as_bytes()]);
    same_value.insert("a", 1).await.unwrap();
    same_value.commit().await.unwrap();
    assert_eq!(
        store.ops(),
        before + 2,
        "writing an unchanged value is not a save"
    );
}

#[tokio::test]
async fn reads_touch_past_the_throttle_and_renew_the_cookie_past_half_its_age() {
    let store = Counted::default();
    let config = Config::default()
        .with_idle_timeout(Duration::from_secs(4))
        .with_touch_after(Duration::from_millis(500));
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let created = manager.session(std::iter::empty());
    created.insert("a", 1).await.unwrap();
    let cookie = pair(&created.commit().await.unwrap().unwrap());

    let early = manager.session([cookie.as_bytes()]);
    early.get::<i32>("a").await.unwrap();
    assert_eq!(early.commit().await.unwrap(), None);
    assert_eq!(
        store.touches.load(Ordering::SeqCst),
        0,
        "touched inside the throttle window"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = manager.session([cookie.as_bytes()]);
    later.get::<i32>("a").await.unwrap();
    assert_eq!(
        later.commit().await.unwrap(),
        None,
        "a touch sends no cookie while the cookie is young"
    );
    assert_eq!(store.touches.load(Ordering::SeqCst), 1);

    // Past half the cookie's 4 s: the cookie is renewed, with a new id (the id cookie is
    // only ever sent with a new id, so that a late answer cannot bring an old one back).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let older = manager.session([cookie.as_bytes()]);
    older.get::<i32>("a").await.unwrap();
    let renewed = older
        .commit()
        .await
        .unwrap()
        .expect("the renewed cookie is sent");
    assert!(renewed.contains("Max-Age=4"), "{renewed}");
    let new = pair(&renewed);
    assert_ne!(new, cookie, "a renewal rotates the id");
    let after = manager.session([new.as_bytes()]);
    assert_eq!(after.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(
        after.commit().await.unwrap(),
        None,
        "the new cookie is young"
    );
    // A request still on its way with the old id follows, without a cookie.
    let late = manager.session([cookie.as_bytes()]);
    assert_eq!(late.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(late.commit().await.unwrap(), None);
}

#[tokio::test]
async fn cookie_attributes_follow_the_config_and_the_removal_repeats_them() {
    let config = Config::default()
        .with_cookie_name("sid")
        .with_domain(Some("example.com"))
        .with_path("/app")
        .with_same_site(sessio::SameSite::Strict);
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("a", 1).await.unwrap();
    let set = session.commit().await.unwrap().unwrap();
    let cookie = pair(&set);
    assert!(cookie.starts_with("sid="));
    for attribute in [
        "Domain=example.com",
        "Path=/app",
        "SameSite=Strict",
        "Secure",
        "HttpOnly",
        "Max-Age=2592000",
        "Expires=",
    ] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    let session = manager.session([cookie.as_bytes()]);
    session.destroy().await.unwrap();
    let removal = session.commit().await.unwrap().unwrap();
    for attribute in [
        "sid=;",
        "Domain=example.com",
        "Path=/app",
        "SameSite=Strict",
        "Secure",
        "HttpOnly",
        "Max-Age=0",
    ] {
        assert!(
            removal.contains(attribute),
            "{attribute} missing from removal {removal}"
        );
    }
}

#[tokio::test]
async fn host_prefix_and_browser_session_cookies() {
    let config = Config::default()
        .with_host_prefix(true)
        .with_session_cookie(true);
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("a", 1).await.unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(set.starts_with("__Host-id="), "{set}");
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "a browser-session cookie has no expiry: {set}"
    );
    let cookie = pair(&set);

    // "Remember me" turns this session's cookie persistent.
    let session = manager.session([cookie.as_bytes()]);
    session.set_remember(true).await.unwrap();
    let set = session
        .commit()
        .await
        .unwrap()
        .expect("the persistent cookie is sent");
    assert!(set.contains("Max-Age="), "{set}");
}

#[tokio::test]
async fn per_session_expiry_override_is_kept() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("a", 1).await.unwrap();
    session
        .set_expiry(Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(set.contains("Max-Age=1"), "{set}");
    let cookie = pair(&set);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = manager.session([cookie.as_bytes()]);
    assert!(
        later.is_empty().await.unwrap(),
        "the 1 s override did not expire the session"
    );
}

#[tokio::test]
async fn invalid_configs_are_refused_with_a_reason() {
    let cases = [
        (Config::default().with_cookie_name("a b"), "cookie name"),
        (Config::default().with_path("app"), "path"),
        (
            Config::default().with_host_prefix(true).with_secure(false),
            "Secure",
        ),
        (
            Config::default().with_host_prefix(true).with_path("/x"),
            "Path=/",
        ),
        (
            Config::default()
                .with_same_site(sessio::SameSite::None)
                .with_secure(false),
            "SameSite=None",
        ),
        (
            Config::default().with_idle_timeout(Duration::ZERO),
            "idle timeout",
        ),
        (Config::default().with_max_retries(0), "max_retries"),
    ];
    for (config, needle) in cases {
        let error = SessionManager::new(MemoryStore::default(), config).unwrap_err();
        assert!(
            error.to_string().contains(needle),
            "{error} should mention {needle}"
        );
    }
}

#[tokio::test]
async fn sanic_session_compat_stores_the_bare_json_object() {
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), Config::sanic_session()).unwrap();
    // A Python app wrote this session under a uuid4().hex id.
    let hex = "0123456789abcdef0123456789abcdef";
    let _ = store
        .create(
            &format!("session:{hex}"),
            br#"{"foo": 1}"#,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let cookie = format!("session={hex}");
    let session = manager.session([cookie.as_bytes()]);
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await
        .unwrap();
    assert_eq!(n, 2);
    session.commit().await.unwrap();
    let raw = store
        .load(&format!("session:{hex}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw.data, br#"{"foo":2}"#,
        "compat mode must store exactly the JSON object"
    );
}

#[tokio::test]
async fn too_large_sessions_are_refused_not_truncated() {
    let config = Config::default().with_max_size(100);
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("big", "x".repeat(200)).await.unwrap();
    let error = session.commit().await.unwrap_err();
    assert!(
        matches!(error, sessio::Error::TooLarge { max: 100, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn type_mismatches_are_errors_that_name_the_key() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("n", "not a number").await.unwrap();
    let error = session.get::<u32>("n").await.unwrap_err();
    assert!(error.to_string().contains("\"n\""), "{error}");
}

#[tokio::test]
async fn a_dropped_lock_guard_releases_the_lock() {
    let config = Config::default().with_lock_wait(Duration::from_secs(2));
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());

    let holder = manager.session([cookie.as_bytes()]);
    let task = tokio::spawn(async move {
        let _guard = holder.lock().await.unwrap();
        panic!("handler panics while holding the lock");
    });
    assert!(task.await.unwrap_err().is_panic());
    let next = manager.session([cookie.as_bytes()]);
    let started = std::time::Instant::now();
    let guard = next
        .lock()
        .await
        .expect("the panicked holder's lock was released");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited for the lease instead of the release"
    );
    guard.unlock().await.unwrap();
}

#[tokio::test]
async fn lock_timeout_is_an_error_not_a_hang() {
    let config = Config::default().with_lock_wait(Duration::from_millis(100));
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());
    let holder = manager.session([cookie.as_bytes()]);
    let _guard = holder.lock().await.unwrap();
    let waiter = manager.session([cookie.as_bytes()]);
    let error = tokio::time::timeout(Duration::from_secs(2), waiter.lock())
        .await
        .expect("lock() must give up at its deadline")
        .unwrap_err();
    assert!(
        matches!(error, sessio::Error::LockTimeout { .. }),
        "{error}"
    );
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn memory_store_stays_within_its_bound() {
    let store = MemoryStore::builder().max_sessions(64).shards(4).build();
    for i in 0..1000 {
        store
            .create(&format!("k{i}"), b"x", Duration::from_secs(60))
            .await
            .unwrap()
            .map(|_| ())
            .eq(&Outcome::Done(()))
            .then_some(())
            .expect("created");
    }
    assert!(
        store.len() <= 64,
        "{} records in a store bounded at 64",
        store.len()
    );
    assert!(
        store.load("k999").await.unwrap().is_some(),
        "the newest record is kept"
    );

    let strict = MemoryStore::builder()
        .max_sessions(4)
        .shards(1)
        .when_full(WhenFull::Reject)
        .build();
    for i in 0..4 {
        strict
            .create(&format!("k{i}"), b"x", Duration::from_secs(60))
            .await
            .unwrap()
            .map(|_| ())
            .eq(&Outcome::Done(()))
            .then_some(())
            .expect("created");
    }
    let error = strict
        .create("k4", b"x", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert!(
        strict.load("k0").await.unwrap().is_some(),
        "Reject never evicts"
    );
}

#[tokio::test]
async fn the_sweeper_drops_expired_records_and_stops_with_the_store() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let store = MemoryStore::builder()
        .sweep_interval(Some(Duration::from_millis(50)))
        .build();
    assert_eq!(
        metrics.num_alive_tasks(),
        tasks_before + 1,
        "the sweeper runs"
    );
    let _ = store
        .create("short", b"x", Duration::from_millis(20))
        .await
        .unwrap();
    let _ = store
        .create("long", b"x", Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.len(), 1, "the expired record was not swept");
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        metrics.num_alive_tasks(),
        tasks_before,
        "the sweeper outlived its store"
    );
}

proptest! {
    #[test]
    fn cookie_parsing_never_panics(headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..4)) {
        let manager = SessionManager::new(MemoryStore::builder().sweep_interval(None).build(), Config::default()).unwrap();
        let _session = manager.session(headers.iter().map(Vec::as_slice));
    }

    #[test]
    fn cookie_headers_with_our_name_never_panic(value in ".{0,120}", before in "[ -~]{0,40}") {
        let manager = SessionManager::new(MemoryStore::builder().sweep_interval(None).build(), Config::default()).unwrap();
        let header = format!("{before}; id={value}; other=1");
        let _session = manager.session([header.as_bytes()]);
    }
}

#[tokio::test]
async fn a_failed_unlock_still_releases_the_lock() {
    let config = Config::default()
        .with_max_size(100)
        .with_lock_wait(Duration::from_millis(200));
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());

    let holder = manager.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    guard.insert("big", "x".repeat(200)).await.unwrap();
    let error = guard.unlock().await.unwrap_err();
    assert!(matches!(error, sessio::Error::TooLarge { .. }), "{error}");
    let next = manager.session([cookie.as_bytes()]);
    let guard = next
        .lock()
        .await
        .expect("the lock was released with the error, not left to its lease");
    guard.unlock().await.unwrap();
}

#[tokio::test]
async fn the_memory_store_is_bounded_by_bytes() {
    let store = MemoryStore::builder().max_bytes(1 << 20).shards(4).build();
    let value = vec![7u8; 10_000];
    for i in 0..1000 {
        let created = store
            .create(&format!("k{i}"), &value, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(created, Outcome::Done(_)));
    }
    // 1000 x 10 KB offered to a 1 MiB budget.
    assert!(
        store.bytes() <= (1 << 20) + 4 * 10_200,
        "{} bytes held",
        store.bytes()
    );
    assert!(store.len() < 110, "{} records", store.len());
    assert!(
        store.load("k999").await.unwrap().is_some(),
        "the newest record is kept"
    );
    let huge = vec![0u8; 2 << 20];
    let error = store
        .create("huge", &huge, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Full);
    assert!(error.to_string().contains("max_bytes"), "{error}");
}

#[tokio::test]
async fn values_too_deep_to_read_back_are_refused_when_written() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("ok", "kept").await.unwrap();
    let mut deep = serde_json::Value::Null;
    for _ in 0..127 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    let error = session.insert("deep", &deep).await.unwrap_err();
    assert!(matches!(error, sessio::Error::TooDeep { .. }), "{error}");
    assert_eq!(error.status(), 422);
    let cookie = pair(&session.commit().await.unwrap().unwrap());
    let next = manager.session([cookie.as_bytes()]);
    assert_eq!(
        next.get::<String>("ok").await.unwrap().as_deref(),
        Some("kept"),
        "the session was lost"
    );
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct Manual(std::sync::Mutex<std::time::SystemTime>);

impl sessio::clock::Clock for Manual {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn a_rotation_near_the_absolute_deadline_keeps_the_cookie() {
    let start = std::time::SystemTime::now();
    let clock = Arc::new(Manual(std::sync::Mutex::new(start)));
    let config = Config::default()
        .with_absolute_timeout(Some(Duration::from_secs(100)))
        .with_clock(clock.clone());
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("a", 1).await.unwrap();
    let cookie = pair(&session.commit().await.unwrap().unwrap());
    // 98.2 s later, 1.8 s of the absolute lifetime are left.
    *clock.0.lock().unwrap() = start + Duration::from_millis(98_200);
    let rotating = manager.session([cookie.as_bytes()]);
    rotating.cycle_id().await.unwrap();
    let set = rotating
        .commit()
        .await
        .unwrap()
        .expect("a rotation sends the new id");
    assert!(set.contains("Max-Age=2"), "{set}");
}

#[tokio::test]
async fn a_session_over_the_size_limit_is_a_413() {
    let config = Config::default().with_max_size(1000);
    let manager = SessionManager::new(MemoryStore::default(), config).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("big", "x".repeat(2000)).await.unwrap();
    let error = session.commit().await.unwrap_err();
    assert_eq!(error.status(), 413, "{error}");
    assert!(error.to_string().contains("with_max_size"), "{error}");
}

#[tokio::test]
async fn a_flood_of_one_shot_sessions_does_not_evict_returning_users() {
    let store = MemoryStore::builder().max_sessions(100).shards(1).build();
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let mut users = Vec::new();
    for i in 0..5 {
        let login = manager.session(std::iter::empty());
        login.insert("user", i).await.unwrap();
        let cookie = pair(&login.commit().await.unwrap().unwrap());
        // The user comes back once.
        let back = manager.session([cookie.as_bytes()]);
        assert_eq!(back.get::<i32>("user").await.unwrap(), Some(i));
        users.push(cookie);
    }
    for _ in 0..2000 {
        let bot = manager.session(std::iter::empty());
        bot.insert("n", 1).await.unwrap();
        bot.commit().await.unwrap();
    }
    assert!(store.len() <= 100);
    for (i, cookie) in users.iter().enumerate() {
        let back = manager.session([cookie.as_bytes()]);
        assert_eq!(
            back.get::<i32>("user").await.unwrap(),
            Some(i as i32),
            "user {i} was evicted by the flood"
        );
    }
}

/// A forward ends with the rotation grace whatever the store's TTL says: a request that
/// read the session before the rotation and touches it after (extending the forward's
/// TTL in the store to the whole idle timeout) does not keep the old id alive.
#[tokio::test]
async fn a_touch_racing_a_rotation_does_not_keep_the_old_id_alive() {
    let start = std::time::SystemTime::now();
    let clock = Arc::new(Manual(std::sync::Mutex::new(start)));
    let config = Config::default()
        .with_touch_after(Duration::from_secs(1))
        .with_rotation_grace(Duration::from_secs(60))
        .with_clock(clock.clone());
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    let old = pair(&first.commit().await.unwrap().unwrap());

    *clock.0.lock().unwrap() = start + Duration::from_secs(5);
    let reader = manager.session([old.as_bytes()]);
    assert_eq!(reader.get::<i32>("a").await.unwrap(), Some(1));
    let rotation = manager.session([old.as_bytes()]);
    rotation.cycle_id().await.unwrap();
    let new = pair(&rotation.commit().await.unwrap().expect("the new id"));
    // The reader is due for a touch, which lands on the forward.
    assert_eq!(reader.commit().await.unwrap(), None);

    // Within the grace the old id leads to the successor; past it, nowhere.
    let within = manager.session([old.as_bytes()]);
    assert_eq!(within.get::<i32>("a").await.unwrap(), Some(1));
    *clock.0.lock().unwrap() = start + Duration::from_secs(66);
    let past = manager.session([old.as_bytes()]);
    assert!(
        past.is_empty().await.unwrap(),
        "the old id outlived its grace"
    );
    let current = manager.session([new.as_bytes()]);
    assert_eq!(current.get::<i32>("a").await.unwrap(), Some(1));
}

/// A logout carrying an id that a login moved away is refused (the old id may have been
/// planted): the login stands. A logout carrying an id that a plain rotation moved away
/// ends the successor (it is the browser's own stale tab).
#[tokio::test]
async fn a_logout_with_a_pre_login_id_is_refused_and_one_after_a_rotation_is_not() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    let planted = pair(&first.commit().await.unwrap().unwrap());
    let login = manager.session([planted.as_bytes()]);
    login.login("victim").await.unwrap();
    let victim = pair(&login.commit().await.unwrap().expect("the login's id"));
    for read_first in [false, true] {
        let logout = manager.session([planted.as_bytes()]);
        if read_first {
            assert_eq!(logout.current_user::<String>().await.unwrap(), None);
        }
        logout.logout().await.unwrap();
        let refused = logout.commit().await;
        assert!(
            matches!(refused, Err(sessio::Error::Superseded)),
            "{refused:?}"
        );
    }
    let still = manager.session([victim.as_bytes()]);
    assert_eq!(
        still.current_user::<String>().await.unwrap().as_deref(),
        Some("victim")
    );
    // A plain rotation's old id: the logout ends the successor.
    let rotation = manager.session([victim.as_bytes()]);
    rotation.cycle_id().await.unwrap();
    let rotated = pair(&rotation.commit().await.unwrap().expect("the new id"));
    let stale_tab = manager.session([victim.as_bytes()]);
    stale_tab.logout().await.unwrap();
    let removal = stale_tab.commit().await.unwrap().expect("a removal cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let gone = manager.session([rotated.as_bytes()]);
    assert!(
        gone.is_empty().await.unwrap(),
        "the successor outlived the logout"
    );
}

/// `-0.0` written over `0.0` is a change: the client reads back what it wrote.
#[tokio::test]
async fn negative_zero_over_zero_is_a_write() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("z", 0.0_f64).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());
    let second = manager.session([cookie.as_bytes()]);
    second.insert("z", -0.0_f64).await.unwrap();
    second.commit().await.unwrap();
    let read: f64 = manager
        .session([cookie.as_bytes()])
        .get("z")
        .await
        .unwrap()
        .unwrap();
    assert!(read == 0.0 && read.is_sign_negative(), "{read}");
}

/// A store whose next `save` fails with a timeout, after doing the write (`done`) or not.
#[derive(Clone, Default)]
struct LostReply {
    store: MemoryStore,
    /// 0: normal; 1: the next save is done, then reported as a timeout; 2: it is not done.
    mode: Arc<AtomicUsize>,
}

#[async_trait]
impl Store for LostReply {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.store.load(key).await
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
        match self.mode.swap(0, Ordering::SeqCst) {
            0 => self.store.save(key, expected, data, ttl).await,
            1 => {
                let outcome = self.store.save(key, expected, data, ttl).await?;
                assert!(
                    matches!(outcome, Outcome::Done(_)),
                    "the write was not done"
                );
                Err(sessio::store::StoreError::timeout("the reply was lost"))
            }
            _ => Err(sessio::store::StoreError::timeout("the request was lost")),
        }
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
}

/// A login whose retiring write's reply is lost (a store timeout): the engine reads the
/// old record back to learn what happened. Done: the login answers with its new id, the
/// data intact. Not done: the login fails and the old id still holds the data, never a
/// forward to a successor that was taken back.
#[tokio::test]
async fn a_rotation_whose_reply_is_lost_is_resolved_by_reading_back() {
    for (mode, done) in [(1, true), (2, false)] {
        let store = LostReply::default();
        let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
        let first = manager.session(std::iter::empty());
        first.insert("cart", "book").await.unwrap();
        let old = pair(&first.commit().await.unwrap().unwrap());
        let login = manager.session([old.as_bytes()]);
        login.login("ada").await.unwrap();
        store.mode.store(mode, Ordering::SeqCst);
        let answered = login.commit().await;
        let holder = if done {
            pair(&answered.unwrap().expect("the login's new id"))
        } else {
            assert!(answered.is_err(), "{answered:?}");
            old.clone()
        };
        let after = manager.session([holder.as_bytes()]);
        assert_eq!(
            after.get::<String>("cart").await.unwrap().as_deref(),
            Some("book"),
            "mode {mode}: the data was lost"
        );
        assert_eq!(
            after.current_user::<String>().await.unwrap().is_some(),
            done,
            "mode {mode}"
        );
    }
}

/// The id cookie's `name=value` pair of an answer (the first `Set-Cookie`).
fn id_pair(cookies: &[String]) -> String {
    pair(cookies.first().expect("a Set-Cookie"))
}

/// A logout carrying an id that many plain rotations moved on (a tab that slept through
/// them, within the rotation grace) ends the session those rotations lead to, or refuses
/// with nothing deleted: never a partial logout that leaves the live session behind while
/// a retry answers "logged out".
#[tokio::test]
async fn a_logout_through_a_long_rotation_chain_ends_the_live_session_or_nothing() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("x", 1).await.unwrap();
    let oldest = id_pair(&first.commit_cookies().await.unwrap());
    for hops in [15, 16, 17, 40] {
        let start = manager.session(std::iter::empty());
        start.insert("x", 1).await.unwrap();
        let oldest_here = id_pair(&start.commit_cookies().await.unwrap());
        let mut newest = oldest_here.clone();
        for _ in 0..hops {
            let session = manager.session([newest.as_bytes()]);
            session.cycle_id().await.unwrap();
            newest = id_pair(&session.commit_cookies().await.unwrap());
        }
        let mut logged_out = false;
        for _attempt in 0..3 {
            let logout = manager.session([oldest_here.as_bytes()]);
            let result = match logout.destroy().await {
                Ok(()) => logout.commit_cookies().await,
                Err(error) => Err(error),
            };
            let live = manager.session([newest.as_bytes()]);
            let alive = live.get::<i64>("x").await.unwrap() == Some(1);
            match result {
                Ok(_) => {
                    assert!(
                        !alive,
                        "{hops} hops: the logout answered ok, the session lives"
                    );
                    logged_out = true;
                    break;
                }
                Err(error) => {
                    assert!(error.retry_after().is_some(), "{hops} hops: {error}");
                    assert!(
                        alive,
                        "{hops} hops: refused ({error}) yet the session ended"
                    );
                }
            }
        }
        // Refused throughout is allowed only for a chain longer than a read follows.
        if !logged_out {
            assert!(hops > 16, "{hops} hops: a logout never got through");
            // The newest id, which the browser holds by now, logs out at once.
            let logout = manager.session([newest.as_bytes()]);
            logout.destroy().await.unwrap();
            logout.commit_cookies().await.unwrap();
            let live = manager.session([newest.as_bytes()]);
            assert_eq!(live.get::<i64>("x").await.unwrap(), None);
        }
    }
    drop(oldest);
}

/// A locked section that logs out while a login (another request) moves the session on:
/// the logout is refused (the old id may have been planted), and the answer carries no
/// cookie, so the browser keeps the login's.
#[tokio::test]
async fn a_locked_logout_refused_by_a_racing_login_sends_no_cookie() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("x", 1).await.unwrap();
    let cookie = id_pair(&first.commit_cookies().await.unwrap());
    let locked = manager.session([cookie.as_bytes()]);
    let guard = locked.lock().await.unwrap();
    locked.destroy().await.unwrap();
    // Meanwhile another request logs in (it does not wait for the lock: a login is a
    // plain write, and the section holds the lease only against other lock holders).
    let login = manager.session([cookie.as_bytes()]);
    login.login(&"vic").await.unwrap();
    let logged_in = id_pair(&login.commit_cookies().await.unwrap());
    let unlocked = guard.unlock().await;
    let committed = locked.commit_cookies().await;
    assert!(
        unlocked.is_err() || committed.is_err(),
        "the logout cannot have happened: {unlocked:?} {committed:?}"
    );
    if let Ok(cookies) = &committed {
        assert!(cookies.is_empty(), "a refused logout sent {cookies:?}");
    }
    let me = manager.session([logged_in.as_bytes()]);
    assert_eq!(
        me.current_user::<String>().await.unwrap().as_deref(),
        Some("vic")
    );
}

/// `lock()` follows as many forwards as a read does, no more: an id more rotations old is
/// refused (`Superseded`) with nothing locked, read or written, like every other use.
#[tokio::test]
async fn a_lock_with_an_id_many_rotations_old_is_refused_like_a_read() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    for hops in [16, 17] {
        let start = manager.session(std::iter::empty());
        start.insert("x", 1).await.unwrap();
        let oldest = id_pair(&start.commit_cookies().await.unwrap());
        let mut newest = oldest.clone();
        for _ in 0..hops {
            let session = manager.session([newest.as_bytes()]);
            session.cycle_id().await.unwrap();
            newest = id_pair(&session.commit_cookies().await.unwrap());
        }
        let read = manager.session([oldest.as_bytes()]).get::<i64>("x").await;
        let locked = manager.session([oldest.as_bytes()]);
        match locked.lock().await {
            Ok(guard) => {
                assert_eq!(
                    read.unwrap(),
                    Some(1),
                    "{hops} hops: locked where a read fails"
                );
                locked.insert("x", 2).await.unwrap();
                guard.unlock().await.unwrap();
                let live = manager.session([newest.as_bytes()]);
                assert_eq!(live.get::<i64>("x").await.unwrap(), Some(2));
            }
            Err(error) => {
                assert!(
                    matches!(error, sessio::Error::Superseded),
                    "{hops} hops: {error}"
                );
                assert!(
                    read.is_err(),
                    "{hops} hops: a read follows where the lock does not"
                );
                let live = manager.session([newest.as_bytes()]);
                assert_eq!(live.get::<i64>("x").await.unwrap(), Some(1));
                // Nothing holds the lock: the newest id locks at once.
                let guard = live.lock().await.unwrap();
                guard.unlock().await.unwrap();
            }
        }
    }
}
