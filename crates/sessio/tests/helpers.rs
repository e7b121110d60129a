//! Flash messages, the CSRF token and typed keys, alone and against what they meet:
//! concurrent requests in two processes, a lock held by another request, a rotation, a
//! logout.

use std::time::Duration;

use sessio::keys::{SessionKey, FLASH_KEY};
use sessio::{Config, Error, MemoryStore, SessionManager};

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn two_processes() -> (SessionManager, SessionManager) {
    let store = MemoryStore::default();
    let config = Config::default().with_lock_wait(Duration::from_secs(2));
    (
        SessionManager::new(store.clone(), config.clone()).unwrap(),
        SessionManager::new(store, config).unwrap(),
    )
}

async fn started(manager: &SessionManager) -> String {
    let session = manager.session(std::iter::empty());
    session.insert("n", 0).await.unwrap();
    pair(&session.commit().await.unwrap().unwrap())
}

#[tokio::test]
async fn concurrent_flashes_from_two_processes_are_all_kept_and_taken_once() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let manager = if i % 2 == 0 { one.clone() } else { two.clone() };
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            let session = manager.session([cookie.as_bytes()]);
            session.flash(format!("m{i}")).await.unwrap();
            session.commit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Two concurrent takes: each message goes to exactly one of them.
    let a = one.session([cookie.as_bytes()]);
    let b = two.session([cookie.as_bytes()]);
    let (ta, tb) = tokio::join!(a.take_flashes::<String>(), b.take_flashes::<String>());
    let mut all: Vec<String> = ta.unwrap().into_iter().chain(tb.unwrap()).collect();
    all.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(all, expected);
    let later = one.session([cookie.as_bytes()]);
    assert!(later.take_flashes::<String>().await.unwrap().is_empty());
    assert!(!later.contains_key(FLASH_KEY).await.unwrap());
}

#[tokio::test]
async fn a_flash_while_another_request_holds_the_lock_is_kept() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let holder = one.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    holder.insert("locked", 1).await.unwrap();
    let flasher = two.session([cookie.as_bytes()]);
    flasher.flash("hello").await.unwrap();
    flasher.commit().await.unwrap();
    guard.unlock().await.unwrap();
    let after = one.session([cookie.as_bytes()]);
    assert_eq!(after.get::<i64>("locked").await.unwrap(), Some(1));
    assert_eq!(after.take_flashes::<String>().await.unwrap(), ["hello"]);
}

/// A CSRF token first issued by a plain request of another process while a lock holder is
/// inside its section: both land, the token stays the one issued, and a token the holder
/// asks for inside the section is that same token.
#[tokio::test]
async fn a_csrf_token_issued_while_another_request_holds_the_lock_is_kept() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let holder = one.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    holder.insert("locked", 1).await.unwrap();

    let issuer = two.session([cookie.as_bytes()]);
    let token = issuer.csrf_token().await.unwrap();
    issuer.commit().await.unwrap();
    guard.unlock().await.unwrap();

    let after = one.session([cookie.as_bytes()]);
    assert_eq!(after.get::<i64>("locked").await.unwrap(), Some(1));
    assert!(
        after.verify_csrf(&token).await.unwrap(),
        "the token survived the lock"
    );
    assert_eq!(after.csrf_token().await.unwrap(), token);

    // Asked for inside a locked section of the same session: the same token.
    let locked = two.session([cookie.as_bytes()]);
    let guard = locked.lock().await.unwrap();
    assert_eq!(locked.csrf_token().await.unwrap(), token);
    guard.unlock().await.unwrap();
}

#[tokio::test]
async fn a_flash_racing_a_rotation_lands_in_the_rotated_session() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let rotating = one.session([cookie.as_bytes()]);
    rotating.get::<i64>("n").await.unwrap(); // loaded before the flash
    let flasher = two.session([cookie.as_bytes()]);
    flasher.get::<i64>("n").await.unwrap();
    rotating.cycle_id().await.unwrap();
    let new = pair(&rotating.commit().await.unwrap().unwrap());
    flasher.flash("kept").await.unwrap();
    flasher.commit().await.unwrap();
    let after = one.session([new.as_bytes()]);
    assert_eq!(after.take_flashes::<String>().await.unwrap(), ["kept"]);
}

#[tokio::test]
async fn a_logout_drops_the_flashes_and_a_later_flash_is_anonymous() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let session = one.session([cookie.as_bytes()]);
    session.flash("before").await.unwrap();
    session.commit().await.unwrap();
    let out = two.session([cookie.as_bytes()]);
    out.logout().await.unwrap();
    out.commit().await.unwrap();
    let old = one.session([cookie.as_bytes()]);
    assert!(old.take_flashes::<String>().await.unwrap().is_empty());
}

