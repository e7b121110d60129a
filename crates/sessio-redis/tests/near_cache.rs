//! The near cache on a private `redis-server`: recently seen sessions are read without a
//! round trip, and every way the cached bytes can go stale is caught — another client's
//! write (an invalidation push), our own writes (Redis must keep tracking the key), a
//! conditional save against stale bytes, a dropped connection, and a Redis that stops
//! answering.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use sessio::store::{Outcome, Store, StoreErrorKind};
use sessio_redis::RedisStore;
use sessio_test_servers::RedisServer;

const TTL: Duration = Duration::from_secs(60);

async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("a plain connection to the private redis-server")
}

/// Scripts Redis has run (every store load is one `EVALSHA`).
async fn script_calls(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A store whose cache trusts Redis for 30 s, so that nothing but an invalidation (or a
/// flush) can bring a change into it within these tests' 2 s deadlines.
async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .near_cache_trust(Duration::from_secs(30))
        .connect(&server.url())
        .await
        .expect("connect to the private redis-server")
}

/// Another client (a Python app, `redis-cli`) writes `value` under `key`.
async fn set_elsewhere(redis: &mut MultiplexedConnection, key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(redis)
        .await
        .unwrap();
}

/// A private server, a plain connection to it, and a store holding `k` = `v1`.
async fn with_session_k() -> (RedisServer, MultiplexedConnection, RedisStore) {
    let server = RedisServer::start();
    let redis = raw(&server).await;
    let store = connect(&server).await;
    assert!(matches!(
        store.create("k", b"v1", TTL).await.unwrap(),
        Outcome::Done(_)
    ));
    (server, redis, store)
}

async fn data(store: &RedisStore, key: &str) -> Vec<u8> {
    store
        .load(key)
        .await
        .expect("load")
        .expect("the record exists")
        .data
}

/// Loads until `key` holds `want` (an invalidation push is on its way), or fails.
async fn eventually(store: &RedisStore, key: &str, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = data(store, key).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} 2 s after the change to {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_session_seen_recently_is_read_without_a_round_trip() {
    let (server, mut redis, store) = with_session_k().await;
    assert_eq!(
        store.near_cache_len(),
        Some(1),
        "a create is cached (and tracked): the new session's next request needs no trip"
    );
    let before = script_calls(&mut redis).await;
    for _ in 0..5 {
        let loaded = store.load("k").await.unwrap().unwrap();
        assert_eq!(loaded.data, b"v1");
        let left = loaded
            .expires_at
            .unwrap()
            .duration_since(std::time::SystemTime::now());
        assert!(left.unwrap() <= TTL, "the cached expiry is Redis's");
    }
    assert_eq!(
        script_calls(&mut redis).await,
        before,
        "five loads, no round trip"
    );

    let off = RedisStore::builder()
        .near_cache(0)
        .connect(&server.url())
        .await
        .unwrap();
    assert_eq!(off.near_cache_len(), None);
    // Redis learns the load script here (its first call counts twice).
    assert_eq!(data(&off, "k").await, b"v1");
    let before = script_calls(&mut redis).await;
    for _ in 0..5 {
        assert_eq!(data(&off, "k").await, b"v1");
    }
    assert_eq!(
        script_calls(&mut redis).await,
        before + 5,
        "cache off: one trip each"
    );
}

/// An entry older than the trust window is read again, tracked, in one round trip: the key
/// existed a moment ago, so the untracked probe that guards Redis's tracking table from
/// forged ids (a second round trip) is not needed. A key the cache never held still takes
/// the probe.
#[tokio::test]
async fn a_session_past_the_trust_window_is_read_again_in_one_round_trip() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let store = RedisStore::builder()
        .near_cache_trust(Duration::from_millis(200))
        .connect(&server.url())
        .await
        .unwrap();
    assert!(matches!(
        store.create("k", b"v1", TTL).await.unwrap(),
        Outcome::Done(_)
    ));
    // Redis learns the load script here (its first call counts twice).
    assert!(store.load("absent").await.unwrap().is_none());
    // A key the cache never held: the untracked probe, then the tracked read.
    let _: () = redis::cmd("SET")
        .arg("j")
        .arg("v")
        .query_async(&mut redis)
        .await
        .unwrap();
    let before = script_calls(&mut redis).await;
    assert_eq!(data(&store, "j").await, b"v");
    assert_eq!(script_calls(&mut redis).await, before + 2);
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = script_calls(&mut redis).await;
        assert_eq!(data(&store, "k").await, b"v1");
        assert_eq!(
            script_calls(&mut redis).await,
            before + 1,
            "round {round}: past the window, one tracked read"
        );
        let before = script_calls(&mut redis).await;
        assert_eq!(data(&store, "k").await, b"v1");
        assert_eq!(
            script_calls(&mut redis).await,
            before,
            "round {round}: confirmed again, served from the cache"
        );
    }
    // The re-read is tracked: a change by another client reaches the cache.
    set_elsewhere(&mut redis, "k", "v2").await;
    eventually(&store, "k", b"v2").await;
    // Deleted by another client: gone, and nothing stays cached.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _: () = redis::cmd("DEL")
        .arg("k")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(store.load("k").await.unwrap().is_none());
    assert_eq!(store.near_cache_len(), Some(1), "only `j` stays cached");
}

