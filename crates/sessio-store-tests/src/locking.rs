//! The [`LockingStore`] contract (exclusion, leases, fencing, conditional locked writes)
//! and the lock's guarantees over it: exclusion (I3), composing with logout, rotation and
//! plain writes (I2, I3, I4).

use std::time::Duration;

use sessio::store::{Acquired, AfterWrite, LockingStore, Outcome, Store};
use sessio::Error;

use crate::basic::done;
use crate::{commit, concurrently, cookie_pair, new_session, request, token, unique, Timing, LONG};

fn locking<S: Store>(store: &S) -> &dyn LockingStore {
    store
        .locking()
        .expect("the store must implement LockingStore (Store::locking returns None)")
}

/// One lease at a time; the grant carries the current record.
pub async fn lock_excludes_and_returns_the_record<S: Store>(store: &S, _: Timing) {
    let locks = locking(store);
    let key = unique("lock");
    done(store.create(&key, b"record", LONG).await.unwrap(), "create");
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
    assert_eq!(
        store.load(&fresh).await.unwrap(),
        None,
        "a lease is not a record"
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

/// After a lease lapses and another takes it, the old holder's writes are refused.
pub async fn saves_under_a_lease_are_fenced<S: Store>(store: &S, timing: Timing) {
    let locks = locking(store);
    let key = unique("fence");
    let (old, new) = (token(), token());
    assert!(matches!(
        locks.acquire(&key, &old, timing.short_ttl).await.unwrap(),
        Acquired::Granted(None)
    ));
    done(
        locks
            .save_locked(&key, &old, None, b"by-old", LONG, AfterWrite::KeepLease)
            .await
            .unwrap(),
        "a create under the lease",
    );
    tokio::time::sleep(timing.past_short_ttl).await;
    let Acquired::Granted(Some(current)) = locks.acquire(&key, &new, LONG).await.unwrap() else {
        panic!("the lapsed lease must be free, with the record");
    };
    assert_eq!(
        locks
            .save_locked(
                &key,
                &old,
                Some(&current),
                b"late",
                LONG,
                AfterWrite::Release
            )
            .await
            .unwrap(),
        Outcome::LeaseLost,
        "a save under a lapsed lease must be refused"
    );
    assert_eq!(
        locks
            .delete_locked(&key, &old, &current, AfterWrite::Release)
            .await
            .unwrap(),
        Outcome::LeaseLost,
        "a delete under a lapsed lease must be refused"
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"by-old");
    done(
        locks
            .save_locked(
                &key,
                &new,
                Some(&current),
                b"by-new",
                LONG,
                AfterWrite::Release,
            )
            .await
            .unwrap(),
        "the holder's save",
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"by-new");
    let other = token();
    assert!(
        matches!(
            locks.acquire(&key, &other, LONG).await.unwrap(),
            Acquired::Granted(_)
        ),
        "a save with AfterWrite::Release must free the lease"
    );
    assert!(locks.release(&key, &other).await.unwrap());
    store.delete(&key).await.unwrap();
}

/// Writes under a lease are conditional like plain ones: a stale base conflicts, a create
/// on an existing record conflicts, a save on a deleted record is missing, and a write that
/// is not done keeps the lease.
pub async fn locked_writes_are_conditional<S: Store>(store: &S, _: Timing) {
    let locks = locking(store);
    let key = unique("locked-cas");
    let holder = token();
    assert!(matches!(
        locks.acquire(&key, &holder, LONG).await.unwrap(),
        Acquired::Granted(None)
    ));
    done(
        locks
            .save_locked(&key, &holder, None, b"v1", LONG, AfterWrite::KeepLease)
            .await
            .unwrap(),
        "create",
    );
    let seen = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        locks
            .save_locked(&key, &holder, None, b"again", LONG, AfterWrite::KeepLease)
            .await
            .unwrap(),
        Outcome::Conflict,
        "a create under the lease must not overwrite"
    );
    // A plain writer changes the record while the lease is held.
    done(
        store.save(&key, &seen, b"plain", LONG).await.unwrap(),
        "a plain save beside the lease",
    );
    assert_eq!(
        locks
            .save_locked(
                &key,
                &holder,
                Some(&seen),
                b"stale",
                LONG,
                AfterWrite::Release
            )
            .await
            .unwrap(),
        Outcome::Conflict,
        "a locked save must not overwrite a change it has not seen"
    );
    assert_eq!(
        locks
            .delete_locked(&key, &holder, &seen, AfterWrite::Release)
            .await
            .unwrap(),
        Outcome::Conflict,
        "a locked delete must not delete a change it has not seen"
    );
    assert_eq!(store.load(&key).await.unwrap().unwrap().data, b"plain");
    let stranger = token();
    assert_eq!(
        locks.acquire(&key, &stranger, LONG).await.unwrap(),
        Acquired::Held,
        "a write that was not done must not release the lease"
    );
    // A logout deletes the record; the holder's save must not bring it back.
    let current = store.load(&key).await.unwrap().unwrap();
    store.delete(&key).await.unwrap();
    let outcome = locks
        .save_locked(
            &key,
            &holder,
            Some(&current),
            b"revived",
            LONG,
            AfterWrite::Release,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Missing | Outcome::Conflict),
        "{outcome:?}"
    );
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "a locked save resurrected a deleted record"
    );
    locks.release(&key, &holder).await.unwrap();
}