#[tokio::test]
async fn flashes_of_another_type_are_dropped_not_fatal() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.flash(1).await.unwrap();
    session.flash("two").await.unwrap();
    assert_eq!(session.take_flashes::<String>().await.unwrap(), ["two"]);
}

#[tokio::test]
async fn concurrent_first_uses_agree_on_one_csrf_token() {
    let (one, two) = two_processes();
    let cookie = started(&one).await;
    let a = one.session([cookie.as_bytes()]);
    let b = two.session([cookie.as_bytes()]);
    a.get::<i64>("n").await.unwrap();
    b.get::<i64>("n").await.unwrap(); // both loaded before either made a token
    let ta = a.csrf_token().await.unwrap();
    let tb = b.csrf_token().await.unwrap();
    assert_eq!(ta, tb, "the second request adopted the first one's token");
    let later = one.session([cookie.as_bytes()]);
    assert!(later.verify_csrf(&ta).await.unwrap());
    assert!(!later.verify_csrf("").await.unwrap());
    assert!(!later.verify_csrf(&ta[..42]).await.unwrap());
    let fresh = one.session(std::iter::empty());
    assert!(
        !fresh.verify_csrf(&ta).await.unwrap(),
        "no token, nothing accepted"
    );
}

#[tokio::test]
async fn a_login_renews_the_csrf_token_and_a_logout_ends_it() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    // Whoever plants a session learns its token; the login must make it worthless.
    let planted = manager.session(std::iter::empty());
    let known = planted.csrf_token().await.unwrap();
    let cookie = pair(&planted.commit().await.unwrap().unwrap());
    let login = manager.session([cookie.as_bytes()]);
    login.login("ada").await.unwrap();
    let cookie = pair(&login.commit().await.unwrap().unwrap());
    let after = manager.session([cookie.as_bytes()]);
    assert!(
        !after.verify_csrf(&known).await.unwrap(),
        "the pre-login token"
    );
    let fresh = after.csrf_token().await.unwrap();
    assert_ne!(fresh, known);
    assert!(after.verify_csrf(&fresh).await.unwrap());
    after.logout().await.unwrap();
    after.commit().await.unwrap();
    let gone = manager.session([cookie.as_bytes()]);
    assert!(!gone.verify_csrf(&fresh).await.unwrap());
}

#[tokio::test]
async fn a_value_that_is_not_a_token_is_never_accepted_and_gets_replaced() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    for planted in [
        serde_json::json!(""),
        serde_json::json!("short"),
        serde_json::json!(5),
    ] {
        session
            .insert(sessio::keys::CSRF_KEY, &planted)
            .await
            .unwrap();
        assert!(!session.verify_csrf("").await.unwrap(), "{planted}");
        assert!(!session.verify_csrf("short").await.unwrap(), "{planted}");
        let token = session.csrf_token().await.unwrap();
        assert_eq!(token.len(), 43, "replaced by a real token: {token}");
        assert!(session.verify_csrf(&token).await.unwrap());
    }
}

const CART: SessionKey<Vec<u32>> = SessionKey::new("cart");
const STRICT_THEME: SessionKey<String> = SessionKey::new("theme");
const THEME: SessionKey<String> = SessionKey::new("theme").lenient();

#[tokio::test]
async fn typed_keys_read_write_and_survive_a_changed_type_when_lenient() {
    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let session = manager.session(std::iter::empty());
    session.insert(&CART, vec![1]).await.unwrap();
    let n = session
        .update(&CART, |cart| {
            let mut cart = cart.unwrap_or_default();
            cart.push(2);
            cart
        })
        .await
        .unwrap();
    assert_eq!(n, vec![1, 2]);
    assert_eq!(session.get(&CART).await.unwrap(), Some(vec![1, 2]));

    session.insert("theme", 7).await.unwrap(); // an older release stored a number
    let strict = session.get(&STRICT_THEME).await;
    assert!(
        matches!(strict, Err(Error::Deserialize { .. })),
        "{strict:?}"
    );
    assert_eq!(session.get(&THEME).await.unwrap(), None, "lenient: absent");
    let replaced = session
        .update(&THEME, |old| old.unwrap_or_else(|| "dark".into()))
        .await
        .unwrap();
    assert_eq!(replaced, "dark");
    assert_eq!(
        session.get(&STRICT_THEME).await.unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(session.remove(&CART).await.unwrap(), Some(vec![1, 2]));
    assert_eq!(session.get(&CART).await.unwrap(), None);
}