#[tokio::test]
async fn another_clients_write_reaches_the_cache_and_stale_saves_conflict() {
    let (server, mut redis, store) = with_session_k().await;
    let seen = store.load("k").await.unwrap().unwrap();

    set_elsewhere(&mut redis, "k", "from-python").await;
    // Whatever the cache held, a save based on the old bytes does not overwrite the write.
    assert_eq!(
        store.save("k", &seen, b"v2", TTL).await.unwrap(),
        Outcome::Conflict
    );
    assert_eq!(data(&store, "k").await, b"from-python");

    // A second store (another process) with the record cached sees the first one's writes.
    let other = connect(&server).await;
    let theirs = other.load("k").await.unwrap().unwrap();
    assert_eq!(other.near_cache_len(), Some(1));
    let ours = store.load("k").await.unwrap().unwrap();
    assert!(matches!(
        store.save("k", &ours, b"v3", TTL).await.unwrap(),
        Outcome::Done(_)
    ));
    eventually(&other, "k", b"v3").await;
    assert_eq!(
        other.save("k", &theirs, b"lost?", TTL).await.unwrap(),
        Outcome::Conflict
    );
    store.delete("k").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while other.load("k").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "a deleted session stayed in the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn own_writes_stay_cached_and_tracked() {
    let (_server, mut redis, store) = with_session_k().await;
    let mut seen = store.load("k").await.unwrap().unwrap();
    for round in 2..5 {
        let bytes = format!("v{round}").into_bytes();
        assert!(matches!(
            store.save("k", &seen, &bytes, TTL).await.unwrap(),
            Outcome::Done(_)
        ));
        let before = script_calls(&mut redis).await;
        seen = store.load("k").await.unwrap().unwrap();
        assert_eq!(seen.data, bytes);
        assert_eq!(
            script_calls(&mut redis).await,
            before,
            "served from the cache"
        );
    }
    // Our write ended Redis's tracking of the key; the save script must have renewed it,
    // or this write would never reach the cache.
    set_elsewhere(&mut redis, "k", "elsewhere").await;
    eventually(&store, "k", b"elsewhere").await;

    // A touch updates the expiry in Redis; the next load reads the new one.
    store.load("k").await.unwrap();
    assert!(store.touch("k", TTL * 10).await.unwrap());
    let expires = store.load("k").await.unwrap().unwrap().expires_at.unwrap();
    assert!(expires > std::time::SystemTime::now() + TTL * 9);
    set_elsewhere(&mut redis, "k", "after-touch").await;
    eventually(&store, "k", b"after-touch").await;
}

