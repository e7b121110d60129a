//! The engine's guarantees over a store: no lost writes (I1), destroyed stays destroyed
//! (I2), no fixation, rotation, and stale cookies that never touch the browser's (I6).

use sessio::store::Store;

use crate::{commit, concurrently, cookie_pair, manager, new_session, request, Timing};
use sessio::SessionManager;

/// 40 concurrent `update`s of one key on one session: the count ends at exactly 40.
pub async fn concurrent_updates_lose_nothing<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "updates").await;
    let mut seen = concurrently(&manager, &cookie, 40, |_, session| async move {
        let n = session
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .await
            .unwrap();
        commit(&session).await.unwrap();
        n
    })
    .await;
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
pub async fn disjoint_keys_merge<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "merge").await;
    concurrently(&manager, &cookie, 40, |i, session| async move {
        session.get::<bool>("seed").await.unwrap();
        tokio::task::yield_now().await;
        session.insert(&format!("k{i}"), &i).await.unwrap();
        commit(&session).await.unwrap();
    })
    .await;
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

/// A request that removes the last key races one that adds a key: the added key is kept
/// (the emptied session's delete is conditional and merges like a save).
pub async fn emptying_merges_with_a_concurrent_write<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "empty-merge").await;
    let emptier = request(&manager, &cookie);
    assert_eq!(emptier.remove::<bool>("seed").await.unwrap(), Some(true));
    let adder = request(&manager, &cookie);
    adder.insert("cart", &[1, 2]).await.unwrap();
    commit(&adder).await.unwrap();
    let answer = commit(&emptier).await.unwrap();
    assert!(
        answer.as_deref().is_none_or(|c| !c.contains("Max-Age=0")),
        "the session still holds the other request's key; its cookie must stay, got {answer:?}"
    );
    let after = request(&manager, &cookie);
    assert_eq!(
        after.get::<Vec<i32>>("cart").await.unwrap(),
        Some(vec![1, 2]),
        "a concurrent write was lost"
    );
    assert_eq!(
        after.get::<bool>("seed").await.unwrap(),
        None,
        "the removal was lost"
    );
}

/// A request that saves after another destroyed the session does not bring it back (I2),
/// and its own write is not lost either (I1): it goes into a new session, as if the request
/// had arrived after the logout, with none of the destroyed session's data.
pub async fn destroyed_session_is_not_resurrected<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "destroy").await;
    let writer = request(&manager, &cookie);
    writer.get::<bool>("seed").await.unwrap();
    let logout = request(&manager, &cookie);
    logout.destroy().await.unwrap();
    let removal = commit(&logout)
        .await
        .unwrap()
        .expect("destroy expires the cookie");
    assert!(removal.contains("Max-Age=0"), "removal cookie: {removal}");
    writer.insert("late", &1).await.unwrap();
    let answer = commit(&writer)
        .await
        .unwrap()
        .expect("the late write gets a session");
    let fresh = cookie_pair(&answer);
    assert!(
        !answer.contains("Max-Age=0"),
        "the late write was dropped: {answer}"
    );
    assert_ne!(id_of(&fresh), id_of(&cookie), "the destroyed id was reused");
    let after = request(&manager, &cookie);
    assert!(
        after.is_empty().await.unwrap(),
        "destroyed session came back"
    );
    let moved = request(&manager, &fresh);
    assert_eq!(
        moved.get::<i32>("late").await.unwrap(),
        Some(1),
        "the late write was lost"
    );
    assert_eq!(
        moved.get::<bool>("seed").await.unwrap(),
        None,
        "destroyed data was carried over"
    );
    // An update racing the logout does not revive it either (it starts a new session).
    let updater = request(&manager, &cookie);
    updater
        .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
        .await
        .unwrap();
    let set = commit(&updater)
        .await
        .unwrap()
        .expect("a new session is issued");
    assert_ne!(
        id_of(&cookie_pair(&set)),
        id_of(&cookie),
        "the destroyed id was reused"
    );
    assert!(
        request(&manager, &cookie).is_empty().await.unwrap(),
        "destroyed session came back"
    );
    // A request that only removed keys of the destroyed session has nothing to carry: its
    // cookie goes.
    let (manager, cookie) = new_session(store, "destroy-remove").await;
    let remover = request(&manager, &cookie);
    remover.get::<bool>("seed").await.unwrap();
    let logout = request(&manager, &cookie);
    logout.destroy().await.unwrap();
    commit(&logout).await.unwrap();
    remover.insert("x", 1).await.unwrap();
    remover.remove::<i32>("x").await.unwrap();
    let answer = commit(&remover).await.unwrap();
    assert!(
        answer.as_deref().is_some_and(|c| c.contains("Max-Age=0")),
        "{answer:?}"
    );
}

