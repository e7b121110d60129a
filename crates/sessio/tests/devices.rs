//! The user's devices index, alone and against what it meets: a second process on the
//! same store, a lock held by the revoked session, a rotation, a re-login, a logout, a
//! clear, expiry, and a lost index.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sessio::auth::Login;
use sessio::devices::Devices;
use sessio::store::Store;
use sessio::{Config, Error, MemoryStore, Session, SessionManager};
use sessio_store_tests::pause::PauseAfterFreshRead;

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn indexed() -> Config {
    Config::default().with_devices(Devices::new())
}

/// Two "processes": two managers on one store.
fn two(config: Config) -> (MemoryStore, SessionManager, SessionManager) {
    let store = MemoryStore::default();
    let one = SessionManager::new(store.clone(), config.clone()).unwrap();
    let two = SessionManager::new(store.clone(), config).unwrap();
    (store, one, two)
}

/// Logs `user` in on a fresh session (with `label`); its cookie.
async fn login(manager: &SessionManager, user: &str, label: &str) -> String {
    let session = manager.session(std::iter::empty());
    session
        .login_with(user, Login::new().label(label))
        .await
        .unwrap();
    pair(
        &session
            .commit()
            .await
            .unwrap()
            .expect("a login sends a cookie"),
    )
}

fn open(manager: &SessionManager, cookie: &str) -> Session {
    manager.session([cookie.as_bytes()])
}

async fn user_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    open(manager, cookie).current_user().await.unwrap()
}

#[tokio::test]
async fn a_user_sees_each_of_their_sessions_once_with_its_label_and_times() {
    let (_, one, two) = two(indexed());
    let laptop = login(&one, "ada", "laptop").await;
    let phone = login(&two, "ada", "phone").await;
    login(&one, "bob", "bob's").await;

    let session = open(&two, &phone);
    let list = session.devices().await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let mut labels: Vec<_> = list.iter().map(|s| s.label.clone().unwrap()).collect();
    labels.sort();
    assert_eq!(labels, ["laptop", "phone"]);
    let current: Vec<_> = list.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].label.as_deref(), Some("phone"));
    assert_eq!(
        Some(current[0].handle.clone()),
        session.handle().await.unwrap()
    );
    let now = SystemTime::now();
    for s in &list {
        assert!(now.duration_since(s.created).unwrap() < Duration::from_secs(5));
        assert!(s.last_seen >= s.created);
        assert_eq!(s.handle.len(), 22);
        assert!(!laptop.contains(&s.handle) && !phone.contains(&s.handle));
    }
    let anonymous = one.session(std::iter::empty());
    assert!(anonymous.devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoke_others_logs_out_every_other_session_on_every_process() {
    let (_, one, two) = two(indexed());
    let a = login(&one, "ada", "a").await;
    let b = login(&two, "ada", "b").await;
    let c = login(&one, "ada", "c").await;
    let bob = login(&two, "bob", "bob").await;

    let session = open(&two, &c);
    assert_eq!(session.revoke_others().await.unwrap(), 2);
    session.commit().await.unwrap();

    assert_eq!(user_of(&one, &a).await, None);
    assert_eq!(user_of(&two, &b).await, None);
    assert_eq!(user_of(&one, &c).await.as_deref(), Some("ada"));
    assert_eq!(
        user_of(&one, &bob).await.as_deref(),
        Some("bob"),
        "another user's stay"
    );
    let list = open(&one, &c).devices().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].current);
}

#[tokio::test]
async fn a_handle_revokes_only_its_users_session_and_is_not_a_cookie() {
    let (_, one, two) = two(indexed());
    let ada1 = login(&one, "ada", "1").await;
    let ada2 = login(&two, "ada", "2").await;
    let bob = login(&one, "bob", "b").await;
    let handle = open(&one, &ada1).handle().await.unwrap().unwrap();

    // Another user's request cannot revoke it, nor guess anything with it.
    let as_bob = open(&two, &bob);
    assert!(!as_bob.revoke(&handle).await.unwrap());
    assert!(!as_bob.revoke("not-a-handle").await.unwrap());
    assert_eq!(user_of(&one, &ada1).await.as_deref(), Some("ada"));

    // As a cookie, the handle is nobody's session.
    let forged = format!("id={handle}");
    let session = open(&one, &forged);
    assert_eq!(session.current_user::<String>().await.unwrap(), None);
    assert!(session.is_empty().await.unwrap());

    // Ada's other device can.
    let as_ada = open(&two, &ada2);
    assert!(as_ada.revoke(&handle).await.unwrap());
    as_ada.commit().await.unwrap();
    assert_eq!(user_of(&one, &ada1).await, None);
    assert_eq!(user_of(&one, &ada2).await.as_deref(), Some("ada"));
    assert!(
        !open(&two, &ada2).revoke(&handle).await.unwrap(),
        "only once"
    );
}