#[tokio::test]
async fn a_dropped_connection_empties_the_cache() {
    let (_server, mut redis, store) = with_session_k().await;
    assert_eq!(data(&store, "k").await, b"v1");
    assert_eq!(store.near_cache_len(), Some(1));

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(killed >= 1);
    let deadline = Instant::now() + Duration::from_secs(2);
    while store.near_cache_len() != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the cache outlived its connection"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Written while nobody tracked the key for us: the cache must not answer from before.
    set_elsewhere(&mut redis, "k", "v2").await;
    assert_eq!(
        data(&store, "k").await,
        b"v2",
        "reconnected and read from Redis"
    );
    set_elsewhere(&mut redis, "k", "v3").await;
    eventually(&store, "k", b"v3").await;
}

#[tokio::test]
async fn a_silent_redis_is_not_covered_up_by_the_cache() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let store = RedisStore::builder()
        .near_cache_trust(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(300))
        .connect(&server.url())
        .await
        .unwrap();
    assert!(matches!(
        store.create("k", b"v1", TTL).await.unwrap(),
        Outcome::Done(_)
    ));
    assert_eq!(data(&store, "k").await, b"v1");
    let before = script_calls(&mut redis).await;
    assert_eq!(data(&store, "k").await, b"v1");
    assert_eq!(
        script_calls(&mut redis).await,
        before,
        "a hit while Redis answers"
    );

    // Redis stops answering (as behind a partition): once the window has passed, the
    // cache no longer answers for it, and the load fails like any other request.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let error = store
        .load("k")
        .await
        .expect_err("no stale answer while Redis is silent");
    assert!(
        matches!(
            error.kind(),
            StoreErrorKind::Timeout | StoreErrorKind::Unavailable
        ),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_millis(1000));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(data(&store, "k").await, b"v1", "back once Redis answers");
}

// One worker, as in the benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn concurrent_commands_each_get_their_own_reply() {
    let server = RedisServer::start();
    let mut redis = raw(&server).await;
    let store = connect(&server).await;
    const N: usize = 300;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("session:{i}");
                store.create(&key, i.to_string().as_bytes(), TTL).await
            })
        })
        .collect();
    for task in tasks {
        assert!(
            matches!(task.await.unwrap().unwrap(), Outcome::Done(_)),
            "each key was absent"
        );
    }

    // Scripts lost on the server (a restart, SCRIPT FLUSH): each command's NOSCRIPT comes
    // back in its place in the pipeline and its caller re-sends the script.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut redis)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("session:{i}");
                (i, store.load(&key).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, loaded) = task.await.unwrap();
        let data = loaded.expect("load").expect("exists").data;
        assert_eq!(
            data,
            i.to_string().as_bytes(),
            "command {i} got another's reply"
        );
    }
}

async fn tracked_keys(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("tracking_total_keys:"))
        .expect("Redis reports tracking_total_keys")
        .trim()
        .parse()
        .unwrap()
}

/// #8: loads of ids that do not exist (a flood of forged cookies) leave nothing behind in
/// Redis's tracking table; sessions that exist are tracked and cached.
#[tokio::test]
async fn forged_ids_cost_redis_no_tracking_memory() {
    let (_server, mut redis, store) = with_session_k().await;
    let before = tracked_keys(&mut redis).await;
    let locks = store.locking().unwrap();
    let token = sessio::store::LeaseToken::generate().unwrap();
    for i in 0..2000 {
        let key = format!("session:forged-{i}");
        assert_eq!(store.load(&key).await.unwrap(), None);
        // A lock on a forged id (a forged `/locked`) reads the key too.
        if i % 10 == 0 {
            locks
                .acquire(&key, &token, Duration::from_secs(1))
                .await
                .unwrap();
            locks.release(&key, &token).await.unwrap();
        }
    }
    assert_eq!(
        tracked_keys(&mut redis).await,
        before,
        "forged ids were tracked"
    );
    assert_eq!(data(&store, "k").await, b"v1");
    assert!(
        tracked_keys(&mut redis).await >= 1,
        "an existing session is tracked"
    );
    let calls = script_calls(&mut redis).await;
    assert_eq!(data(&store, "k").await, b"v1");
    assert_eq!(
        script_calls(&mut redis).await,
        calls,
        "served from the cache"
    );
}