/// `release` frees only the caller's own lease.
pub async fn release_is_compare_and_delete<S: Store>(store: &S, _: Timing) {
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
pub async fn delete_under_a_lease_is_fenced<S: Store>(store: &S, _: Timing) {
    let locks = locking(store);
    let key = unique("delete-locked");
    done(store.create(&key, b"x", LONG).await.unwrap(), "create");
    let (holder, stranger) = (token(), token());
    let Acquired::Granted(Some(seen)) = locks.acquire(&key, &holder, LONG).await.unwrap() else {
        panic!("acquire must be granted with the record");
    };
    assert_eq!(
        locks
            .delete_locked(&key, &stranger, &seen, AfterWrite::Release)
            .await
            .unwrap(),
        Outcome::LeaseLost
    );
    assert!(store.load(&key).await.unwrap().is_some());
    done(
        locks
            .delete_locked(&key, &holder, &seen, AfterWrite::Release)
            .await
            .unwrap(),
        "the holder's delete",
    );
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert_eq!(
        locks.acquire(&key, &stranger, LONG).await.unwrap(),
        Acquired::Granted(None)
    );
    assert!(locks.release(&key, &stranger).await.unwrap());
}

/// 20 concurrent lock holders doing read, sleep, write: results are exactly 1..=20.
pub async fn lock_serializes_read_modify_write<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "lock-rmw").await;
    let mut seen = concurrently(&manager, &cookie, 20, |_, session| async move {
        let guard = session.lock().await.unwrap();
        let n: u32 = guard.get("locked").await.unwrap().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(2)).await;
        guard.insert("locked", &(n + 1)).await.unwrap();
        guard.unlock().await.unwrap();
        commit(&session).await.unwrap();
        n + 1
    })
    .await;
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<_>>(),
        "lock holders overlapped"
    );
}

/// A logout while another request holds the lock stays a logout: the holder's save does
/// not recreate the session.
pub async fn a_logout_during_a_lock_stays_a_logout<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "lock-logout").await;
    let holder = request(&manager, &cookie);
    let guard = holder.lock().await.unwrap();
    let logout = request(&manager, &cookie);
    logout.destroy().await.unwrap();
    commit(&logout).await.unwrap();
    guard.insert("locked", &1).await.unwrap();
    let unlocked = guard.unlock().await;
    assert!(
        matches!(unlocked, Err(Error::Ended)),
        "the locked section must end with Ended (the session is gone), not report success: {unlocked:?}"
    );
    let _ = commit(&holder).await;
    assert!(
        request(&manager, &cookie).is_empty().await.unwrap(),
        "the locked save undid a logout"
    );
    // The lease went with it: another lock on a fresh session is not blocked.
    let next = request(&manager, &cookie);
    next.lock().await.unwrap().unlock().await.unwrap();
}

