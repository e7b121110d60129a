//! The demo on a private `mongod` (MongoDB 6.0), driven over TCP: one process through the
//! routes, and two processes on one server for the lock and key-level merging (the
//! guarantee cases of `guarantees.rs` run on MongoDB too); `mongod` killed and restarted
//! under the demo; and a replica set of three whose primary is killed under load.

mod common;

use std::time::{Duration, Instant};

use common::{failover, get, request, two_processes, Demo};
use sessio_test_servers::{MongoReplicaSet, MongoServer};

/// `mongod` killed: every answer is a `503` (never a new session) within the store's
/// timeout, the demo stays up; `mongod` restarted on its data: the session is back, intact
/// (an acknowledged write is journaled), within 15 s.
#[test]
fn a_killed_mongod_answers_503_then_the_session_comes_back_intact() {
    let mut server = MongoServer::start();
    let mut demo = Demo::start(&["--store", &server.url("demo")]);
    let cookie = get(&demo.addr, "/", None)
        .cookie()
        .expect("a session cookie");
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "2");

    server.kill();
    let outage = Instant::now();
    let mut answers = 0;
    while outage.elapsed() < Duration::from_secs(3) {
        let sent = Instant::now();
        let answer = get(&demo.addr, "/", Some(&cookie));
        assert_eq!(answer.status, 503, "with mongod down: {answer:?}");
        assert!(
            answer.cookie().is_none(),
            "a cookie with mongod down: {answer:?}"
        );
        assert!(
            sent.elapsed() < Duration::from_millis(2500),
            "a 503 took {:?}: not bounded by the store's timeout",
            sent.elapsed()
        );
        answers += 1;
    }
    assert!(answers >= 2, "only {answers} answers in 3 s");
    assert!(demo.is_running(), "the demo died with mongod");

    server.restart();
    let back = Instant::now();
    loop {
        let answer = get(&demo.addr, "/", Some(&cookie));
        if answer.status == 200 {
            assert_eq!(
                answer.body, "3",
                "the session after the restart: {answer:?}"
            );
            assert!(answer.cookie().is_none(), "a new session: {answer:?}");
            break;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no 200 within 15 s of mongod's restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two demo processes on a replica set of three, 12 clients counting up through both;
/// the primary is killed. Meanwhile only 5xx, none slower than 5 s; every request is `200`
/// again within 30 s (a secondary elected); every increment answered `200` is still there
/// (majority writes); then the old primary rejoins.
#[test]
fn a_replica_set_primary_killed_under_load_loses_no_answered_increment() {
    let mut set = MongoReplicaSet::start();
    let url = set.url("demo");
    let a = Demo::start(&["--store", &url]);
    let b = Demo::start(&["--store", &url]);
    let primary = set.primary().expect("a primary");
    let run = failover::under_load(
        &a,
        &b,
        12,
        Duration::from_secs(2),
        || set.kill(primary),
        Duration::from_secs(12),
    );
    let (ok, failed) = run.tally();
    let recovered = run.check(&a, Duration::from_secs(5));
    assert!(
        recovered < Duration::from_secs(30),
        "requests still failed {recovered:?} after the primary was killed"
    );
    let new_primary = set.primary().expect("a new primary");
    assert_ne!(new_primary, primary, "the killed member is primary again");
    eprintln!("{ok} answers 200, {failed} 5xx; all 200 again {recovered:?} after the kill");
    set.restart(primary);
    set.wait_until_healthy(Duration::from_secs(60));
    assert_eq!(get(&a.addr, "/", None).status, 200);
}

/// The demo's guarantees on a replica set: 60 locked requests over two processes.
#[test]
fn sixty_locked_requests_over_two_processes_on_a_replica_set_return_one_to_sixty() {
    let set = MongoReplicaSet::start();
    two_processes::sixty_locked_requests_return_one_to_sixty(&set.url("demo"));
}

/// With `--ttl 2`, the documents of sessions left idle are removed by mongod itself (the
/// TTL index the demo's `setup()` made) within 10 s of their expiry, with no request to
/// sessio. (That a live session's document stays is `sessio-mongodb`'s own test.)
#[test]
fn mongod_removes_the_documents_of_expired_sessions() {
    let server = MongoServer::start();
    let demo = Demo::start(&["--store", &server.url("demo"), "--ttl", "2"]);
    for _ in 0..5 {
        assert_eq!(get(&demo.addr, "/", None).status, 200);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sessions = runtime.block_on(async {
        mongodb::Client::with_uri_str(server.url("demo"))
            .await
            .unwrap()
            .database("demo")
            .collection::<mongodb::bson::Document>("sessions")
    });
    let count = || {
        runtime
            .block_on(async { sessions.count_documents(mongodb::bson::doc! {}).await })
            .unwrap()
    };
    assert_eq!(count(), 5, "five sessions stored");
    let started = std::time::Instant::now();
    // Two seconds to expire, then up to ten for mongod's TTL monitor.
    while count() > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(12),
            "mongod still holds {} documents of expired sessions",
            count()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
    let server = MongoServer::start();
    two_processes::sixty_locked_requests_return_one_to_sixty(&server.url("demo"));
}

#[test]
fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
    let server = MongoServer::start();
    two_processes::forty_writes_of_different_keys_are_all_kept(&server.url("demo"));
}

#[test]
fn a_logout_racing_writes_over_two_processes_is_not_undone() {
    let server = MongoServer::start();
    two_processes::a_logout_racing_writes_is_not_undone(&server.url("demo"));
}

#[test]
fn the_demo_keeps_sessions_in_mongodb() {
    let server = MongoServer::start();
    let demo = Demo::start(&["--store", &server.url("demo")]);
    let first = get(&demo.addr, "/", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "{first:?}");
    let cookie = first.cookie().expect("a session cookie");
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "2");
    assert_eq!(
        request(&demo.addr, "PUT", "/set/cart", Some(&cookie), "[1,2]").status,
        200
    );
    assert_eq!(get(&demo.addr, "/get/cart", Some(&cookie)).body, "[1,2]");
    assert_eq!(
        get(&demo.addr, "/locked?hold_ms=1", Some(&cookie)).body,
        "1"
    );
    assert_eq!(get(&demo.addr, "/locked", Some(&cookie)).body, "2");

    let login = request(&demo.addr, "POST", "/login/ada", Some(&cookie), "");
    let user = login.cookie().expect("login rotates the id");
    assert_ne!(user, cookie);
    assert_eq!(get(&demo.addr, "/me", Some(&user)).body, "ada");
    assert_eq!(
        get(&demo.addr, "/get/cart", Some(&cookie)).status,
        404,
        "the old id is dead"
    );
    let logout = request(&demo.addr, "POST", "/logout", Some(&user), "");
    assert!(logout.headers.contains("Max-Age=0"), "{logout:?}");
    assert_eq!(get(&demo.addr, "/me", Some(&user)).status, 401);
}
