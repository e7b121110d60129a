//! The Memcached store passes the whole conformance suite against a private `memcached`,
//! and against a ring of three; adding a server to a ring moves about 1/N of the sessions.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sessio::store::{Outcome, Store};
use sessio_memcached::MemcachedStore;
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{memcached_url, shared, MemcachedServer};

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
    let port = sessio_test_servers::free_port();
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

/// #9: a write prepared under a lease whose check passed just before the lease lapsed
/// (a delayed link) cannot land once another holder has taken the lock: taking the lock
/// moves the record's CAS.
#[tokio::test]
async fn a_lapsed_holders_delayed_write_cannot_land() {
    use sessio::store::{Acquired, LeaseToken};
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    let locks = store.locking().unwrap();
    let key = "session:fence";
    assert!(matches!(
        store
            .create(key, b"v0", Duration::from_secs(60))
            .await
            .unwrap(),
        Outcome::Done(_)
    ));
    let (old, new) = (
        LeaseToken::generate().unwrap(),
        LeaseToken::generate().unwrap(),
    );
    let Acquired::Granted(Some(seen_by_old)) = locks
        .acquire(key, &old, Duration::from_millis(300))
        .await
        .unwrap()
    else {
        panic!("the first acquire is granted with the record");
    };
    // The old holder's lease check passed; then its link stalls past the lease.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let Acquired::Granted(Some(_)) = locks
        .acquire(key, &new, Duration::from_secs(10))
        .await
        .unwrap()
    else {
        panic!("the lapsed lease is free");
    };
    // The stalled write finally arrives: it is the CAS half of a fenced save.
    let late = store
        .save(key, &seen_by_old, b"late", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        late,
        Outcome::Conflict,
        "a lapsed holder's write landed under the new holder"
    );
    assert_eq!(store.load(key).await.unwrap().unwrap().data, b"v0");
    assert!(locks.release(key, &new).await.unwrap());
}

/// #9: a lease lasts what was asked, by this process's clock, not until memcached's next
/// one-second tick: a 1 s lease still excludes 600 ms later, whenever in the second it
/// was taken, and is free after it.
#[tokio::test]
async fn leases_last_what_was_asked_despite_the_one_second_clock() {
    use sessio::store::{Acquired, LeaseToken};
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    let locks = store.locking().unwrap();
    for round in 0..5u64 {
        // Start at different points of memcached's second.
        tokio::time::sleep(Duration::from_millis(170 * round)).await;
        let key = format!("session:lease-{round}");
        let (holder, other) = (
            LeaseToken::generate().unwrap(),
            LeaseToken::generate().unwrap(),
        );
        assert!(matches!(
            locks
                .acquire(&key, &holder, Duration::from_secs(1))
                .await
                .unwrap(),
            Acquired::Granted(_)
        ));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            locks
                .acquire(&key, &other, Duration::from_secs(1))
                .await
                .unwrap(),
            Acquired::Held,
            "round {round}: a 1 s lease ended before 600 ms"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            matches!(
                locks
                    .acquire(&key, &other, Duration::from_secs(1))
                    .await
                    .unwrap(),
                Acquired::Granted(_)
            ),
            "round {round}: a 1 s lease outlived 1.2 s"
        );
    }
}

