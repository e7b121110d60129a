//! The demo's app routes over TCP, on memory and on Redis: login (remember-me, a login's
//! own duration), the guard (401, OPTIONS exempt), logout, flash messages, the CSRF
//! token; and each seen by a second process.

mod common;

use std::time::Duration;

use common::{get, request, Answer, Demo};
use sessio_test_servers::RedisServer;

/// The whole first `Set-Cookie` header of an answer that carries a session id.
fn set_cookie(answer: &Answer) -> String {
    answer
        .set_cookies()
        .into_iter()
        .find(|c| !c.split('=').next().unwrap_or_default().ends_with(".w"))
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

fn flash_messages_are_read_once(args: &[&str]) {
    let demo = Demo::start(args);
    let cookie = request(&demo.addr, "POST", "/flash", None, "saved")
        .cookie()
        .unwrap();
    assert_eq!(
        request(&demo.addr, "POST", "/flash", Some(&cookie), "again").status,
        200
    );
    let shown = get(&demo.addr, "/flash", Some(&cookie));
    assert_eq!(shown.body, r#"["saved","again"]"#, "{shown:?}");
    assert_eq!(get(&demo.addr, "/flash", Some(&cookie)).body, "[]");
    assert_eq!(get(&demo.addr, "/flash", None).body, "[]");
}

fn concurrent_flashes_on_two_processes_are_all_shown_once(args: &[&str]) {
    let one = Demo::start(args);
    let two = Demo::start(args);
    let cookie = get(&one.addr, "/", None).cookie().unwrap();
    std::thread::scope(|s| {
        for i in 0..20 {
            let addr = if i % 2 == 0 { &one.addr } else { &two.addr };
            let cookie = &cookie;
            s.spawn(move || {
                let answer = request(addr, "POST", "/flash", Some(cookie), &format!("m{i}"));
                assert_eq!(answer.status, 200, "{answer:?}");
            });
        }
    });
    let shown: Vec<String> =
        serde_json::from_str(&get(&two.addr, "/flash", Some(&cookie)).body).unwrap();
    let mut sorted = shown.clone();
    sorted.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(sorted, expected, "every message, once");
    assert_eq!(get(&one.addr, "/flash", Some(&cookie)).body, "[]");
}

fn the_csrf_token_guards_the_transfer(args: &[&str]) {
    let one = Demo::start(args);
    // A second process where the store is shared (not with the in-memory store).
    let second = (!args.contains(&"memory")).then(|| Demo::start(args));
    let two = second.as_ref().unwrap_or(&one);
    let answer = get(&one.addr, "/csrf", None);
    let cookie = answer.cookie().unwrap();
    let token = answer.body;
    assert_eq!(token.len(), 43, "{token}");
    assert_eq!(get(&two.addr, "/csrf", Some(&cookie)).body, token, "stable");
    let transfer = |addr: &str, cookie: Option<&str>, header: Option<&str>| {
        let head = match header {
            Some(t) => format!("X-CSRF-Token: {t}\r\n"),
            None => String::new(),
        };
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        common::request_raw(
            addr,
            format!(
                "POST /transfer HTTP/1.1\r\nHost: x\r\n{cookie}{head}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .status
    };
    assert_eq!(transfer(&two.addr, Some(&cookie), Some(&token)), 200);
    assert_eq!(transfer(&one.addr, Some(&cookie), None), 403);
    assert_eq!(transfer(&one.addr, Some(&cookie), Some("forged")), 403);
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    assert_eq!(transfer(&one.addr, Some(&cookie), Some(&wrong)), 403);
    assert_eq!(
        transfer(&one.addr, None, Some(&token)),
        403,
        "another session"
    );
    let other = get(&one.addr, "/csrf", None);
    assert_ne!(other.body, token);
    assert_eq!(
        transfer(&one.addr, other.cookie().as_deref(), Some(&token)),
        403,
        "a token of another session"
    );
}

/// Every `name=value` a response sets that carries a session id (write counts left out).
fn set_pairs(answer: &Answer) -> Vec<String> {
    answer.id_cookies()
}

fn preferences_are_a_second_session_that_a_logout_leaves_alone(args: &[&str]) {
    let demo = Demo::start(args);
    let set = request(&demo.addr, "PUT", "/prefs/theme", None, r#""dark""#);
    assert_eq!(set.status, 200, "{set:?}");
    let header = set_cookie(&set);
    assert!(header.starts_with("prefs="), "its own cookie: {header}");
    assert!(header.contains("Max-Age="), "persistent: {header}");
    let prefs = set.cookie().unwrap();
    let login = post(&demo.addr, "/login/ada", Some(&prefs));
    let pairs = set_pairs(&login);
    assert_eq!(
        pairs.len(),
        1,
        "the login sets the main cookie only: {pairs:?}"
    );
    let both = format!("{}; {prefs}", pairs[0]);
    assert_eq!(get(&demo.addr, "/me", Some(&both)).body, "ada");
    assert_eq!(
        get(&demo.addr, "/prefs/theme", Some(&both)).body,
        r#""dark""#
    );
    let logout = post(&demo.addr, "/logout", Some(&both));
    assert!(
        set_pairs(&logout).iter().all(|p| !p.starts_with("prefs=")),
        "the logout does not touch the prefs cookie: {logout:?}"
    );
    assert_eq!(get(&demo.addr, "/me", Some(&both)).status, 401);
    assert_eq!(
        get(&demo.addr, "/prefs/theme", Some(&both)).body,
        r#""dark""#
    );
    assert_eq!(post(&demo.addr, "/clear", Some(&both)).status, 200);
    assert_eq!(
        get(&demo.addr, "/prefs/theme", Some(&prefs)).body,
        r#""dark""#
    );
    assert_eq!(get(&demo.addr, "/prefs/other", Some(&prefs)).status, 404);

    // Neither cookie opens the other session.
    let value = prefs.split_once('=').unwrap().1;
    let as_main = format!("id={value}");
    assert_eq!(get(&demo.addr, "/get/theme", Some(&as_main)).status, 404);
    let main = post(&demo.addr, "/login/eve", None).cookie().unwrap();
    let as_prefs = format!("prefs={}", main.split_once('=').unwrap().1);
    assert_eq!(
        request(
            &demo.addr,
            "PUT",
            "/prefs/user",
            Some(&as_prefs),
            r#""admin""#
        )
        .status,
        200
    );
    // And sessio's own keys are not the client's to write, in either session.
    assert_eq!(
        request(&demo.addr, "PUT", "/prefs/_user", Some(&as_prefs), "1").status,
        403
    );
    assert_eq!(get(&demo.addr, "/me", Some(&main)).body, "eve", "not admin");
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
    flash_messages_are_read_once,
    the_csrf_token_guards_the_transfer,
    preferences_are_a_second_session_that_a_logout_leaves_alone,
);

#[test]
fn concurrent_flashes_on_two_redis_processes_are_all_shown_once() {
    let redis = RedisServer::start();
    concurrent_flashes_on_two_processes_are_all_shown_once(&["--store", &redis.url()]);
}

#[test]
fn a_login_on_one_redis_process_is_seen_by_another() {
    let redis = RedisServer::start();
    a_login_on_one_process_is_seen_by_another(&["--store", &redis.url()]);
}

/// The prefs session beside a main session that another request holds locked, on two
/// processes: prefs writes are not held up by the main lock and land; the locked section
/// counts as usual; a logout on the other process leaves the prefs session alone.
#[test]
fn a_named_session_on_two_redis_processes_is_independent_of_the_main_lock() {
    let redis = RedisServer::start();
    let args = ["--store", &redis.url()];
    let one = Demo::start(&args);
    let two = Demo::start(&args);
    let prefs = request(&one.addr, "PUT", "/prefs/theme", None, r#""light""#)
        .cookie()
        .unwrap();
    let main = post(&one.addr, "/login/ada", Some(&prefs))
        .cookie()
        .unwrap();
    let both = format!("{main}; {prefs}");
    std::thread::scope(|s| {
        let locked = s.spawn(|| get(&one.addr, "/locked?hold_ms=1500", Some(&both)));
        // While the main session is locked (the lock is taken within the first few ms),
        // the prefs session is written from the other process, several times.
        std::thread::sleep(Duration::from_millis(200));
        // Like a browser, the client keeps the cookies each answer sets: on Redis one
        // carries the write count, which is how process one knows its near-cached copy is
        // stale before Redis's invalidation reaches it.
        let mut jar = common::Jar::from_header(&both);
        for theme in ["dark", "blue", "green"] {
            let body = format!("\"{theme}\"");
            let answer = jar.request(&two.addr, "PUT", "/prefs/theme", &body);
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_eq!(jar.request(&one.addr, "GET", "/prefs/theme", "").body, body);
        }
        let locked = locked.join().unwrap();
        assert_eq!(
            (locked.status, locked.body.as_str()),
            (200, "1"),
            "{locked:?}"
        );
    });
    assert_eq!(post(&two.addr, "/logout", Some(&both)).status, 200);
    assert_eq!(get(&one.addr, "/me", Some(&both)).status, 401);
    assert_eq!(
        get(&one.addr, "/prefs/theme", Some(&prefs)).body,
        r#""green""#
    );
}
