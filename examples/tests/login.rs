//! The demo's login routes over TCP, on memory and on Redis: remember-me, a login's own
//! duration, the guard (401, OPTIONS exempt), logout; and a login seen by a second
//! process.

mod common;

use std::time::Duration;

use common::{get, request, Answer, Demo};
use sessio_store_tests::servers::RedisServer;

/// The whole `Set-Cookie` header of an answer.
fn set_cookie(answer: &Answer) -> String {
    answer
        .headers
        .lines()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {answer:?}"))
}

fn post(addr: &str, path: &str, cookie: Option<&str>) -> Answer {
    request(addr, "POST", path, cookie, "")
}

fn remember_me_chooses_the_cookie_kind(args: &[&str]) {
    let demo = Demo::start(args);
    let answer = post(&demo.addr, "/login/ada?remember=0", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    let header = set_cookie(&answer);
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "remember=0 gives a browser-session cookie: {header}"
    );
    let cookie = answer.cookie().unwrap();
    assert_eq!(get(&demo.addr, "/me", Some(&cookie)).body, "ada");

    let answer = post(&demo.addr, "/login/bob?remember=1", None);
    let header = set_cookie(&answer);
    assert!(header.contains("Max-Age="), "remember=1 persists: {header}");
    assert_eq!(
        get(&demo.addr, "/me", answer.cookie().as_deref()).body,
        "bob"
    );
}

fn the_guard_answers_401_and_lets_preflights_through(args: &[&str]) {
    let demo = Demo::start(args);
    let anonymous = get(&demo.addr, "/me", None);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert!(anonymous.body.contains("login required"), "{anonymous:?}");
    let preflight = request(&demo.addr, "OPTIONS", "/me", None, "");
    assert_ne!(
        preflight.status, 401,
        "a preflight is exempt: {preflight:?}"
    );
    assert_eq!(preflight.status, 204, "{preflight:?}");
    // A session without a login (a counter) is still anonymous for the guard.
    let counter = get(&demo.addr, "/", None).cookie().unwrap();
    assert_eq!(get(&demo.addr, "/me", Some(&counter)).status, 401);
}

fn a_login_rotates_and_a_logout_ends_it(args: &[&str]) {
    let demo = Demo::start(args);
    let before = get(&demo.addr, "/", None).cookie().unwrap();
    let login = post(&demo.addr, "/login/ada", Some(&before));
    let after = login.cookie().expect("a new id");
    assert_ne!(before, after);
    assert_eq!(
        get(&demo.addr, "/me", Some(&before)).status,
        401,
        "old id dead"
    );
    assert_eq!(get(&demo.addr, "/me", Some(&after)).body, "ada");
    assert_eq!(
        get(&demo.addr, "/", Some(&after)).body,
        "2",
        "the anonymous counter survived the login"
    );
    assert_eq!(post(&demo.addr, "/logout", Some(&after)).status, 200);
    assert_eq!(get(&demo.addr, "/me", Some(&after)).status, 401);
}

fn a_logins_duration_is_its_idle_timeout(args: &[&str]) {
    let demo = Demo::start(args);
    let answer = post(&demo.addr, "/login/ada?duration=1", None);
    let header = set_cookie(&answer);
    assert!(header.contains("Max-Age=1"), "{header}");
    let cookie = answer.cookie().unwrap();
    assert_eq!(get(&demo.addr, "/me", Some(&cookie)).body, "ada");
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(
        get(&demo.addr, "/me", Some(&cookie)).status,
        401,
        "idle past the login's 1 s"
    );
}

fn a_login_on_one_process_is_seen_by_another(args: &[&str]) {
    let one = Demo::start(args);
    let two = Demo::start(args);
    let cookie = post(&one.addr, "/login/ada", None).cookie().unwrap();
    assert_eq!(get(&two.addr, "/me", Some(&cookie)).body, "ada");
    assert_eq!(post(&two.addr, "/logout", Some(&cookie)).status, 200);
    assert_eq!(get(&one.addr, "/me", Some(&cookie)).status, 401);
}

macro_rules! on_memory_and_redis {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[test]
            fn $case() {
                super::$case(&["--store", "memory"]);
            })*
        }
        mod redis {
            use super::RedisServer;
            $(#[test]
            fn $case() {
                let redis = RedisServer::start();
                super::$case(&["--store", &redis.url()]);
            })*
        }
    };
}

on_memory_and_redis!(
    remember_me_chooses_the_cookie_kind,
    the_guard_answers_401_and_lets_preflights_through,
    a_login_rotates_and_a_logout_ends_it,
    a_logins_duration_is_its_idle_timeout,
);

#[test]
fn a_login_on_one_redis_process_is_seen_by_another() {
    let redis = RedisServer::start();
    a_login_on_one_process_is_seen_by_another(&["--store", &redis.url()]);
}