/// Memcached's command counters (`cmd_get`, `cmd_set`, `delete_*`) of a private server.
fn commands(server: &MemcachedServer) -> u64 {
    use std::io::{BufRead, BufReader, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    conn.write_all(b"stats\r\n").unwrap();
    let mut total = 0;
    for line in BufReader::new(conn).lines() {
        let line = line.unwrap();
        if line == "END" {
            break;
        }
        let mut parts = line.split_whitespace().skip(1);
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if ["cmd_get", "cmd_set", "delete_hits", "delete_misses"].contains(&name) {
            total += value.parse::<u64>().unwrap();
        }
    }
    total
}

/// The lease lives in the record's item, so a write under the lock, and the write that
/// releases it, are one command each; taking the lock is two.
#[tokio::test]
async fn a_write_under_the_lock_is_one_command() {
    use sessio::store::{Acquired, AfterWrite, LeaseToken};
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    let locks = store.locking().unwrap();
    let key = "session:one-command";
    let ttl = Duration::from_secs(60);
    let Outcome::Done(_) = store.create(key, b"v0", ttl).await.unwrap() else {
        panic!("created");
    };
    let token = LeaseToken::generate().unwrap();
    let before = commands(&server);
    let Acquired::Granted(Some(seen)) = locks
        .acquire(key, &token, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("granted");
    };
    assert_eq!(commands(&server) - before, 2, "lock: mg + ms");
    let before = commands(&server);
    let Outcome::Done(version) = locks
        .save_locked(key, &token, Some(&seen), b"v1", ttl, AfterWrite::KeepLease)
        .await
        .unwrap()
    else {
        panic!("saved under the lock");
    };
    assert_eq!(commands(&server) - before, 1, "a save keeping the lease");
    let seen = sessio::store::Loaded {
        data: b"v1".to_vec(),
        version,
        expires_at: None,
    };
    let before = commands(&server);
    let Outcome::Done(_) = locks
        .save_locked(key, &token, Some(&seen), b"v2", ttl, AfterWrite::Release)
        .await
        .unwrap()
    else {
        panic!("saved and released");
    };
    assert_eq!(commands(&server) - before, 1, "a save releasing the lease");
    // Released: another holder gets it at once, and the record is the last write.
    let other = LeaseToken::generate().unwrap();
    let Acquired::Granted(Some(now)) = locks
        .acquire(key, &other, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("the lease was released with the write");
    };
    assert_eq!(now.data, b"v2");
}

/// A holder whose lease lapsed and was taken over cannot write under it any more, even
/// with the CAS it last wrote (the one-command path): the new holder's acquire moved it.
#[tokio::test]
async fn a_lapsed_holders_locked_write_is_refused_after_a_takeover() {
    use sessio::store::{Acquired, AfterWrite, LeaseToken};
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    let locks = store.locking().unwrap();
    let key = "session:takeover";
    let ttl = Duration::from_secs(60);
    let Outcome::Done(_) = store.create(key, b"v0", ttl).await.unwrap() else {
        panic!("created");
    };
    let (old, new) = (
        LeaseToken::generate().unwrap(),
        LeaseToken::generate().unwrap(),
    );
    let Acquired::Granted(Some(seen)) = locks
        .acquire(key, &old, Duration::from_millis(300))
        .await
        .unwrap()
    else {
        panic!("granted");
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let Acquired::Granted(Some(_)) = locks
        .acquire(key, &new, Duration::from_secs(10))
        .await
        .unwrap()
    else {
        panic!("the lapsed lease is free");
    };
    for then in [AfterWrite::KeepLease, AfterWrite::Release] {
        assert_eq!(
            locks
                .save_locked(key, &old, Some(&seen), b"late", ttl, then)
                .await
                .unwrap(),
            Outcome::LeaseLost
        );
        assert_eq!(
            locks.delete_locked(key, &old, &seen, then).await.unwrap(),
            Outcome::LeaseLost
        );
    }
    assert!(!locks.release(key, &old).await.unwrap());
    assert_eq!(store.load(key).await.unwrap().unwrap().data, b"v0");
    // The new holder still holds it.
    assert_eq!(
        locks
            .acquire(key, &old, Duration::from_secs(1))
            .await
            .unwrap(),
        Acquired::Held
    );
    assert!(locks.release(key, &new).await.unwrap());
}

/// Items sessio writes stay readable by a plain memcached client: an unlocked record is
/// exactly its bytes, with client flags 0 (what `sanic_session`'s memcache interface
/// reads and writes).
#[tokio::test]
async fn an_unlocked_record_is_its_bytes_alone() {
    use sessio::store::{Acquired, LeaseToken};
    use std::io::{BufRead, BufReader, Write};
    let server = MemcachedServer::start();
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .unwrap();
    let key = "session:plain";
    let Outcome::Done(_) = store
        .create(key, b"{\"a\":1}", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let locks = store.locking().unwrap();
    let token = LeaseToken::generate().unwrap();
    let Acquired::Granted(Some(_)) = locks
        .acquire(key, &token, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("granted");
    };
    assert!(locks.release(key, &token).await.unwrap());
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    conn.write_all(format!("get {key}\r\n").as_bytes()).unwrap();
    let mut lines = BufReader::new(conn).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        format!("VALUE {key} 0 7"),
        "flags 0, the record's bytes alone"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "{\"a\":1}");
}

/// Memcached evicts live items when it needs room, so the user's devices index (which
/// must never lose an entry under a live session) is refused, naming the stores that can.
#[tokio::test]
async fn the_sessions_index_is_refused_naming_the_stores_that_can_keep_it() {
    let server = shared(&ONE, MemcachedServer::start);
    let store = MemcachedStore::connect(&memcached_url(&[&server]))
        .await
        .expect("connect");
    assert!(!store.keeps_live_records());
    let config = sessio::Config::default().with_devices(sessio::devices::Devices::new());
    let error = sessio::SessionManager::new(store, config).unwrap_err();
    let message = error.to_string();
    for name in [
        "Memcached",
        "Redis",
        "PostgreSQL",
        "SQLite",
        "MongoDB",
        "memory",
    ] {
        assert!(message.contains(name), "names {name}: {message}");
    }
}
