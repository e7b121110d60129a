//! The demo on a private `mongod` (MongoDB 6.0), driven over TCP: one process through the
//! routes, and two processes on one server for the lock and key-level merging (the
//! guarantee cases of `guarantees.rs` run on MongoDB too).

mod common;

use common::{get, request, two_processes, Demo};
use sessio_test_servers::MongoServer;

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
