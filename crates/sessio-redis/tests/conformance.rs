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