#[tokio::test]
async fn revoking_the_current_handle_is_a_logout() {
    let manager = SessionManager::new(MemoryStore::default(), indexed()).unwrap();
    let cookie = login(&manager, "ada", "x").await;
    let session = open(&manager, &cookie);
    let handle = session.handle().await.unwrap().unwrap();
    assert!(session.revoke(&handle).await.unwrap());
    let set = session
        .commit()
        .await
        .unwrap()
        .expect("the cookie is removed");
    assert!(set.contains("Max-Age=0"), "{set}");
    assert_eq!(user_of(&manager, &cookie).await, None);
}

#[tokio::test]
async fn the_login_past_the_maximum_ends_the_least_recently_active_session() {
    let config = Config::default()
        .with_devices(Devices::new().max_per_user(2))
        .with_touch_after(Duration::ZERO);
    let (_, one, two) = two(config);
    let first = login(&one, "ada", "first").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = login(&two, "ada", "second").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The first device is used again: the second is now the least recently active.
    let using = open(&two, &first);
    using.insert("cart", 1).await.unwrap();
    using.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let third = login(&one, "ada", "third").await;
    assert_eq!(
        user_of(&one, &second).await,
        None,
        "the least recently active ended"
    );
    assert_eq!(user_of(&two, &first).await.as_deref(), Some("ada"));
    assert_eq!(user_of(&two, &third).await.as_deref(), Some("ada"));
    let list = open(&one, &third).devices().await.unwrap();
    let mut labels: Vec<_> = list.iter().map(|s| s.label.clone().unwrap()).collect();
    labels.sort();
    assert_eq!(labels, ["first", "third"]);
}

#[tokio::test]
async fn logout_clear_and_a_new_login_remove_the_old_entry() {
    let manager = SessionManager::new(MemoryStore::default(), indexed()).unwrap();
    let keep = login(&manager, "ada", "keep").await;
    let count = || async { open(&manager, &keep).devices().await.unwrap().len() };

    let out = login(&manager, "ada", "logout").await;
    assert_eq!(count().await, 2);
    let session = open(&manager, &out);
    session.logout().await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(count().await, 1);

    // A logout of a session never read in this request.
    let unread = login(&manager, "ada", "unread").await;
    assert_eq!(count().await, 2);
    let session = open(&manager, &unread);
    session.destroy().await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(count().await, 1);

    let cleared = login(&manager, "ada", "clear").await;
    let session = open(&manager, &cleared);
    session.clear().await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(count().await, 1);

    // Logging in again as someone else on the same browser moves it between indexes.
    let switch = login(&manager, "ada", "switch").await;
    assert_eq!(count().await, 2);
    let session = open(&manager, &switch);
    session.login("bob").await.unwrap();
    let bob = pair(&session.commit().await.unwrap().unwrap());
    assert_eq!(count().await, 1);
    assert_eq!(open(&manager, &bob).devices().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rotated_session_stays_listed_and_revocable() {
    let (_, one, two) = two(indexed());
    let a = login(&one, "ada", "a").await;
    let b = login(&two, "ada", "b").await;
    let session = open(&one, &a);
    session.cycle_id().await.unwrap();
    let rotated = pair(&session.commit().await.unwrap().unwrap());
    assert_eq!(open(&two, &b).devices().await.unwrap().len(), 2);

    let revoker = open(&two, &b);
    assert_eq!(revoker.revoke_others().await.unwrap(), 1);
    revoker.commit().await.unwrap();
    assert_eq!(user_of(&one, &rotated).await, None);
    assert_eq!(user_of(&one, &a).await, None);
}

/// The revoked session holds its lock (another process): its section ends with Ended
/// and nothing of it is written; the revocation stands.
#[tokio::test]
async fn revoking_a_session_under_its_lock_ends_the_lock() {
    let (_, one, two) = two(indexed());
    let a = login(&one, "ada", "a").await;
    let b = login(&two, "ada", "b").await;

    let holder = open(&one, &a);
    let guard = holder.lock().await.unwrap();
    guard.insert("balance", 5).await.unwrap();

    let revoker = open(&two, &b);
    assert_eq!(revoker.revoke_others().await.unwrap(), 1);
    revoker.commit().await.unwrap();

    let ended = guard.unlock().await;
    assert!(matches!(ended, Err(Error::Ended)), "{ended:?}");
    let after = open(&one, &a);
    assert_eq!(after.current_user::<String>().await.unwrap(), None);
    assert_eq!(after.get::<i64>("balance").await.unwrap(), None);
}

/// A request of the revoked session that was in flight finishes; what it writes goes into
/// a new anonymous session, and the index does not list it again.
#[tokio::test]
async fn a_write_in_flight_during_the_revocation_is_anonymous_and_unlisted() {
    let (_, one, two) = two(indexed());
    let a = login(&one, "ada", "a").await;
    let b = login(&two, "ada", "b").await;
    let in_flight = open(&one, &a);
    assert!(in_flight.current_user::<String>().await.unwrap().is_some());

    let revoker = open(&two, &b);
    revoker.revoke_others().await.unwrap();
    revoker.commit().await.unwrap();

    in_flight.insert("late", 1).await.unwrap();
    let set = in_flight.commit().await.unwrap().expect("a new session");
    let late = open(&one, &pair(&set));
    assert_eq!(late.current_user::<String>().await.unwrap(), None);
    assert_eq!(late.get::<i32>("late").await.unwrap(), Some(1));
    assert_eq!(open(&two, &b).devices().await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_concurrent_logins_of_one_user_are_all_listed() {
    let (_, one, two) = two(indexed());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let manager = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            login(&manager, "ada", &i.to_string()).await
        }));
    }
    let mut cookies = Vec::new();
    for task in tasks {
        cookies.push(task.await.unwrap());
    }
    let list = open(&one, &cookies[0]).devices().await.unwrap();
    assert_eq!(list.len(), 24);
    let session = open(&two, &cookies[3]);
    assert_eq!(session.revoke_others().await.unwrap(), 23);
    for (i, cookie) in cookies.iter().enumerate() {
        assert_eq!(user_of(&one, cookie).await.is_some(), i == 3, "session {i}");
    }
}

