//! The user's devices index over a store ([`devices_suite!`](crate::devices_suite)): listing
//! across "processes" (two managers on one store), revoking under concurrent logins and a
//! racing rotation, the maximum per user, and expiry with the sessions.

use std::sync::Arc;
use std::time::Duration;

use sessio::auth::Login;
use sessio::devices::Devices;
use sessio::{store::Store, Config, SessionManager};

use crate::{commit, cookie_pair, request, unique, Timing};

/// Two managers ("processes") on `store` with the index on, sharing a fresh key prefix.
fn pair_of_managers<S: Store + Clone>(
    store: &S,
    name: &str,
    index: Devices,
) -> (SessionManager, SessionManager) {
    let config = Config::default()
        .with_key_prefix(format!("{}:", unique(name)))
        .with_max_retries(200)
        .with_touch_after(Duration::ZERO)
        .with_devices(index);
    let one = SessionManager::from_arc(Arc::new(store.clone()), config.clone()).expect("config");
    let two = SessionManager::from_arc(Arc::new(store.clone()), config).expect("config");
    (one, two)
}

async fn login(manager: &SessionManager, user: &str, login: Login) -> String {
    let session = manager.session(std::iter::empty());
    session.login_with(user, login).await.unwrap();
    let set = commit(&session)
        .await
        .unwrap()
        .expect("a login sets a cookie");
    cookie_pair(&set)
}

async fn user_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    request(manager, cookie).current_user().await.unwrap()
}

/// 12 concurrent logins of one user on two processes are all listed, once each; revoking
/// the others from one of them logs every other out on both processes, and leaves another
/// user's session alone.
pub async fn revoke_others_ends_every_other_session_of_the_user<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    let (one, two) = pair_of_managers(store, "revoke-others", Devices::new());
    let bob = login(&two, "bob", Login::new()).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let manager = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                login(&manager, "ada", Login::new().label(format!("device {i}"))).await
            })
        })
        .collect();
    let mut cookies = Vec::new();
    for task in tasks {
        cookies.push(task.await.expect("a login panicked"));
    }
    let list = request(&one, &cookies[5]).devices().await.unwrap();
    assert_eq!(
        list.len(),
        12,
        "every concurrent login is listed once: {list:?}"
    );
    assert_eq!(list.iter().filter(|s| s.current).count(), 1);

    let survivor = request(&two, &cookies[5]);
    assert_eq!(survivor.revoke_others().await.unwrap(), 11);
    commit(&survivor).await.unwrap();
    for (i, cookie) in cookies.iter().enumerate() {
        for manager in [&one, &two] {
            assert_eq!(
                user_of(manager, cookie).await.is_some(),
                i == 5,
                "session {i} after revoke-others"
            );
        }
    }
    assert_eq!(user_of(&one, &bob).await.as_deref(), Some("bob"));
    assert_eq!(request(&one, &cookies[5]).devices().await.unwrap().len(), 1);
}

/// A revocation that races the revoked session's own rotation ends the rotated session
/// too (it follows the rotation's forward), and a handle of one user is nothing to
/// another.
pub async fn a_revocation_racing_a_rotation_ends_the_rotated_session<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    let (one, two) = pair_of_managers(store, "revoke-rotate", Devices::new());
    let target = login(&one, "ada", Login::new()).await;
    let revoker = login(&two, "ada", Login::new()).await;
    let bob = login(&two, "bob", Login::new()).await;
    let handle = request(&one, &target)
        .handle()
        .await
        .unwrap()
        .expect("a handle");
    assert!(
        !request(&two, &bob).revoke(&handle).await.unwrap(),
        "not bob's"
    );

    // The target rotates after the revoker read the index and before it revokes.
    let revoking = request(&two, &revoker);
    assert_eq!(revoking.devices().await.unwrap().len(), 2);
    let rotating = request(&one, &target);
    rotating.cycle_id().await.unwrap();
    let rotated = cookie_pair(&commit(&rotating).await.unwrap().expect("a new id"));
    assert!(revoking.revoke(&handle).await.unwrap());
    commit(&revoking).await.unwrap();
    assert_eq!(
        user_of(&one, &rotated).await,
        None,
        "the rotated session ended"
    );
    assert_eq!(user_of(&one, &target).await, None);
    assert_eq!(user_of(&one, &revoker).await.as_deref(), Some("ada"));
}

/// With a maximum of 2, the third login ends the least recently active session (the one
/// not written since), on whichever process it was.
pub async fn the_maximum_ends_the_least_recently_active<S: Store + Clone>(store: &S, _: Timing) {
    let (one, two) = pair_of_managers(store, "max", Devices::new().max_per_user(2));
    let first = login(&one, "ada", Login::new()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = login(&two, "ada", Login::new()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let active = request(&two, &first);
    active.insert("cart", 1).await.unwrap();
    commit(&active).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let third = login(&one, "ada", Login::new()).await;
    assert_eq!(
        user_of(&two, &second).await,
        None,
        "the least recently active ended"
    );
    assert_eq!(user_of(&one, &first).await.as_deref(), Some("ada"));
    assert_eq!(user_of(&two, &third).await.as_deref(), Some("ada"));
    assert_eq!(request(&one, &third).devices().await.unwrap().len(), 2);
}

/// An entry expires with its session: a session idle past its timeout leaves the list of
/// the user's other sessions.
pub async fn entries_expire_with_their_sessions<S: Store + Clone>(store: &S, timing: Timing) {
    let (one, two) = pair_of_managers(store, "expiry", Devices::new());
    let idle = Duration::from_secs(1);
    let short = login(&one, "ada", Login::new().idle(idle)).await;
    let long = login(&two, "ada", Login::new().idle(Duration::from_secs(60))).await;
    assert_eq!(request(&one, &long).devices().await.unwrap().len(), 2);
    tokio::time::sleep(idle + timing.past_short_ttl).await;
    assert_eq!(user_of(&one, &short).await, None);
    let list = request(&two, &long).devices().await.unwrap();
    assert_eq!(list.len(), 1, "the expired one is not listed: {list:?}");
    assert!(list[0].current);
}

/// Six concurrent logins of one user on two processes, with a maximum of 3, ten times:
/// exactly 3 sessions are left each time. Concurrent logins never end one that another
/// counts on (found by a hostile run: two new logins ended each other).
pub async fn concurrent_logins_past_the_maximum_leave_exactly_the_maximum<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    for round in 0..10 {
        let (one, two) = pair_of_managers(store, "max-race", Devices::new().max_per_user(3));
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let manager = if i % 2 == 0 { one.clone() } else { two.clone() };
                tokio::spawn(async move { login(&manager, "ada", Login::new()).await })
            })
            .collect();
        let mut cookies = Vec::new();
        for task in tasks {
            cookies.push(task.await.expect("a login panicked"));
        }
        let mut alive = 0;
        for cookie in &cookies {
            alive += usize::from(user_of(&one, cookie).await.is_some());
        }
        assert_eq!(
            alive, 3,
            "round {round}: {alive} sessions left of 6 logins, max 3"
        );
    }
}