/// Plain writes made while another request holds the lock are kept, and the holder's own
/// write lands too.
pub async fn plain_writes_during_a_lock_are_kept<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "lock-plain").await;
    let holder = request(&manager, &cookie);
    let guard = holder.lock().await.unwrap();
    let plain = request(&manager, &cookie);
    plain.insert("cart", &[7]).await.unwrap();
    commit(&plain).await.unwrap();
    let counter = request(&manager, &cookie);
    counter
        .update("foo", |n: Option<u32>| n.unwrap_or(0) + 1)
        .await
        .unwrap();
    commit(&counter).await.unwrap();
    guard.insert("locked", &1).await.unwrap();
    guard.unlock().await.unwrap();
    commit(&holder).await.unwrap();
    let after = request(&manager, &cookie);
    assert_eq!(
        after.get::<Vec<i32>>("cart").await.unwrap(),
        Some(vec![7]),
        "the lock holder's save overwrote a plain write"
    );
    assert_eq!(
        after.get::<u32>("foo").await.unwrap(),
        Some(1),
        "the lock holder's save overwrote an update"
    );
    assert_eq!(after.get::<u32>("locked").await.unwrap(), Some(1));
}

/// `cycle_id` inside a locked section: the unlock saves under the new id, the lock moves
/// with the session and is released, the old id is dead.
pub async fn rotating_inside_the_lock_moves_it<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, old) = new_session(store, "lock-rotate").await;
    let session = request(&manager, &old);
    let guard = session.lock().await.unwrap();
    guard.cycle_id().await.unwrap();
    guard.insert("user", "alice").await.unwrap();
    guard.unlock().await.unwrap();
    let set = commit(&session)
        .await
        .unwrap()
        .expect("the rotation sends the new id");
    let new = cookie_pair(&set);
    assert_ne!(new, old);
    let after = request(&manager, &new);
    assert_eq!(
        after.get::<String>("user").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(after.get::<bool>("seed").await.unwrap(), Some(true));
    // A request still carrying the old id follows the rotation, unseen.
    let stale = request(&manager, &old);
    assert_eq!(
        stale.get::<String>("user").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        commit(&stale).await.unwrap(),
        None,
        "the old id was sent a cookie"
    );
    // Neither lease is left behind.
    tokio::time::timeout(Duration::from_secs(5), async {
        after.lock().await.unwrap().unlock().await.unwrap();
    })
    .await
    .expect("the lock moved with the session and must be free");
    // The same with the guard dropped instead of unlocked, and a commit.
    let session = request(&manager, &new);
    let guard = session.lock().await.unwrap();
    guard.cycle_id().await.unwrap();
    drop(guard);
    let set = commit(&session)
        .await
        .unwrap()
        .expect("the rotation sends the new id");
    let newer = cookie_pair(&set);
    let after = request(&manager, &newer);
    assert_eq!(
        after.get::<String>("user").await.unwrap().as_deref(),
        Some("alice")
    );
    tokio::time::timeout(Duration::from_secs(5), async {
        after.lock().await.unwrap().unlock().await.unwrap();
    })
    .await
    .expect("the lock must be free after commit");
}

