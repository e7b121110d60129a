//! The encrypted cookie store, through the engine: sessions that travel sealed in the
//! browser's cookies, with key rotation, chunking, expiry inside the seal, tampering, and
//! what it meets (a rotation, a logout, flash, login, `update`, a second process, a lock).
#![cfg(feature = "cookie-store")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sessio::cookie_store::CookieStore;
use sessio::{Compat, Config, Error, SessionManager};

const K1: [u8; 32] = [1; 32];
const K2: [u8; 32] = [2; 32];

/// A browser's cookie jar for one site: applies `Set-Cookie` values, sends `Cookie`.
#[derive(Default, Clone, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn apply(&mut self, set_cookies: &[String]) {
        for set in set_cookies {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[derive(Debug)]
struct Manual(Mutex<SystemTime>);

impl sessio::clock::Clock for Manual {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl Manual {
    fn start() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

fn manager(store: CookieStore, config: Config) -> SessionManager {
    SessionManager::with_cookie_store(store, config).unwrap()
}

/// One request: runs `f` on the session, commits, applies the cookies to the jar.
async fn visit<F, Fut, T>(manager: &SessionManager, jar: &mut Jar, f: F) -> (T, Vec<String>)
where
    F: FnOnce(sessio::Session) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let header = jar.header();
    let session = manager.session([header.as_bytes()]);
    let out = f(session.clone()).await;
    let cookies = session.commit_cookies().await.unwrap();
    jar.apply(&cookies);
    (out, cookies)
}

async fn count(manager: &SessionManager, jar: &mut Jar) -> u64 {
    visit(manager, jar, |s| async move {
        s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .unwrap()
    })
    .await
    .0
}

#[tokio::test]
async fn the_counter_counts_with_nothing_on_the_server_and_a_second_process_continues() {
    let one = manager(CookieStore::new(K1), Config::default());
    let two = manager(CookieStore::new(K1), Config::default());
    let mut jar = Jar::default();
    assert_eq!(count(&one, &mut jar).await, 1);
    assert_eq!(count(&two, &mut jar).await, 2);
    assert_eq!(count(&one, &mut jar).await, 3);
    assert_eq!(jar.names(), ["id"]);
    assert!(one.store().load("anything").await.unwrap().is_none());
    // A read that is not due for a touch sends nothing.
    let (n, cookies) = visit(&two, &mut jar, |s| async move {
        s.get::<u64>("n").await.unwrap()
    })
    .await;
    assert_eq!((n, cookies.len()), (Some(3), 0));
}

#[tokio::test]
async fn what_needs_server_state_says_so() {
    let manager = manager(CookieStore::new(K1), Config::default());
    let session = manager.session(std::iter::empty());
    assert!(matches!(session.lock().await, Err(Error::LockUnsupported)));
    assert!(matches!(session.devices().await, Err(Error::DevicesOff)));
    let index = Config::default().with_devices(sessio::devices::Devices::new());
    let err = SessionManager::with_cookie_store(CookieStore::new(K1), index).unwrap_err();
    assert!(err.to_string().contains("index"), "{err}");
    let fernet_key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    let err = SessionManager::with_cookie_store(
        CookieStore::fernet([fernet_key]).unwrap(),
        Config::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("SanicCookies"), "{err}");
    let err = SessionManager::with_cookie_store(
        CookieStore::new(K1),
        Config::default().with_compat(Some(Compat::SanicCookies)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("CookieStore::fernet"), "{err}");
    let err = SessionManager::new(
        sessio::MemoryStore::default(),
        Config::default().with_compat(Some(Compat::SanicCookies)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("with_cookie_store"), "{err}");
    let err = SessionManager::with_cookie_store(
        CookieStore::new(K1).with_max_chunks(0),
        Config::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("with_max_chunks"), "{err}");
    assert!(CookieStore::fernet(["not a key"]).is_err());
    assert!(CookieStore::from_base64_keys(Vec::<String>::new()).is_err());
}

#[tokio::test]
async fn an_old_key_opens_and_the_next_write_seals_with_the_first() {
    let mut jar = Jar::default();
    let old = manager(CookieStore::new(K1), Config::default());
    assert_eq!(count(&old, &mut jar).await, 1);
    let sealed_with_k1 = jar.clone();

    let rotating = manager(CookieStore::new(K2).with_old_key(K1), Config::default());
    // A read opens the old cookie and sends nothing.
    let (n, cookies) = visit(&rotating, &mut jar.clone(), |s| async move {
        s.get::<u64>("n").await.unwrap()
    })
    .await;
    assert_eq!((n, cookies.len()), (Some(1), 0));
    assert_eq!(count(&rotating, &mut jar).await, 2);

    let new_only = manager(CookieStore::new(K2), Config::default());
    assert_eq!(count(&new_only, &mut jar).await, 3, "re-sealed with K2");
    let mut stale = sealed_with_k1;
    assert_eq!(
        count(&new_only, &mut stale).await,
        1,
        "K1 is no longer listed"
    );
}

#[tokio::test]
async fn a_large_session_is_chunked_read_back_then_shrunk_and_the_extra_chunks_expire() {
    let manager = manager(CookieStore::new(K1).with_max_chunks(8), Config::default());
    let mut jar = Jar::default();
    let big: String = (0..12 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let (_, cookies) = visit(&manager, &mut jar, |s| {
        let big = big.clone();
        async move { s.insert("big", big).await.unwrap() }
    })
    .await;
    let chunks = jar.names().len() - 1;
    assert!(chunks >= 4, "{:?}", jar.names());
    assert_eq!(cookies.len(), chunks + 1);
    for cookie in &cookies {
        assert!(cookie.len() <= 4096, "{} bytes", cookie.len());
    }
    assert_eq!(jar.0["id"], format!("chunks-{chunks}"));

    let (read, _) = visit(&manager, &mut jar, |s| async move {
        s.get::<String>("big").await.unwrap()
    })
    .await;
    assert_eq!(read.as_deref(), Some(big.as_str()));

    // Shrinks to two chunks, then to one cookie: the unused chunks are expired.
    let (_, cookies) = visit(&manager, &mut jar, |s| {
        let half = big[..5000].to_owned();
        async move { s.insert("big", half).await.unwrap() }
    })
    .await;
    assert_eq!(jar.names(), ["id", "id.0", "id.1"]);
    let removed = cookies.iter().filter(|c| c.contains("Max-Age=0")).count();
    assert_eq!(removed, chunks - 2, "{cookies:?}");
    visit(&manager, &mut jar, |s| async move {
        s.insert("big", "small").await.unwrap()
    })
    .await;
    assert_eq!(jar.names(), ["id"]);
    let (read, _) = visit(&manager, &mut jar, |s| async move {
        s.get::<String>("big").await.unwrap()
    })
    .await;
    assert_eq!(read.as_deref(), Some("small"));

    // A missing chunk, or a count that lies, opens nothing.
    visit(&manager, &mut jar, |s| {
        let big = big.clone();
        async move { s.insert("big", big).await.unwrap() }
    })
    .await;
    let mut missing = jar.clone();
    missing.0.remove("id.1");
    assert_eq!(count(&manager, &mut missing).await, 1);
    let mut lying = jar.clone();
    lying.0.insert("id".into(), "chunks-2".into());
    assert_eq!(count(&manager, &mut lying).await, 1);
}

#[tokio::test]
async fn a_session_over_the_chunks_fails_with_too_large_and_the_browser_keeps_its_cookie() {
    let manager = manager(CookieStore::new(K1).with_max_chunks(2), Config::default());
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    let before = jar.clone();
    let session = manager.session([jar.header().as_bytes()]);
    session.insert("big", "x".repeat(10_000)).await.unwrap();
    let err = session.commit_cookies().await.unwrap_err();
    assert!(matches!(err, Error::CookieTooLarge { .. }), "{err}");
    assert_eq!(err.status(), 413);
    assert!(err.to_string().contains("with_max_chunks"));
    assert_eq!(count(&manager, &mut jar).await, 2);
    assert_eq!(before.names(), ["id"]);
}

#[tokio::test]
async fn commit_refuses_to_drop_cookies_it_cannot_return() {
    let manager = manager(CookieStore::new(K1), Config::default());
    let session = manager.session(std::iter::empty());
    session.insert("big", "x".repeat(6_000)).await.unwrap();
    assert!(matches!(session.commit().await, Err(Error::SeveralCookies)));
}

#[tokio::test]
async fn idle_and_absolute_expiry_are_checked_from_inside_the_seal() {
    let clock = Manual::start();
    let config = Config::default()
        .with_clock(clock.clone())
        .with_idle_timeout(Duration::from_secs(600))
        .with_absolute_timeout(Some(Duration::from_secs(3600)))
        .with_touch_after(Duration::from_secs(60));
    let manager = manager(CookieStore::new(K1), config);
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    let replay = jar.clone();
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        count(&manager, &mut replay.clone()).await,
        1,
        "idle expired"
    );

    // Reads past the touch threshold re-seal with a later expiry, up to the absolute one.
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    for i in 1..=7 {
        clock.advance(Duration::from_secs(500));
        let (n, cookies) = visit(&manager, &mut jar, |s| async move {
            s.get::<u64>("n").await.unwrap()
        })
        .await;
        assert_eq!(n, Some(1));
        // Touched: sealed again, until the expiry inside is the absolute one.
        assert_eq!(cookies.len(), usize::from(i < 7), "visit {i}");
    }
    clock.advance(Duration::from_secs(500));
    let (n, _) = visit(&manager, &mut jar, |s| async move {
        s.get::<u64>("n").await.unwrap()
    })
    .await;
    assert_eq!(n, None, "past the absolute lifetime, however active");
}

#[tokio::test]
async fn tampered_truncated_foreign_or_misplaced_cookies_are_fresh_sessions() {
    let manager = manager(
        CookieStore::new(K1),
        Config::default().with_cookie_name("s"),
    );
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    let good = jar.0["s"].clone();
    let mut flipped = good.clone().into_bytes();
    flipped[30] = if flipped[30] == b'A' { b'B' } else { b'A' };
    let other_name = manager_named("t").await;
    for bad in [
        String::from_utf8(flipped).unwrap(),
        good[..good.len() - 1].to_owned(),
        good[..20].to_owned(),
        format!("{good}A"),
        String::new(),
        "chunks-1".into(),
        "%%%".into(),
        other_name,
    ] {
        let mut jar = Jar::default();
        jar.0.insert("s".into(), bad.clone());
        assert_eq!(count(&manager, &mut jar).await, 1, "{bad}");
    }
}

/// A cookie value sealed with the same key for another cookie name.
async fn manager_named(name: &str) -> String {
    let other = manager(
        CookieStore::new(K1),
        Config::default().with_cookie_name(name),
    );
    let mut jar = Jar::default();
    count(&other, &mut jar).await;
    jar.0[name].clone()
}

#[tokio::test]
async fn logout_rotation_login_and_flash_work_in_the_cookie() {
    let manager = manager(CookieStore::new(K1).with_max_chunks(8), Config::default());
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    visit(&manager, &mut jar, |s| async move {
        s.login("ada").await.unwrap();
        s.flash("welcome").await.unwrap();
        s.cycle_id().await.unwrap();
        s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .unwrap();
    })
    .await;
    let (seen, _) = visit(&manager, &mut jar, |s| async move {
        (
            s.current_user::<String>().await.unwrap(),
            s.take_flashes::<String>().await.unwrap(),
            s.get::<u64>("n").await.unwrap(),
        )
    })
    .await;
    assert_eq!(seen, (Some("ada".into()), vec!["welcome".into()], Some(2)));
    let kept = jar.clone();

    // A large session, then a logout: every cookie of it is removed.
    visit(&manager, &mut jar, |s| async move {
        s.insert("big", "y".repeat(9_000)).await.unwrap()
    })
    .await;
    assert!(jar.names().len() > 2);
    let (_, cookies) = visit(
        &manager,
        &mut jar,
        |s| async move { s.logout().await.unwrap() },
    )
    .await;
    assert!(
        jar.names().is_empty(),
        "{:?} after {cookies:?}",
        jar.names()
    );
    // What cannot hold client-side: a copy kept from before the logout still opens.
    let mut copy = kept;
    let (user, _) = visit(&manager, &mut copy, |s| async move {
        s.current_user::<String>().await.unwrap()
    })
    .await;
    assert_eq!(user.as_deref(), Some("ada"));
}

#[tokio::test]
async fn messagepack_sessions_travel_in_the_cookie_too() {
    #[cfg(feature = "msgpack")]
    {
        let config = Config::default().with_codec(sessio::codec::Codec::MessagePack);
        let packed = manager(CookieStore::new(K1), config);
        let json = manager(CookieStore::new(K1), Config::default());
        let mut jar = Jar::default();
        assert_eq!(count(&packed, &mut jar).await, 1);
        assert_eq!(count(&json, &mut jar).await, 2);
        assert_eq!(count(&packed, &mut jar).await, 3);
    }
}

#[tokio::test]
async fn fernet_tokens_hold_exactly_the_json_object_and_expire_with_the_idle_timeout() {
    let clock = Manual::start();
    let key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    let config = Config::default()
        .with_compat(Some(Compat::SanicCookies))
        .with_clock(clock.clone())
        .with_idle_timeout(Duration::from_secs(600));
    let manager = manager(CookieStore::fernet([key]).unwrap(), config);
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    assert_eq!(jar.names(), ["session"]);
    let token = jar.0["session"].clone();
    assert!(token.starts_with("gAAAAA"), "{token}");
    assert_eq!(count(&manager, &mut jar).await, 2);
    let replay = jar.clone();
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        count(&manager, &mut replay.clone()).await,
        1,
        "the token's TTL"
    );
}

#[tokio::test]
async fn two_tabs_writing_at_once_are_last_write_wins_as_documented() {
    let manager = manager(CookieStore::new(K1), Config::default());
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    let header = jar.header();
    let a = manager.session([header.as_bytes()]);
    let b = manager.session([header.as_bytes()]);
    a.insert("a", 1).await.unwrap();
    b.insert("b", 2).await.unwrap();
    let from_a = a.commit_cookies().await.unwrap();
    let from_b = b.commit_cookies().await.unwrap();
    jar.apply(&from_a);
    jar.apply(&from_b);
    let (seen, _) = visit(&manager, &mut jar, |s| async move {
        (
            s.get::<i32>("a").await.unwrap(),
            s.get::<i32>("b").await.unwrap(),
        )
    })
    .await;
    assert_eq!(seen, (None, Some(2)), "the response that came last wins");
}

#[tokio::test]
async fn a_destroy_without_reading_removes_every_cookie_and_a_bad_cookie_read_removes_none() {
    let manager = manager(CookieStore::new(K1).with_max_chunks(8), Config::default());
    let mut jar = Jar::default();
    visit(&manager, &mut jar, |s| async move {
        s.insert("big", "w".repeat(9_000)).await.unwrap()
    })
    .await;
    let sent = jar.names().len();
    assert!(sent >= 3, "{:?}", jar.names());
    let (_, cookies) = visit(
        &manager,
        &mut jar,
        |s| async move { s.destroy().await.unwrap() },
    )
    .await;
    assert_eq!(cookies.len(), sent, "{cookies:?}");
    assert!(jar.names().is_empty());

    // A read of a cookie that does not open leaves the browser's cookies alone (I6).
    let mut bad = Jar::default();
    bad.0.insert("id".into(), "garbage".into());
    bad.0.insert("id.3".into(), "stale".into());
    let (n, cookies) = visit(&manager, &mut bad, |s| async move {
        s.get::<u64>("n").await.unwrap()
    })
    .await;
    assert_eq!((n, cookies.len()), (None, 0));
    // A write replaces it, and expires the stray chunk.
    assert_eq!(count(&manager, &mut bad).await, 1);
    assert_eq!(bad.names(), ["id"]);
}

#[tokio::test]
async fn forged_fernet_tokens_never_panic_and_a_fernet_session_stays_one_cookie() {
    let key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    let compat = Config::default().with_compat(Some(Compat::SanicCookies));
    let manager = manager(CookieStore::fernet([key]).unwrap(), compat.clone());
    // 0x80 and a timestamp of 2^64 - 1, no key needed: the `fernet` crate overflowed here.
    for forged in [
        "gP__________",
        "gP_________7",
        "gAAAAAAAAAAA",
        "gP__________________________",
    ] {
        let mut jar = Jar::default();
        jar.0.insert("session".into(), forged.into());
        assert_eq!(count(&manager, &mut jar).await, 1, "{forged}");
    }
    // sanic-cookies reads one cookie: no chunks, a large session is refused.
    let session = manager.session(std::iter::empty());
    session.insert("big", "x".repeat(5_000)).await.unwrap();
    assert!(matches!(
        session.commit_cookies().await,
        Err(Error::CookieTooLarge { .. })
    ));
    let err = SessionManager::with_cookie_store(
        CookieStore::fernet([key]).unwrap().with_max_chunks(2),
        compat.clone(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("one cookie"), "{err}");
    // No creation time in the bare JSON object: an absolute timeout is refused.
    let err = SessionManager::with_cookie_store(
        CookieStore::fernet([key]).unwrap(),
        compat.with_absolute_timeout(Some(Duration::from_secs(60))),
    )
    .unwrap_err();
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[tokio::test]
async fn a_bad_copy_of_the_cookie_does_not_hide_a_good_one_and_huge_timeouts_are_refused() {
    let manager = manager(CookieStore::new(K1), Config::default());
    let mut jar = Jar::default();
    assert_eq!(count(&manager, &mut jar).await, 1);
    let good = jar.0["id"].clone();
    for header in [format!("id=bad; id={good}"), format!("id={good}; id=bad")] {
        let session = manager.session([header.as_bytes()]);
        assert_eq!(session.get::<u64>("n").await.unwrap(), Some(1), "{header}");
    }
    let err = SessionManager::with_cookie_store(
        CookieStore::new(K1),
        Config::default().with_idle_timeout(Duration::from_secs(u64::MAX / 2)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("100 years"), "{err}");
}
