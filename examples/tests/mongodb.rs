//! The demo on a private `mongod` (MongoDB 6.0), driven over TCP: one process through the
//! routes, and two processes on one server for the lock and key-level merging (the
//! guarantee cases of `guarantees.rs` run on MongoDB too).

mod common;

use common::{get, request, two_processes, Demo};
use sessio_test_servers::MongoServer;

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