#[derive(Debug)]
struct Manual(Mutex<SystemTime>);

impl sessio::clock::Clock for Manual {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// Entries expire with their sessions, and the index record with its last entry: nothing
/// grows for sessions that are gone.
#[tokio::test]
async fn the_index_expires_with_its_sessions() {
    let start = SystemTime::now();
    let clock = Arc::new(Manual(Mutex::new(start)));
    let config = indexed()
        .with_idle_timeout(Duration::from_secs(60))
        .with_clock(clock.clone());
    let store = MemoryStore::default();
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let short = {
        let session = manager.session(std::iter::empty());
        session
            .login_with("ada", Login::new().idle(Duration::from_secs(10)))
            .await
            .unwrap();
        pair(&session.commit().await.unwrap().unwrap())
    };
    let long = login(&manager, "ada", "long").await;
    assert_eq!(store.len(), 3, "two sessions and one index");
    assert_eq!(open(&manager, &long).devices().await.unwrap().len(), 2);

    *clock.0.lock().unwrap() = start + Duration::from_secs(20);
    assert_eq!(user_of(&manager, &short).await, None);
    assert_eq!(open(&manager, &long).devices().await.unwrap().len(), 1);

    // The memory store's expiry runs on the real clock: look at what the engine wrote.
    let key = index_key("\"ada\"");
    let loaded = store.load(&key).await.unwrap().expect("the index");
    let expires = loaded.expires_at.unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(61),
        "the record lives as long as its last entry: {left:?}"
    );
}