/// The id in a `name=value` cookie pair, without the write count a caching store adds.
pub(crate) fn id_of(pair: &str) -> &str {
    pair.split('.').next().unwrap_or(pair)
}

/// An id the server never issued is replaced, not adopted.
pub async fn unknown_ids_are_never_adopted<S: Store + Clone>(store: &S, _: Timing) {
    let manager = manager(store, "fixation");
    let forged = sessio::id::SessionId::generate().unwrap();
    let cookie = format!("{}={}", manager.config().cookie_name(), forged.as_str());
    let session = request(&manager, &cookie);
    session.insert("user", "victim").await.unwrap();
    let set = commit(&session).await.unwrap().expect("a new id is issued");
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

/// `cycle_id` keeps the data under a new id. A request that still carries the old id (a
/// browser's request sent before the rotation's answer arrived) follows the rotation for
/// the grace period: it reads and writes the successor, never learns its id and sends no
/// cookie. A login's rotation is not followed: the old id reads as empty and its writes
/// are refused ([`sessio::Error::Superseded`]).
pub async fn rotation_keeps_data_and_the_old_id_follows_unseen<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    let (manager, old) = new_session(store, "rotate").await;
    let session = request(&manager, &old);
    session.cycle_id().await.unwrap();
    let set = commit(&session)
        .await
        .unwrap()
        .expect("rotation sends the new id");
    let new = cookie_pair(&set);
    assert_ne!(new, old);
    assert_eq!(
        request(&manager, &new).get::<bool>("seed").await.unwrap(),
        Some(true)
    );
    let stale = request(&manager, &old);
    assert_eq!(
        stale.get::<bool>("seed").await.unwrap(),
        Some(true),
        "a request with the old id did not follow the rotation"
    );
    stale.insert("x", 1).await.unwrap();
    assert_eq!(
        commit(&stale).await.unwrap(),
        None,
        "a request with the old id was sent a cookie (it would replace the new one)"
    );
    assert_eq!(
        request(&manager, &new).get::<i32>("x").await.unwrap(),
        Some(1),
        "a write with the old id is not in the successor"
    );
    // A login's rotation: the old id is dead at once.
    let login = request(&manager, &new);
    login.login("alice").await.unwrap();
    let newest = cookie_pair(&commit(&login).await.unwrap().expect("login rotates"));
    let planted = request(&manager, &new);
    assert!(
        planted.is_empty().await.unwrap(),
        "the pre-login id reads the login"
    );
    assert_eq!(planted.current_user::<String>().await.unwrap(), None);
    planted.insert("y", 1).await.unwrap();
    let refused = commit(&planted).await;
    assert!(
        matches!(refused, Err(sessio::Error::Superseded)),
        "a write with the pre-login id: {refused:?}"
    );
    let after = request(&manager, &newest);
    assert_eq!(
        after.get::<i32>("y").await.unwrap(),
        None,
        "it wrote into the login"
    );
    assert_eq!(
        after.current_user::<String>().await.unwrap().as_deref(),
        Some("alice")
    );
}

