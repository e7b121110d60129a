//! The demo's sessions routes over TCP (`GET /sessions`, `POST /sessions/revoke-others`,
//! `DELETE /sessions/{handle}`, `--max-sessions-per-user`) on memory, Redis, PostgreSQL
//! and SQLite; on the networked stores with two processes, each request of a user going to
//! either. On Memcached: `501`, and a maximum is refused at start.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{demo_path, get, request, request_raw, Answer, Demo};
use serde_json::Value;
use sessio_test_servers::{memcached_url, MemcachedServer, PostgresServer, RedisServer, TempDir};

/// `POST /login/{user}` with a User-Agent (the session's label): the cookie.
fn login(addr: &str, user: &str, agent: &str) -> String {
    let answer = request_raw(
        addr,
        format!(
            "POST /login/{user} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.cookie().expect("a login sets a cookie")
}

/// `GET /sessions` as `cookie`: the parsed list.
fn sessions(addr: &str, cookie: &str) -> Vec<Value> {
    let answer = get(addr, "/sessions", Some(cookie));
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

/// The handle of the session `cookie` is (the `current` entry of its list).
fn own_handle(addr: &str, cookie: &str) -> String {
    let list = sessions(addr, cookie);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list:?}");
    current[0]["handle"].as_str().unwrap().to_owned()
}

fn me(addr: &str, cookie: &str) -> Answer {
    get(addr, "/me", Some(cookie))
}

fn post(addr: &str, path: &str, cookie: Option<&str>) -> Answer {
    request(addr, "POST", path, cookie, "")
}

fn revoke(addr: &str, cookie: &str, handle: &str) -> Answer {
    request(
        addr,
        "DELETE",
        &format!("/sessions/{handle}"),
        Some(cookie),
        "",
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn the_list_shows_each_session_of_the_user_once(one: &str, two: &str) {
    let laptop = login(one, "ada", "laptop");
    let phone = login(two, "ada", "phone ☎");
    let bob = login(one, "bob", "bob's");

    let list = sessions(one, &phone);
    assert_eq!(list.len(), 2, "ada's two, not bob's: {list:?}");
    let mut labels: Vec<_> = list.iter().map(|s| s["label"].as_str().unwrap()).collect();
    labels.sort();
    assert_eq!(labels, ["laptop", "phone ☎"], "a UTF-8 User-Agent is kept");
    let now = now_secs();
    for s in &list {
        let handle = s["handle"].as_str().expect("a handle");
        assert!(!handle.is_empty() && !laptop.contains(handle) && !phone.contains(handle));
        let created = s["created"].as_u64().expect("created, Unix seconds");
        let seen = s["last_seen"].as_u64().expect("last_seen, Unix seconds");
        assert!(now.abs_diff(created) < 30 && seen >= created, "{s}");
    }
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["label"], "phone ☎");
    assert_eq!(sessions(two, &bob).len(), 1);

    assert_eq!(get(one, "/sessions", None).status, 401, "not logged in");
    let counter = get(one, "/", None).cookie().unwrap();
    assert_eq!(
        get(two, "/sessions", Some(&counter)).status,
        401,
        "anonymous"
    );
}

fn revoke_others_logs_out_every_other_session(one: &str, two: &str) {
    let a = login(one, "ada", "a");
    let b = login(two, "ada", "b");
    let c = login(one, "ada", "c");
    let bob = login(two, "bob", "bob");
    assert_eq!(post(one, "/sessions/revoke-others", None).status, 401);

    let answer = post(two, "/sessions/revoke-others", Some(&b));
    assert_eq!(answer.status, 200, "{answer:?}");
    for (cookie, addr) in [(&a, one), (&a, two), (&c, one), (&c, two)] {
        assert_eq!(me(addr, cookie).status, 401, "revoked on every process");
    }
    assert_eq!(me(one, &b).body, "ada");
    assert_eq!(me(one, &bob).body, "bob", "another user's session stays");
    let list = sessions(one, &b);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["current"], true);
}

fn a_handle_is_404_for_another_user_and_not_a_cookie(one: &str, two: &str) {
    let ada1 = login(one, "ada", "1");
    let ada2 = login(two, "ada", "2");
    let bob = login(one, "bob", "b");
    let handle = own_handle(one, &ada1);

    assert_eq!(
        revoke(two, &bob, &handle).status,
        404,
        "bob cannot end ada's"
    );
    assert_eq!(
        revoke(one, &bob, "AAAAAAAAAAAAAAAAAAAAAA").status,
        404,
        "unknown"
    );
    assert_eq!(
        revoke(one, &ada2, "AAAAAAAAAAAAAAAAAAAAAA").status,
        404,
        "unknown"
    );
    assert_eq!(
        request(one, "DELETE", &format!("/sessions/{handle}"), None, "").status,
        401
    );
    assert_eq!(me(two, &ada1).body, "ada", "still logged in");

    // Used as a cookie, a handle is nobody's session.
    let forged = format!("id={handle}");
    assert_eq!(me(one, &forged).status, 401);
    assert_eq!(get(two, "/sessions", Some(&forged)).status, 401);
    let counter = get(one, "/", Some(&forged));
    assert_eq!(counter.body, "1", "a fresh session");
    assert_ne!(counter.cookie().as_deref(), Some(forged.as_str()));

    assert_eq!(
        revoke(two, &ada2, &handle).status,
        200,
        "ada's other device can"
    );
    assert_eq!(me(one, &ada1).status, 401);
    assert_eq!(me(two, &ada1).status, 401);
    assert_eq!(revoke(one, &ada2, &handle).status, 404, "gone now");

    // Its own handle: a logout, cookie removed.
    let own = own_handle(one, &ada2);
    let answer = revoke(two, &ada2, &own);
    assert_eq!(answer.status, 200);
    assert!(answer.headers.contains("Max-Age=0"), "{answer:?}");
    assert_eq!(me(one, &ada2).status, 401);
    assert_eq!(me(one, &bob).body, "bob");
}

fn a_login_past_the_maximum_ends_the_least_recently_active(one: &str, two: &str) {
    let pause = || std::thread::sleep(Duration::from_millis(20));
    let first = login(one, "ada", "first");
    pause();
    let second = login(two, "ada", "second");
    pause();
    // The first device is active again (a write): the second is now the least recent.
    let set = request(two, "PUT", "/set/cart", Some(&first), "[1]");
    assert_eq!(set.status, 200, "{set:?}");
    pause();
    let third = login(one, "ada", "third");
    assert_eq!(
        me(two, &second).status,
        401,
        "the least recently active ended"
    );
    assert_eq!(me(one, &first).body, "ada");
    assert_eq!(me(two, &third).body, "ada");
    let mut labels: Vec<String> = sessions(two, &third)
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_owned())
        .collect();
    labels.sort();
    assert_eq!(labels, ["first", "third"]);
    // Another user is not counted against ada.
    login(two, "bob", "bob");
    assert_eq!(me(one, &first).body, "ada");
}

/// Runs `case` on one store: two demo processes (one for the in-memory store, which is
/// not shared), each case's requests spread over them.
fn on(store: &str, extra: &[&[&str]], case: fn(&str, &str)) {
    let args: Vec<&str> = ["--store", store]
        .into_iter()
        .chain(extra.iter().flat_map(|e| e.iter().copied()))
        .collect();
    let one = Demo::start(&args);
    let second = (store != "memory").then(|| Demo::start(&args));
    let two = second.as_ref().unwrap_or(&one);
    case(&one.addr, &two.addr);
}

const MAX_2: &[&str] = &["--max-sessions-per-user", "2"];

macro_rules! on_each_store {
    ($($case:ident $(with $extra:expr)?),* $(,)?) => {
        mod memory {
            $(#[test]
            fn $case() {
                super::on("memory", &[$($extra)?], super::$case);
            })*
        }
        mod redis {
            use super::RedisServer;
            $(#[test]
            fn $case() {
                let redis = RedisServer::start();
                super::on(&redis.url(), &[$($extra)?], super::$case);
            })*
        }
        mod postgres {
            use super::PostgresServer;
            $(#[test]
            fn $case() {
                let server = PostgresServer::start();
                super::on(&server.url(), &[$($extra)?], super::$case);
            })*
        }
        mod sqlite {
            use super::TempDir;
            $(#[test]
            fn $case() {
                let dir = TempDir::new("sqlite-devices");
                let url = format!("sqlite://{}", dir.path.join("sessions.db").display());
                super::on(&url, &[$($extra)?], super::$case);
            })*
        }
    };
}

on_each_store!(
    the_list_shows_each_session_of_the_user_once,
    revoke_others_logs_out_every_other_session,
    a_handle_is_404_for_another_user_and_not_a_cookie,
    a_login_past_the_maximum_ends_the_least_recently_active with super::MAX_2,
);

#[test]
fn on_memcached_the_sessions_routes_answer_501() {
    let server = MemcachedServer::start();
    let demo = Demo::start(&["--store", &memcached_url(&[&server])]);
    let cookie = login(&demo.addr, "ada", "a");
    assert_eq!(me(&demo.addr, &cookie).body, "ada", "logins work");
    let answer = get(&demo.addr, "/sessions", Some(&cookie));
    assert_eq!(answer.status, 501, "{answer:?}");
    assert!(answer.body.contains("devices index"), "{answer:?}");
    assert_eq!(
        post(&demo.addr, "/sessions/revoke-others", Some(&cookie)).status,
        501
    );
    assert_eq!(get(&demo.addr, "/sessions", None).status, 401);
}

#[test]
fn on_memcached_a_maximum_per_user_is_refused_at_start_naming_the_stores_that_can() {
    let server = MemcachedServer::start();
    let output = Command::new(demo_path())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            &memcached_url(&[&server]),
        ])
        .args(MAX_2)
        .output()
        .expect("run the demo");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in ["Memcached", "Redis", "PostgreSQL", "SQLite", "memory"] {
        assert!(stderr.contains(name), "names {name}: {stderr}");
    }
}