/// The store key of `user`'s index: the key prefix, "users.", and the base64url SHA-256
/// of the user's JSON.
fn index_key(user_json: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(user_json.as_bytes());
    format!(
        "session:users.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// The index fails closed: a logged-in session whose entry is gone (its index lost) is
/// logged out at its next extension, not left running unlisted.
#[tokio::test]
async fn a_session_missing_from_a_lost_index_is_logged_out() {
    let store = MemoryStore::default();
    let config = indexed().with_touch_after(Duration::ZERO);
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let cookie = login(&manager, "ada", "a").await;
    let key = index_key("\"ada\"");
    store.delete(&key).await.unwrap();

    let session = open(&manager, &cookie);
    assert!(session.current_user::<String>().await.unwrap().is_some());
    let set = session.commit().await.unwrap();
    assert!(
        set.is_some_and(|s| s.contains("Max-Age=0")),
        "the cookie goes"
    );
    assert_eq!(user_of(&manager, &cookie).await, None);
}

#[tokio::test]
async fn without_the_index_listing_is_an_error_that_says_how_to_turn_it_on() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.login("ada").await.unwrap();
    let error = session.devices().await.unwrap_err();
    assert!(matches!(error, Error::DevicesOff));
    assert_eq!(error.status(), 501);
    assert!(error.to_string().contains("Config::with_devices"));
    assert!(matches!(
        session.revoke_others().await,
        Err(Error::DevicesOff)
    ));
    assert_eq!(session.handle().await.unwrap(), None);
}

#[tokio::test]
async fn a_maximum_of_zero_is_refused() {
    let config = Config::default().with_devices(Devices::new().max_per_user(0));
    let error = SessionManager::new(MemoryStore::default(), config).unwrap_err();
    assert!(error.to_string().contains("max_per_user"), "{error}");
}

/// A write of the same session lands after another process's login as another user wrote
/// the session but before it wrote the index: the write is refused (it carries the
/// pre-login id), and it must not take the missing entry for a revocation and end the new
/// login.
#[tokio::test]
async fn a_write_between_a_relogins_session_write_and_index_write_keeps_the_login() {
    let memory = MemoryStore::default();
    // Stops a commit between its session write and its index write.
    let hooked = PauseAfterFreshRead::new(memory.clone(), |key| key.contains("users."));
    let config = indexed().with_touch_after(Duration::ZERO);
    let one = SessionManager::new(memory.clone(), config.clone()).unwrap();
    let two = SessionManager::new(hooked.clone(), config).unwrap();
    let cookie = login(&one, "ada", "old").await;
    let racing = open(&one, &cookie);
    racing.get::<i32>("x").await.unwrap();

    let relogin = open(&two, &cookie);
    relogin.login("bob").await.unwrap();
    let (paused_rx, resume_tx) = hooked.arm();
    let logging_in = tokio::spawn(async move { relogin.commit().await });
    paused_rx.await.unwrap(); // the session is rotated; its index entry not written yet

    racing.insert("x", 1).await.unwrap();
    let refused = racing.commit().await;
    assert!(
        matches!(refused, Err(Error::Superseded)),
        "a write with the pre-login id must be refused, never followed into the login: {refused:?}"
    );
    resume_tx.send(()).unwrap();
    let new = pair(&logging_in.await.unwrap().unwrap().expect("the new id"));

    let session = open(&one, &new);
    assert_eq!(
        session.current_user::<String>().await.unwrap().as_deref(),
        Some("bob"),
        "the new login stands"
    );
    assert_eq!(
        session.get::<i32>("x").await.unwrap(),
        None,
        "the write followed"
    );
    let list = session.devices().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0].current);
}

/// Two devices each "log out other devices" at once: one wins, the other finds itself
/// revoked and ends nothing (found by a hostile run: both ended everything, themselves
/// included).
#[tokio::test]
async fn of_two_devices_revoking_each_other_at_once_one_stays() {
    let memory = MemoryStore::default();
    let hooked = PauseAfterFreshRead::new(memory.clone(), |key| key.contains("users."));
    let one = SessionManager::new(memory.clone(), indexed()).unwrap();
    let two = SessionManager::new(hooked.clone(), indexed()).unwrap();
    let d1 = login(&one, "ada", "d1").await;
    let d2 = login(&one, "ada", "d2").await;
    let d3 = login(&one, "ada", "d3").await;

    // d2's revoke has read the index and waits; d1's revoke runs whole meanwhile.
    let (paused, resume) = hooked.arm();
    let second = open(&two, &d2);
    let racing = tokio::spawn(async move {
        let ended = second.revoke_others().await.unwrap();
        (ended, second.commit().await.unwrap())
    });
    paused.await.unwrap();
    let first = open(&one, &d1);
    assert_eq!(first.revoke_others().await.unwrap(), 2);
    first.commit().await.unwrap();
    resume.send(()).unwrap();
    let (ended, set_cookie) = racing.await.unwrap();
    assert_eq!(ended, 0, "d2 was revoked before it could revoke");
    assert!(
        set_cookie.is_some_and(|c| c.contains("Max-Age=0")),
        "and learns it: its cookie is removed"
    );

    assert_eq!(
        user_of(&one, &d1).await.as_deref(),
        Some("ada"),
        "the winner stays"
    );
    assert_eq!(user_of(&one, &d2).await, None);
    assert_eq!(user_of(&one, &d3).await, None);
    assert_eq!(open(&one, &d1).devices().await.unwrap().len(), 1);
}