/// I8 at the store: writers that loaded the session before a *login* and save after it
/// are refused ([`sessio::Error::Superseded`]), never followed into the logged-in session
/// (the old id may be an attacker's), and send no cookie; the login keeps what was
/// written before it.
pub async fn writes_racing_a_login_are_refused_not_followed<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    let (manager, old) = new_session(store, "login-race").await;
    let writers: Vec<_> = (0..4).map(|_| request(&manager, &old)).collect();
    for writer in &writers {
        assert_eq!(writer.get::<bool>("seed").await.unwrap(), Some(true));
    }
    let login = request(&manager, &old);
    login.login("alice").await.unwrap();
    let new = cookie_pair(&commit(&login).await.unwrap().expect("the login's new id"));
    for (i, writer) in writers.into_iter().enumerate() {
        writer.insert(&format!("w{i}"), &i).await.unwrap();
        let refused = commit(&writer).await;
        assert!(
            matches!(refused, Err(sessio::Error::Superseded)),
            "a write with the pre-login id: {refused:?}"
        );
    }
    let after = request(&manager, &new);
    assert_eq!(after.get::<bool>("seed").await.unwrap(), Some(true));
    for i in 0..4 {
        assert_eq!(
            after.get::<usize>(&format!("w{i}")).await.unwrap(),
            None,
            "a write with the pre-login id reached the login"
        );
    }
}

/// Flash messages are taken once: two requests that both saw one take it at the same time,
/// and exactly one of them gets it, whether the take empties the session (a deletion) or
/// not (a save).
pub async fn a_flash_is_taken_exactly_once<S: Store + Clone>(store: &S, _: Timing) {
    for lone in [true, false] {
        let manager = manager(store, "flash-once");
        let first = manager.session(std::iter::empty());
        if !lone {
            first.insert("keep", &1).await.unwrap();
        }
        first.flash("hello").await.unwrap();
        let cookie = cookie_pair(&commit(&first).await.unwrap().expect("a cookie"));
        let (a, b) = (request(&manager, &cookie), request(&manager, &cookie));
        // Both have read the session (and so the message) before either takes it.
        assert!(a.contains_key(sessio::keys::FLASH_KEY).await.unwrap());
        assert!(b.contains_key(sessio::keys::FLASH_KEY).await.unwrap());
        let (ta, tb) = tokio::join!(a.take_flashes::<String>(), b.take_flashes::<String>());
        let taken = ta.unwrap().len() + tb.unwrap().len();
        assert_eq!(
            taken, 1,
            "lone = {lone}: the message was shown {taken} times"
        );
    }
}

/// Writers that loaded the session before a rotation and save after it: every write is in
/// the successor, and none of them reveals the new id to its client.
pub async fn writes_racing_a_rotation_are_kept<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, old) = new_session(store, "rotate-race").await;
    let writers: Vec<_> = (0..8).map(|_| request(&manager, &old)).collect();
    for writer in &writers {
        assert_eq!(writer.get::<bool>("seed").await.unwrap(), Some(true));
    }
    let rotation = request(&manager, &old);
    rotation.cycle_id().await.unwrap();
    let new = cookie_pair(
        &commit(&rotation)
            .await
            .unwrap()
            .expect("rotation sends the new id"),
    );
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, writer)| {
            tokio::spawn(async move {
                writer.insert(&format!("w{i}"), &i).await.unwrap();
                commit(&writer).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        let answer = task.await.unwrap();
        assert!(
            answer.as_deref().is_none_or(|c| !c.contains(&new)),
            "a writer with the old id was handed the new one: {answer:?}"
        );
    }
    let after = request(&manager, &new);
    for i in 0..8 {
        assert_eq!(
            after.get::<usize>(&format!("w{i}")).await.unwrap(),
            Some(i),
            "write w{i} racing the rotation was lost"
        );
    }
}

/// A read with a rotated-away, destroyed or unknown id sends no `Set-Cookie` at all: the
/// browser may hold a newer cookie by now (a login's), which must survive.
pub async fn stale_cookies_never_touch_the_browser_cookie<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, old) = new_session(store, "stale").await;
    let login = request(&manager, &old);
    login.login("alice").await.unwrap();
    let new = cookie_pair(&commit(&login).await.unwrap().unwrap());
    let late = request(&manager, &old);
    assert_eq!(late.current_user::<String>().await.unwrap(), None);
    assert_eq!(
        commit(&late).await.unwrap(),
        None,
        "a read with the pre-login cookie touched the cookie"
    );
    let forged = format!(
        "{}={}",
        manager.config().cookie_name(),
        sessio::id::SessionId::generate().unwrap().as_str()
    );
    let unknown = request(&manager, &forged);
    assert!(unknown.is_empty().await.unwrap());
    assert_eq!(
        commit(&unknown).await.unwrap(),
        None,
        "a read with an unknown id touched the cookie"
    );
    let garbage = request(&manager, "id=garbage");
    assert!(garbage.is_empty().await.unwrap());
    assert_eq!(
        commit(&garbage).await.unwrap(),
        None,
        "a read with a garbage cookie touched the cookie"
    );
    assert_eq!(
        request(&manager, &new)
            .current_user::<String>()
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
}

