//! The Redis store passes the whole conformance suite, against a private `redis-server` and
//! a private 3-master Redis Cluster, both started by the test.

use sessio_redis::RedisStore;
use sessio_store_tests::servers::{RedisCluster, RedisServer};
use sessio_store_tests::Timing;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_standalone_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url())
        .await
        .expect("connect to the private redis-server");
    assert_eq!(
        store.near_cache_len(),
        Some(0),
        "the near cache is on by default"
    );
    sessio_store_tests::run_all(store, Timing::FAST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_standalone_without_near_cache_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .near_cache(0)
        .connect(&server.url())
        .await
        .expect("connect to the private redis-server");
    assert_eq!(store.near_cache_len(), None);
    sessio_store_tests::run_all(store, Timing::FAST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start();
    let store = RedisStore::connect(&cluster.url())
        .await
        .expect("connect to the private cluster");
    sessio_store_tests::run_all(store, Timing::FAST).await;
}

#[tokio::test]
async fn bad_urls_and_dead_servers_are_clear_errors() {
    let error = RedisStore::connect("http://127.0.0.1:1").await.unwrap_err();
    assert!(error.to_string().contains("invalid Redis URL"), "{error}");
    let error = RedisStore::connect("redis+sentinel://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("master"), "{error}");
    let port = sessio_store_tests::servers::free_port();
    let error = RedisStore::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot connect to Redis"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_through_sentinel_passes_the_conformance_suite() {
    let sentinel = sessio_store_tests::servers::RedisSentinel::start();
    let store = RedisStore::connect(&sentinel.url())
        .await
        .expect("resolve the master through Sentinel");
    sessio_store_tests::run_all(store, Timing::FAST).await;
}
