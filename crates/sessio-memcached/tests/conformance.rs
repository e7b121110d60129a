//! The Memcached store passes the whole conformance suite against a private `memcached`,
//! and against a ring of three; adding a server to a ring moves about 1/N of the sessions.

use std::time::Duration;

use sessio::Store;
use sessio_memcached::MemcachedStore;
use sessio_store_tests::servers::{memcached_url, MemcachedServer};
use sessio_store_tests::Timing;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_passes_the_conformance_suite() {
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .expect("connect");
    sessio_store_tests::run_all(store, Timing::SECONDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ring_of_three_passes_the_conformance_suite() {
    let servers = [
        MemcachedServer::start(),
        MemcachedServer::start(),
        MemcachedServer::start(),
    ];
    let url = memcached_url(&servers.iter().collect::<Vec<_>>());
    let store = MemcachedStore::connect(&url)
        .await
        .expect("connect to the ring");
    sessio_store_tests::run_all(store, Timing::SECONDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_a_fourth_server_moves_about_a_quarter_of_the_sessions() {
    let servers = [
        MemcachedServer::start(),
        MemcachedServer::start(),
        MemcachedServer::start(),
        MemcachedServer::start(),
    ];
    let three = MemcachedStore::connect(&memcached_url(&[&servers[0], &servers[1], &servers[2]]))
        .await
        .unwrap();
    let keys: Vec<String> = (0..2000).map(|i| format!("session:ring-{i}")).collect();
    let mut used = [0usize; 3];
    for key in &keys {
        three
            .create(key, key.as_bytes(), Duration::from_secs(600))
            .await
            .unwrap()
            .unwrap();
        used[three.server_for(key)] += 1;
    }
    assert!(
        used.iter().all(|&n| n > 450),
        "sessions spread unevenly: {used:?}"
    );
    let four = MemcachedStore::connect(&memcached_url(&servers.iter().collect::<Vec<_>>()))
        .await
        .unwrap();
    let mut still_found = 0;
    for key in &keys {
        if let Some(found) = four.load(key).await.unwrap() {
            assert_eq!(found.data, key.as_bytes());
            still_found += 1;
        } else {
            assert_eq!(
                four.server_for(key),
                3,
                "a session moved between the old servers"
            );
        }
    }
    let moved = 1.0 - still_found as f64 / keys.len() as f64;
    assert!(
        (0.15..0.35).contains(&moved),
        "{moved:.3} of the sessions moved; expected about 1/4"
    );
}

#[tokio::test]
async fn bad_urls_and_dead_servers_are_clear_errors() {
    let error = MemcachedStore::connect("memcache://x").await.unwrap_err();
    assert!(
        error.to_string().contains("invalid memcached URL"),
        "{error}"
    );
    let port = sessio_store_tests::servers::free_port();
    let error = MemcachedStore::connect(&format!("memcached://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot connect to memcached"),
        "{error}"
    );
}

#[tokio::test]
async fn a_dead_server_is_an_error_not_an_absence() {
    let mut server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    store
        .create("session:x", b"1", Duration::from_secs(60))
        .await
        .unwrap();
    server.kill();
    let error = store.load("session:x").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            sessio::StoreErrorKind::Unavailable | sessio::StoreErrorKind::Timeout
        ),
        "{error}"
    );
}
