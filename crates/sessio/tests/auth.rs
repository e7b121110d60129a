//! The login API, alone and against what it meets: a lock held by another request, a
//! logout racing it, a second process on the same store.

use std::time::Duration;

use sessio::auth::Login;
use sessio::keys::{LOGIN_AT_KEY, USER_KEY};
use sessio::{Config, Error, MemoryStore, SessionManager};
use sessio_store_tests::pause::PauseAfterFreshRead;

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// An anonymous session with a cart, committed: its cookie.
async fn anonymous(manager: &SessionManager) -> String {
    let session = manager.session(std::iter::empty());
    session.insert("cart", vec![1, 2]).await.unwrap();
    pair(&session.commit().await.unwrap().unwrap())
}

#[tokio::test]
async fn login_rotates_the_id_keeps_the_cart_and_records_the_time() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let before = anonymous(&manager).await;
    let session = manager.session([before.as_bytes()]);
    session.login(&42_u64).await.unwrap();
    let after = pair(&session.commit().await.unwrap().expect("a new cookie"));
    assert_ne!(before, after, "the id changed");

    let old = manager.session([before.as_bytes()]);
    assert_eq!(
        old.current_user::<u64>().await.unwrap(),
        None,
        "old id is dead"
    );
    assert!(old.is_empty().await.unwrap());

    let new = manager.session([after.as_bytes()]);
    assert_eq!(new.current_user::<u64>().await.unwrap(), Some(42));
    assert_eq!(new.get::<Vec<u32>>("cart").await.unwrap(), Some(vec![1, 2]));
    let at = new.logged_in_at().await.unwrap().expect("a login time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(at) < 5, "{at} vs {now}");
    assert!(new.contains_key(USER_KEY).await.unwrap());
    assert!(new.contains_key(LOGIN_AT_KEY).await.unwrap());
}

#[tokio::test]
async fn reset_data_drops_the_anonymous_data() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let before = anonymous(&manager).await;
    let session = manager.session([before.as_bytes()]);
    session
        .login_with("ada", Login::new().reset_data())
        .await
        .unwrap();
    let after = pair(&session.commit().await.unwrap().unwrap());
    let new = manager.session([after.as_bytes()]);
    assert_eq!(
        new.current_user::<String>().await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(new.get::<Vec<u32>>("cart").await.unwrap(), None);
}

#[tokio::test]
async fn remember_me_chooses_the_cookie_kind_and_it_sticks() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session
        .login_with("ada", Login::new().remember(false))
        .await
        .unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "remember(false): {set}"
    );
    // A later rotation keeps the kind.
    let later = manager.session([pair(&set).as_bytes()]);
    later.cycle_id().await.unwrap();
    let set = later.commit().await.unwrap().unwrap();
    assert!(
        !set.contains("Max-Age"),
        "still a browser-session cookie: {set}"
    );

    let session = manager.session(std::iter::empty());
    session
        .login_with("bob", Login::new().remember(true))
        .await
        .unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(set.contains("Max-Age="), "remember(true): {set}");
}

#[tokio::test]
async fn a_later_login_does_not_inherit_an_earlier_logins_choices() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session
        .login_with(
            "ada",
            Login::new().idle(Duration::from_secs(3)).remember(false),
        )
        .await
        .unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(!set.contains("Max-Age"), "{set}");
    let again = manager.session([pair(&set).as_bytes()]);
    again.login("bob").await.unwrap();
    let set = again.commit().await.unwrap().unwrap();
    assert!(
        set.contains("Max-Age="),
        "the configured persistent cookie: {set}"
    );
    assert!(
        !set.contains("Max-Age=3;") && !set.ends_with("Max-Age=3"),
        "{set}"
    );
}

#[tokio::test]
async fn a_logins_idle_timeout_applies_to_that_session() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session
        .login_with("ada", Login::new().idle(Duration::from_secs(1)))
        .await
        .unwrap();
    let set = session.commit().await.unwrap().unwrap();
    assert!(set.contains("Max-Age=1"), "{set}");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = manager.session([pair(&set).as_bytes()]);
    assert_eq!(later.current_user::<String>().await.unwrap(), None);
}

#[tokio::test]
async fn logout_ends_the_session_and_later_writes_are_anonymous() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.login("ada").await.unwrap();
    let cookie = pair(&session.commit().await.unwrap().unwrap());

    let out = manager.session([cookie.as_bytes()]);
    out.logout().await.unwrap();
    out.insert("theme", "dark").await.unwrap();
    let set = out.commit().await.unwrap().expect("a new session's cookie");
    assert_ne!(pair(&set), cookie);
    let next = manager.session([pair(&set).as_bytes()]);
    assert_eq!(next.current_user::<String>().await.unwrap(), None);
    assert_eq!(
        next.get::<String>("theme").await.unwrap().as_deref(),
        Some("dark")
    );
    let old = manager.session([cookie.as_bytes()]);
    assert_eq!(old.current_user::<String>().await.unwrap(), None);
}

