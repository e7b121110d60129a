//! A Redis that stalls (SIGSTOP) and comes back: a lock attempt that timed out during the
//! stall leaves no lease behind once Redis answers again.

use std::time::Duration;

use sessio::{Config, SessionManager};
use sessio_redis::RedisStore;
use sessio_test_servers::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_attempt_that_timed_out_leaves_no_lease() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .command_timeout(Duration::from_millis(200))
        .connect(&server.url())
        .await
        .expect("connect to the private redis-server");
    let config = Config::default()
        .with_lock_lease(Duration::from_secs(8))
        .with_lock_wait(Duration::from_secs(3));
    let manager = SessionManager::new(store, config).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("a", 1).await.unwrap();
    // The id cookie (the near cache adds a write-count cookie after it).
    let set = first.commit_cookies().await.unwrap();
    let cookie = set[0].split(';').next().unwrap().to_string();
    // Once, so that Redis knows the lock scripts (a stalled EVALSHA then runs as sent).
    let warm = manager.session([cookie.as_bytes()]);
    warm.lock().await.unwrap().unlock().await.unwrap();

    server.process().pause();
    let stalled = manager.session([cookie.as_bytes()]);
    let error = stalled.lock().await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    server.process().resume();

    // With a lease left behind, this waits the 3 s lock wait and fails (the lease is 8 s).
    let next = manager.session([cookie.as_bytes()]);
    let guard = next
        .lock()
        .await
        .expect("the timed-out attempt's lease must not block the next holder");
    guard.unlock().await.unwrap();
}
