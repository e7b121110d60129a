//! The Redis store passes the whole conformance suite, one test per case, against a private
//! `redis-server`, a private 3-master Redis Cluster (and one with a replica per master and
//! every write waiting for its replica) and Sentinel, and a private Valkey 9
//! `valkey-server` (with and without the near cache) and Valkey Cluster, all started by the
//! tests (shared by the tests that overlap in time).

use std::sync::{Mutex, Weak};

use sessio_redis::RedisStore;
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, RedisCluster, RedisSentinel, RedisServer};

static SERVER: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
static SENTINEL: Mutex<Weak<RedisSentinel>> = Mutex::new(Weak::new());
static VALKEY: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
static VALKEY_CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
static REPLICATED_CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());

mod valkey {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let server = shared(&VALKEY, RedisServer::start_valkey);
        let store = RedisStore::connect(&server.url())
            .await
            .expect("connect to the private valkey-server");
        assert_eq!(
            store.near_cache_len(),
            Some(0),
            "the near cache works on Valkey"
        );
        Fixture::new(store).keeping(server)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod valkey_without_near_cache {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let server = shared(&VALKEY, RedisServer::start_valkey);
        let store = RedisStore::builder()
            .near_cache(0)
            .connect(&server.url())
            .await
            .expect("connect to the private valkey-server");
        Fixture::new(store).keeping(server)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod standalone {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let server = shared(&SERVER, RedisServer::start);
        let store = RedisStore::connect(&server.url())
            .await
            .expect("connect to the private redis-server");
        assert_eq!(
            store.near_cache_len(),
            Some(0),
            "the near cache is on by default"
        );
        Fixture::new(store).keeping(server)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod without_near_cache {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let server = shared(&SERVER, RedisServer::start);
        let store = RedisStore::builder()
            .near_cache(0)
            .connect(&server.url())
            .await
            .expect("connect to the private redis-server");
        assert_eq!(store.near_cache_len(), None);
        Fixture::new(store).keeping(server)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod cluster {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let cluster = shared(&CLUSTER, RedisCluster::start);
        let store = RedisStore::connect(&cluster.url())
            .await
            .expect("connect to the private cluster");
        Fixture::new(store).keeping(cluster)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod valkey_cluster {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let cluster = shared(&VALKEY_CLUSTER, RedisCluster::start_valkey);
        let store = RedisStore::connect(&cluster.url())
            .await
            .expect("connect to the private Valkey cluster");
        Fixture::new(store).keeping(cluster)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

/// A Cluster with a replica per master, every write waiting for its replica (`WAIT 1`):
/// the contract is the same, answers come once the replica has the write.
mod cluster_with_replica_acks {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let cluster = shared(&REPLICATED_CLUSTER, RedisCluster::start_with_replicas);
        let store = RedisStore::builder()
            .replica_acks(1, std::time::Duration::from_millis(250))
            .connect(&cluster.url())
            .await
            .expect("connect to the private cluster");
        Fixture::new(store).keeping(cluster)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

mod sentinel {
    use super::*;

    async fn setup() -> Fixture<RedisStore> {
        let sentinel = shared(&SENTINEL, RedisSentinel::start);
        let store = RedisStore::connect(&sentinel.url())
            .await
            .expect("resolve the master through Sentinel");
        Fixture::new(store).keeping(sentinel)
    }

    sessio_store_tests::basic_suite!(setup, Timing::FAST);
    sessio_store_tests::locking_suite!(setup, Timing::FAST);
    sessio_store_tests::devices_suite!(setup, Timing::FAST);
}

#[tokio::test]
async fn bad_urls_and_dead_servers_are_clear_errors() {
    let error = RedisStore::connect("http://127.0.0.1:1").await.unwrap_err();
    assert!(error.to_string().contains("invalid Redis URL"), "{error}");
    let error = RedisStore::connect("redis+sentinel://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("master"), "{error}");
    let port = sessio_test_servers::free_port();
    let error = RedisStore::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot connect to Redis"),
        "{error}"
    );
}

/// Calls of each command the server has run (`INFO commandstats`), by lowercase name.
async fn calls(url: &str) -> std::collections::BTreeMap<String, u64> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// On Valkey 9 a release is `DELIFEQ` and a save without the near cache is `SET … IFEQ`,
/// not a script; on Redis 7.0, which has neither, both stay scripts.
#[tokio::test]
async fn valkey_releases_and_saves_with_its_compare_commands_and_redis_with_scripts() {
    use sessio::store::{LeaseToken, Outcome, Store};
    for (server, valkey) in [
        (RedisServer::start_valkey(), true),
        (RedisServer::start(), false),
    ] {
        let store = RedisStore::builder()
            .near_cache(0)
            .connect(&server.url())
            .await
            .unwrap();
        let ttl = std::time::Duration::from_secs(60);
        assert!(matches!(
            store.create("session:a", b"1", ttl).await.unwrap(),
            Outcome::Done(_)
        ));
        let loaded = store.load("session:a").await.unwrap().unwrap();
        let saved = store.save("session:a", &loaded, b"2", ttl).await.unwrap();
        assert!(matches!(saved, Outcome::Done(_)), "{saved:?}");
        let stale = store.save("session:a", &loaded, b"3", ttl).await.unwrap();
        assert!(matches!(stale, Outcome::Conflict), "{stale:?}");
        let gone = store
            .save("session:gone", &loaded, b"3", ttl)
            .await
            .unwrap();
        assert!(matches!(gone, Outcome::Missing), "{gone:?}");
        let locking = store.locking().unwrap();
        let token = LeaseToken::generate().unwrap();
        locking.acquire("session:a", &token, ttl).await.unwrap();
        assert!(locking.release("session:a", &token).await.unwrap());
        assert!(!locking.release("session:a", &token).await.unwrap());

        let calls = calls(&server.url()).await;
        let delifeq = calls.get("delifeq").copied().unwrap_or(0);
        // Each script used is loaded once (after its first `EVALSHA` finds it missing).
        let scripts = calls.get("script|load").copied().unwrap_or(0);
        if valkey {
            assert_eq!(delifeq, 2, "{calls:?}");
            // Only the load and the lock (which reads in the same step) are scripts.
            assert_eq!(scripts, 2, "{calls:?}");
        } else {
            assert_eq!(delifeq, 0, "{calls:?}");
            // The load, the save, the lock and the release.
            assert_eq!(scripts, 4, "{calls:?}");
        }
    }
}