/// A login in one process while a request of another process holds the session's lock:
/// the holder's section ends with LockLost (the id it locked is gone), and the login stands.
#[tokio::test]
async fn a_login_during_another_requests_lock_ends_that_lock() {
    let store = MemoryStore::default();
    let config = Config::default().with_lock_wait(Duration::from_secs(2));
    let one = SessionManager::new(store.clone(), config.clone()).unwrap();
    let two = SessionManager::new(store, config).unwrap();
    let cookie = anonymous(&one).await;

    let holder = one.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    holder.insert("locked", 1).await.unwrap();

    let login = two.session([cookie.as_bytes()]);
    login.login("ada").await.unwrap();
    let set = login.commit().await.unwrap().expect("the new id");

    let ended = guard.unlock().await;
    assert!(
        matches!(ended, Err(Error::LockLost)),
        "the holder learns its session moved: {ended:?}"
    );
    let after = one.session([pair(&set).as_bytes()]);
    assert_eq!(
        after.current_user::<String>().await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        after.get::<i64>("locked").await.unwrap(),
        None,
        "nothing of the section"
    );
}

/// A logout (another process) that lands while a login is in flight: the logged-out
/// session stays gone, and the login lands in a new session as if it came after.
#[tokio::test]
async fn a_logout_racing_a_login_does_not_resurrect_the_old_session() {
    let store = MemoryStore::default();
    let one = SessionManager::new(store.clone(), Config::default()).unwrap();
    let two = SessionManager::new(store, Config::default()).unwrap();
    let cookie = anonymous(&one).await;

    let login = one.session([cookie.as_bytes()]);
    login.login("ada").await.unwrap(); // loaded, not committed yet
    let logout = two.session([cookie.as_bytes()]);
    logout.logout().await.unwrap();
    logout.commit().await.unwrap();

    let set = login
        .commit()
        .await
        .unwrap()
        .expect("a cookie for the login");
    let old = two.session([cookie.as_bytes()]);
    assert!(
        old.is_empty().await.unwrap(),
        "the old session stays destroyed"
    );
    let new = two.session([pair(&set).as_bytes()]);
    assert_eq!(
        new.current_user::<String>().await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        new.get::<Vec<u32>>("cart").await.unwrap(),
        None,
        "the logged-out session's cart is not carried into the new one"
    );
}

#[tokio::test]
async fn a_stored_user_of_another_type_is_an_error_naming_the_key() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.login("ada").await.unwrap();
    let error = session.current_user::<u64>().await.unwrap_err();
    assert!(error.to_string().contains(USER_KEY), "{error}");
}

/// A rotation that lands between a logout's read of the record and its delete: the
/// logout still ends the rotated session (found by a hostile two-process run: the delete
/// removed only the forward, and the successor stayed logged in). A *login* landing there
/// instead makes the logout fail (`Superseded`, the old id may be an attacker's): the login
/// stands, whole, and the browser's retried logout ends it.
#[tokio::test]
async fn a_rotation_between_a_logouts_read_and_delete_is_ended_too() {
    for relogin in [false, true] {
        let memory = MemoryStore::default();
        // Stops the logout between its read of the record and its delete.
        let hooked = PauseAfterFreshRead::new(memory.clone(), |_| true);
        let one = SessionManager::new(memory.clone(), Config::default()).unwrap();
        let two = SessionManager::new(hooked.clone(), Config::default()).unwrap();
        let session = one.session(std::iter::empty());
        session.login("ada").await.unwrap();
        let cookie = pair(&session.commit().await.unwrap().unwrap());

        let logout = two.session([cookie.as_bytes()]);
        logout.logout().await.unwrap();
        let (paused_rx, resume_tx) = hooked.arm();
        let logging_out = tokio::spawn(async move { logout.commit().await });
        paused_rx.await.unwrap(); // the logout has read the record, not deleted it yet
        let rotation = one.session([cookie.as_bytes()]);
        if relogin {
            rotation.login("ada").await.unwrap();
        } else {
            rotation.cycle_id().await.unwrap();
        }
        let rotated = pair(&rotation.commit().await.unwrap().expect("the new id"));
        resume_tx.send(()).unwrap();
        let logged_out = logging_out.await.unwrap();

        let after = one.session([rotated.as_bytes()]);
        if relogin {
            assert!(
                matches!(logged_out, Err(Error::Superseded)),
                "{logged_out:?}"
            );
            assert_eq!(
                after.current_user::<String>().await.unwrap().as_deref(),
                Some("ada"),
                "the login was half ended"
            );
        } else {
            logged_out.unwrap();
            assert_eq!(
                after.current_user::<String>().await.unwrap(),
                None,
                "the rotated session outlived the logout"
            );
        }
    }
}