/// A logout that started before a rotation and ends after it destroys the rotated session
/// too: the logout carried the old id, but it is the same session (I2).
pub async fn a_logout_racing_a_rotation_ends_the_successor<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, old) = new_session(store, "logout-rotate").await;
    let logout = request(&manager, &old);
    assert_eq!(logout.get::<bool>("seed").await.unwrap(), Some(true));
    logout.destroy().await.unwrap();
    let rotation = request(&manager, &old);
    rotation.cycle_id().await.unwrap();
    let new = cookie_pair(&commit(&rotation).await.unwrap().expect("new id"));
    let removal = commit(&logout)
        .await
        .unwrap()
        .expect("the logout expires the cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(
        request(&manager, &new).is_empty().await.unwrap(),
        "the rotated session outlived a logout that raced it"
    );
}

/// Sessions written in MessagePack: 20 concurrent updates merge, a rotation keeps the
/// data, a manager configured for JSON reads them (records say their codec), and a
/// logout ends them.
pub async fn messagepack_sessions_merge_rotate_and_read_back<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    use sessio::codec::Codec;
    let json = crate::manager(store, "msgpack");
    let config = json.config().clone().with_codec(Codec::MessagePack);
    let msgpack =
        SessionManager::from_arc(std::sync::Arc::new(store.clone()), config).expect("valid config");
    let first = msgpack.session(std::iter::empty());
    first
        .insert(
            "nested",
            serde_json::json!({"a": [1, 2.5, "é", null, true]}),
        )
        .await
        .unwrap();
    let cookie = cookie_pair(&commit(&first).await.unwrap().expect("a cookie"));
    concurrently(&msgpack, &cookie, 20, |_, session| async move {
        session
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .await
            .unwrap();
        commit(&session).await.unwrap();
    })
    .await;
    let rotating = request(&msgpack, &cookie);
    rotating.cycle_id().await.unwrap();
    let rotated = cookie_pair(&commit(&rotating).await.unwrap().expect("a new id"));
    let read = request(&json, &rotated);
    assert_eq!(read.get::<u32>("n").await.unwrap(), Some(20));
    assert_eq!(
        read.get_value("nested").await.unwrap(),
        Some(serde_json::json!({"a": [1, 2.5, "é", null, true]}))
    );
    read.insert("by_json", 1).await.unwrap();
    commit(&read).await.unwrap();
    let back = request(&msgpack, &rotated);
    assert_eq!(back.get::<i32>("by_json").await.unwrap(), Some(1));
    back.logout().await.unwrap();
    commit(&back).await.unwrap();
    assert!(request(&msgpack, &rotated).is_empty().await.unwrap());
}
