//! The Memcached store passes the whole conformance suite against a private `memcached`,
//! and against a ring of three; adding a server to a ring moves about 1/N of the sessions.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sessio::store::{Outcome, Store};
use sessio_memcached::MemcachedStore;
use sessio_store_tests::servers::{memcached_url, shared, MemcachedServer};
use sessio_store_tests::{Fixture, Timing};

static ONE: Mutex<Weak<MemcachedServer>> = Mutex::new(Weak::new());
static RING: Mutex<Weak<[MemcachedServer; 3]>> = Mutex::new(Weak::new());

mod one_server {
    use super::*;

    async fn setup() -> Fixture<MemcachedStore> {
        let server = shared(&ONE, MemcachedServer::start);
        let store = MemcachedStore::connect(&memcached_url(&[&server]))
            .await
            .expect("connect");
        Fixture::new(store).keeping(server)
    }

    sessio_store_tests::basic_suite!(setup, Timing::SECONDS);
    sessio_store_tests::locking_suite!(setup, Timing::SECONDS);
}

mod ring_of_three {
    use super::*;

    async fn setup() -> Fixture<MemcachedStore> {
        let servers = shared(&RING, || {
            [
                MemcachedServer::start(),
                MemcachedServer::start(),
                MemcachedServer::start(),
            ]
        });
        let url = memcached_url(&servers.iter().collect::<Vec<_>>());
        let store = MemcachedStore::connect(&url)
            .await
            .expect("connect to the ring");
        Fixture::new(store).keeping(servers)
    }

    sessio_store_tests::basic_suite!(setup, Timing::SECONDS);
    sessio_store_tests::locking_suite!(setup, Timing::SECONDS);
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
        let created = three
            .create(key, key.as_bytes(), Duration::from_secs(600))
            .await
            .unwrap()
            .map(|_| ());
        assert_eq!(created, Outcome::Done(()));
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
    let created = store
        .create("session:x", b"1", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(created, Outcome::Done(_)));
    server.kill();
    let error = store.load("session:x").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            sessio::store::StoreErrorKind::Unavailable | sessio::store::StoreErrorKind::Timeout
        ),
        "{error}"
    );
}