/// `destroy` inside a locked section ends the session and the lock, without a panic.
pub async fn destroying_inside_the_lock_ends_it<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, cookie) = new_session(store, "lock-destroy").await;
    let session = request(&manager, &cookie);
    let guard = session.lock().await.unwrap();
    guard.destroy().await.unwrap();
    guard.unlock().await.unwrap();
    let answer = commit(&session).await.unwrap();
    assert!(
        answer.as_deref().is_some_and(|c| c.contains("Max-Age=0")),
        "{answer:?}"
    );
    assert!(
        request(&manager, &cookie).is_empty().await.unwrap(),
        "destroyed under the lock, still there"
    );
    // And with data stored after the destroy: it goes into a new session.
    let (manager, cookie) = new_session(store, "lock-destroy-2").await;
    let session = request(&manager, &cookie);
    let guard = session.lock().await.unwrap();
    guard.destroy().await.unwrap();
    guard.insert("after", &1).await.unwrap();
    drop(guard);
    let set = commit(&session).await.unwrap().expect("a new session");
    let new = cookie_pair(&set);
    assert_ne!(new, cookie);
    assert_eq!(
        request(&manager, &new).get::<i32>("after").await.unwrap(),
        Some(1)
    );
    assert!(request(&manager, &cookie).is_empty().await.unwrap());
}

/// Another request rotates the session while it is locked: the holder's save is refused
/// with `LockLost` (never written to the dead id), and the lease is released.
pub async fn a_rotation_by_another_request_ends_the_lock<S: Store + Clone>(store: &S, _: Timing) {
    let (manager, old) = new_session(store, "lock-rotated").await;
    let holder = request(&manager, &old);
    let guard = holder.lock().await.unwrap();
    let rotation = request(&manager, &old);
    rotation.cycle_id().await.unwrap();
    let new = cookie_pair(&commit(&rotation).await.unwrap().expect("new id"));
    guard.insert("locked", &1).await.unwrap();
    let unlocked = guard.unlock().await;
    assert!(matches!(unlocked, Err(Error::LockLost)), "{unlocked:?}");
    for cookie in [&old, &new] {
        assert_eq!(
            request(&manager, cookie)
                .get::<i32>("locked")
                .await
                .unwrap(),
            None,
            "the refused locked section was written"
        );
    }
    let after = request(&manager, &new);
    assert_eq!(after.get::<bool>("seed").await.unwrap(), Some(true));
    tokio::time::timeout(Duration::from_secs(5), async {
        after.lock().await.unwrap().unlock().await.unwrap();
    })
    .await
    .expect("the successor's lock is free");
}

/// A plain write of a key that the lock holder also changes: the holder's save is refused
/// (`Overwritten`), and the plain write is kept (I3: the holder never overwrites a change it
/// has not seen). Plain writes of other keys merge.
pub async fn a_lock_holder_never_overwrites_a_concurrent_write_of_its_key<S: Store + Clone>(
    store: &S,
    _: Timing,
) {
    let (manager, cookie) = new_session(store, "lock-same-key").await;
    let holder = request(&manager, &cookie);
    let guard = holder.lock().await.unwrap();
    let n: i64 = guard.get("locked").await.unwrap().unwrap_or(0);
    let plain = request(&manager, &cookie);
    plain.insert("locked", 100).await.unwrap();
    plain.insert("other", 1).await.unwrap();
    commit(&plain).await.unwrap();
    guard.insert("locked", n + 1).await.unwrap();
    let unlocked = guard.unlock().await;
    assert!(
        matches!(unlocked, Err(Error::Overwritten { ref key }) if key == "locked"),
        "{unlocked:?}"
    );
    let after = request(&manager, &cookie);
    assert_eq!(
        after.get::<i64>("locked").await.unwrap(),
        Some(100),
        "the holder overwrote a plain write"
    );
    assert_eq!(after.get::<i64>("other").await.unwrap(), Some(1));
    // The lease was released with the refusal.
    tokio::time::timeout(Duration::from_secs(5), async {
        request(&manager, &cookie)
            .lock()
            .await
            .unwrap()
            .unlock()
            .await
            .unwrap();
    })
    .await
    .expect("the refused holder's lease is free");
}
