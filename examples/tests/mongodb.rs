//! The demo on a private PoloDB server (MongoDB wire protocol), driven over TCP.
//!
//! The two-process concurrency tests that Redis and Memcached pass are not run here: PoloDB
//! does not make a write atomic against concurrent writes (two concurrent inserts of one
//! `_id` can both succeed), so concurrent requests through two processes would test PoloDB,
//! not sessio. MongoDB gives that atomicity for one document; see `sessio-mongodb`'s docs.

mod common;

use common::{get, request, Demo};
use sessio_test_servers::PoloDbServer;

#[test]
fn the_demo_keeps_sessions_in_mongodb() {
    let server = PoloDbServer::start();
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