/// A session that logs in again is listed throughout: never missing from its user's list
/// between the new login's session write and its index write (found by a hostile run: a
/// revoke-others landing in that gap missed the session, which stayed logged in).
#[tokio::test]
async fn a_relogin_is_listed_throughout() {
    let memory = MemoryStore::default();
    let hooked = PauseAfterFreshRead::new(memory.clone(), |key| key.contains("users."));
    let one = SessionManager::new(memory.clone(), indexed()).unwrap();
    let two = SessionManager::new(hooked.clone(), indexed()).unwrap();
    let observer = login(&one, "ada", "observer").await;
    let device = login(&one, "ada", "device").await;

    // Pause the re-login's second read of the index, if it makes one.
    let (paused, resume) = hooked.arm_after(1);
    let relogin = open(&two, &device);
    relogin.login("ada").await.unwrap();
    let mut committing = tokio::spawn(async move { relogin.commit().await });
    let finished = tokio::select! {
        _ = paused => None,
        done = &mut committing => Some(done),
    };
    let list = open(&one, &observer).devices().await.unwrap();
    assert_eq!(list.len(), 2, "the re-logging device is listed: {list:?}");
    let new = match finished {
        Some(done) => done,
        None => {
            resume.send(()).unwrap();
            committing.await
        }
    };
    let new = pair(&new.unwrap().unwrap().expect("a new id"));
    assert_eq!(open(&one, &observer).devices().await.unwrap().len(), 2);
    let revoker = open(&one, &observer);
    assert_eq!(revoker.revoke_others().await.unwrap(), 1);
    assert_eq!(user_of(&one, &new).await, None);
}

/// A user's revocation of a browser's session races another user's login on that browser:
/// the revocation ends what was the first user's, never the second user's fresh login
/// (found by a hostile run: the revocation followed the login's rotation into it).
#[tokio::test]
async fn a_revocation_never_ends_another_users_login_on_the_same_browser() {
    let memory = MemoryStore::default();
    let hooked = PauseAfterFreshRead::new(memory.clone(), |key| key.contains("users."));
    let one = SessionManager::new(memory.clone(), indexed()).unwrap();
    let two = SessionManager::new(hooked.clone(), indexed()).unwrap();
    let browser = login(&one, "ada", "shared browser").await;
    let phone = login(&one, "ada", "phone").await;

    // Bob logs in on the shared browser; his login has rotated the session and waits
    // before its index writes. Ada's phone ends her other sessions meanwhile.
    let switching = open(&two, &browser);
    switching.login("bob").await.unwrap();
    let (paused, resume) = hooked.arm();
    let committing = tokio::spawn(async move { switching.commit().await });
    paused.await.unwrap();
    let revoker = open(&one, &phone);
    assert_eq!(
        revoker.revoke_others().await.unwrap(),
        1,
        "ada's entry for the browser"
    );
    revoker.commit().await.unwrap();
    resume.send(()).unwrap();
    let bob = pair(&committing.await.unwrap().unwrap().expect("bob's cookie"));

    assert_eq!(
        user_of(&one, &bob).await.as_deref(),
        Some("bob"),
        "bob's login stands"
    );
    assert_eq!(user_of(&one, &browser).await, None);
    assert_eq!(open(&one, &bob).devices().await.unwrap().len(), 1);
    assert_eq!(open(&one, &phone).devices().await.unwrap().len(), 1);
}

/// The same user logging in again on a session keeps its handle (the same device, so a
/// handle shown before stays good); another user gets a new one.
#[tokio::test]
async fn a_relogin_of_the_same_user_keeps_the_handle() {
    let manager = SessionManager::new(MemoryStore::default(), indexed()).unwrap();
    let cookie = login(&manager, "ada", "laptop").await;
    let before = open(&manager, &cookie).handle().await.unwrap().unwrap();
    let session = open(&manager, &cookie);
    session.login("ada").await.unwrap();
    let again = pair(&session.commit().await.unwrap().expect("a new id"));
    let session = open(&manager, &again);
    assert_eq!(
        session.handle().await.unwrap().as_deref(),
        Some(before.as_str())
    );
    let list = session.devices().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].label.as_deref(), Some("laptop"));

    session.login("bob").await.unwrap();
    let bob = pair(&session.commit().await.unwrap().expect("a new id"));
    assert_ne!(
        open(&manager, &bob).handle().await.unwrap().as_deref(),
        Some(before.as_str())
    );
}
