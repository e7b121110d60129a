//! MessagePack records against what they meet: a lock held across processes, a rotation
//! inside the lock, a plain write of another key merged into the holder's save, and a
//! JSON process reading it all back.
#![cfg(feature = "msgpack")]

use std::time::Duration;

use sessio::{codec::Codec, Config, Error, MemoryStore, SessionManager};

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_messagepack_session_under_a_lock_rotates_merges_and_reads_back_as_json() {
    let store = MemoryStore::default();
    let config = Config::default().with_lock_wait(Duration::from_millis(200));
    let packed =
        SessionManager::new(store.clone(), config.clone().with_codec(Codec::MessagePack)).unwrap();
    let json = SessionManager::new(store, config).unwrap();

    let first = packed.session(std::iter::empty());
    first.insert("balance", 100).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());

    let holder = packed.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    let balance: i64 = guard.get("balance").await.unwrap().unwrap();
    guard.insert("balance", balance - 30).await.unwrap();
    guard.cycle_id().await.unwrap();

    // Another process: the lock excludes it; a plain write of another key goes through.
    let other = json.session([cookie.as_bytes()]);
    assert!(matches!(other.lock().await, Err(Error::LockTimeout { .. })));
    let plain = json.session([cookie.as_bytes()]);
    plain.insert("note", "hi").await.unwrap();
    plain.commit().await.unwrap();

    guard.unlock().await.unwrap();
    let rotated = pair(&holder.commit().await.unwrap().expect("the new id's cookie"));
    assert_ne!(rotated, cookie);

    let read = json.session([rotated.as_bytes()]);
    assert_eq!(read.get::<i64>("balance").await.unwrap(), Some(70));
    assert_eq!(
        read.get::<String>("note").await.unwrap().as_deref(),
        Some("hi")
    );
    // A request still carrying the old id follows the rotation, and is not told the new id.
    let old = json.session([cookie.as_bytes()]);
    assert_eq!(old.get::<i64>("balance").await.unwrap(), Some(70));
    assert_eq!(old.commit().await.unwrap(), None);
}
