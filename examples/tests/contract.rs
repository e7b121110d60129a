//! The demo contract (the routes of `examples/lib.rs`) as one HTTP suite, run against every
//! demo binary: `demo` (axum + sessio-axum) and `demo_actix` (actix-web + sessio-actix),
//! each on the in-memory store and on a private Redis. Every case starts its own process(es)
//! and talks to them over TCP on 127.0.0.1 only.
//!
//! `contract_suite!` expands to one named test per (binary, store, case), so a failure
//! names the framework and the store. The cases that look inside the store (record
//! counts) stay in `http.rs`, against the axum app in process.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{get, request, request_raw, two_processes, Answer, Demo};
use sessio_test_servers::RedisServer;

/// Where a case runs: a binary, and a store (with the Redis server it may need, kept
/// alive for the case).
struct Target {
    bin: &'static str,
    store: String,
    _redis: Option<RedisServer>,
}

impl Target {
    fn new(bin: &'static str, store: &str) -> Self {
        let (store, redis) = match store {
            "redis" => {
                let redis = RedisServer::start();
                (redis.url(), Some(redis))
            }
            other => (other.to_string(), None),
        };
        Self {
            bin,
            store,
            _redis: redis,
        }
    }

    /// One process of the binary on the store, with extra flags.
    fn start(&self, flags: &[&str]) -> Demo {
        let mut args = vec!["--store", self.store.as_str()];
        args.extend_from_slice(flags);
        Demo::start_example(self.bin, &args)
    }
}

fn post(addr: &str, path: &str, cookie: Option<&str>) -> Answer {
    request(addr, "POST", path, cookie, "")
}

fn put(addr: &str, path: &str, cookie: Option<&str>, body: &str) -> Answer {
    request(addr, "PUT", path, cookie, body)
}

/// The whole `Set-Cookie` header of an answer's session id (the write-count cookie left
/// out).
fn id_set_cookie(answer: &Answer) -> String {
    answer
        .set_cookies()
        .into_iter()
        .find(|c| !c.split('=').next().unwrap_or_default().ends_with(".w"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {answer:?}"))
}

/// Every `name=value` an answer sets that carries a session id (write counts left out).
fn id_cookies_of(answer: &Answer) -> Vec<String> {
    answer.id_cookies()
}

fn removes_cookie(answer: &Answer) -> bool {
    answer.set_cookies().iter().any(|c| c.contains("Max-Age=0"))
}

/// Runs `n` requests at once with `cookie`; request `i` is `(method, path, body)`.
fn concurrently(
    addr: &str,
    cookie: &str,
    n: usize,
    make: impl Fn(usize) -> (&'static str, String, String),
) -> Vec<Answer> {
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (addr, cookie) = (addr.to_string(), cookie.to_string());
            let (method, path, body) = make(i);
            std::thread::spawn(move || request(&addr, method, &path, Some(&cookie), &body))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn counter_counts_per_cookie(target: &Target) {
    let demo = target.start(&[]);
    let first = get(&demo.addr, "/", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"));
    // One id cookie (Redis's near cache adds the write count's own cookie, `id.w`).
    let set: Vec<String> = first
        .set_cookies()
        .into_iter()
        .filter(|c| !c.starts_with("id.w="))
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(
            set[0].contains(attribute),
            "{attribute} missing from {set:?}"
        );
    }
    let cookie = first.cookie().unwrap();
    let second = get(&demo.addr, "/", Some(&cookie));
    assert_eq!(second.body, "2");
    if target.store == "memory" {
        assert!(
            second.set_cookies().is_empty(),
            "a fresh cookie need not be sent again"
        );
    }
    let cookie = second.cookie().unwrap_or(cookie);
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "3");
    assert_eq!(
        get(&demo.addr, "/", None).body,
        "1",
        "another visitor starts at 1"
    );
}

fn attacker_chosen_ids_are_replaced(target: &Target) {
    let demo = target.start(&[]);
    let forged = format!("id={}", sessio::id::SessionId::generate().unwrap().as_str());
    let answer = get(&demo.addr, "/", Some(&forged));
    assert_eq!(answer.body, "1");
    let issued = answer.cookie().expect("a new id is issued");
    assert_ne!(issued, forged, "the attacker's id was adopted");
    assert_eq!(get(&demo.addr, "/", Some(&issued)).body, "2");
    assert_eq!(get(&demo.addr, "/get/foo", Some(&forged)).status, 404);
}

fn reading_an_empty_session_sets_no_cookie(target: &Target) {
    let demo = target.start(&[]);
    let read = get(&demo.addr, "/get/foo", None);
    assert_eq!(read.status, 404);
    assert!(read.set_cookies().is_empty(), "{read:?}");
    let me = get(&demo.addr, "/me", None);
    assert_eq!(me.status, 401);
    assert!(me.set_cookies().is_empty(), "{me:?}");
}

fn clear_expires_the_cookie_with_its_attributes(target: &Target) {
    let demo = target.start(&["--secure"]);
    let cookie = put(&demo.addr, "/set/a", None, "[1,2]").cookie().unwrap();
    assert_eq!(get(&demo.addr, "/get/a", Some(&cookie)).body, "[1,2]");
    let cleared = post(&demo.addr, "/clear", Some(&cookie));
    assert_eq!(cleared.status, 200);
    assert!(removes_cookie(&cleared), "{cleared:?}");
    let removal = &cleared.set_cookies()[0];
    for attribute in ["Path=/", "Secure", "SameSite=Lax", "HttpOnly"] {
        assert!(
            removal.contains(attribute),
            "removal lacks {attribute}: {removal}"
        );
    }
    assert_eq!(get(&demo.addr, "/get/a", Some(&cookie)).status, 404);
}

fn rotate_keeps_data_and_the_old_id_follows_unseen(target: &Target) {
    let demo = target.start(&[]);
    let old = put(&demo.addr, "/set/cart", None, "\"book\"")
        .cookie()
        .unwrap();
    let rotated = post(&demo.addr, "/rotate", Some(&old));
    assert_eq!(rotated.status, 200);
    let new = rotated.cookie().expect("rotation sends the new id");
    assert_ne!(new, old);
    assert_eq!(get(&demo.addr, "/get/cart", Some(&new)).body, "\"book\"");
    // A request still carrying the old id (sent before the rotation's answer arrived)
    // follows the rotation for its grace period, and is never told the new id.
    let late = get(&demo.addr, "/get/cart", Some(&old));
    assert_eq!((late.status, late.body.as_str()), (200, "\"book\""));
    assert!(late.id_cookies().is_empty(), "{late:?}");
    let late = put(&demo.addr, "/set/late", Some(&old), "1");
    assert_eq!(late.status, 200);
    assert!(late.id_cookies().is_empty(), "{late:?}");
    assert_eq!(get(&demo.addr, "/get/late", Some(&new)).body, "1");
}

fn login_rotates_and_logout_destroys(target: &Target) {
    let demo = target.start(&[]);
    let anonymous = get(&demo.addr, "/", None).cookie().unwrap();
    let user = post(&demo.addr, "/login/ada", Some(&anonymous))
        .cookie()
        .expect("login issues a new id");
    assert_ne!(user, anonymous);
    assert_eq!(get(&demo.addr, "/me", Some(&user)).body, "ada");
    assert_eq!(
        get(&demo.addr, "/get/foo", Some(&user)).body,
        "1",
        "data survives login"
    );
    assert_eq!(
        get(&demo.addr, "/", Some(&user)).body,
        "2",
        "the anonymous counter goes on after the login"
    );
    assert_eq!(
        get(&demo.addr, "/me", Some(&anonymous)).status,
        401,
        "the old id is not logged in"
    );
    let logout = post(&demo.addr, "/logout", Some(&user));
    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(removes_cookie(&logout), "{logout:?}");
    assert_eq!(get(&demo.addr, "/me", Some(&user)).status, 401);
}

fn the_guard_answers_401_and_lets_preflights_through(target: &Target) {
    let demo = target.start(&[]);
    let anonymous = get(&demo.addr, "/me", None);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert!(anonymous.body.contains("login required"), "{anonymous:?}");
    let preflight = request(&demo.addr, "OPTIONS", "/me", None, "");
    assert_eq!(
        preflight.status, 204,
        "a preflight is exempt: {preflight:?}"
    );
    assert_eq!(get(&demo.addr, "/sessions", None).status, 401);
    // A session without a login (a counter) is still anonymous for the guard.
    let counter = get(&demo.addr, "/", None).cookie().unwrap();
    assert_eq!(get(&demo.addr, "/me", Some(&counter)).status, 401);
}

fn remember_me_chooses_the_cookie_kind(target: &Target) {
    let demo = target.start(&[]);
    let answer = post(&demo.addr, "/login/ada?remember=0", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    let header = id_set_cookie(&answer);
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "remember=0 gives a browser-session cookie: {header}"
    );
    let cookie = answer.cookie().unwrap();
    assert_eq!(get(&demo.addr, "/me", Some(&cookie)).body, "ada");

    let answer = post(&demo.addr, "/login/bob?remember=1", None);
    let header = id_set_cookie(&answer);
    assert!(header.contains("Max-Age="), "remember=1 persists: {header}");
    assert_eq!(
        get(&demo.addr, "/me", answer.cookie().as_deref()).body,
        "bob"
    );
}

fn a_logins_duration_is_its_idle_timeout(target: &Target) {
    let demo = target.start(&[]);
    let answer = post(&demo.addr, "/login/ada?duration=1", None);
    let header = id_set_cookie(&answer);
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

fn idle_sessions_expire_and_activity_extends_them(target: &Target) {
    let demo = target.start(&["--ttl", "2"]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    for expected in 2..=4 {
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            get(&demo.addr, "/", Some(&cookie)).body,
            expected.to_string()
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    let after = get(&demo.addr, "/", Some(&cookie));
    assert_eq!(after.body, "1", "an idle session outlived its timeout");
    assert_ne!(after.cookie().unwrap(), cookie);
}

fn absolute_lifetime_ends_even_active_sessions(target: &Target) {
    let demo = target.start(&["--ttl", "60", "--absolute-ttl", "2"]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    let (mut last, started) = (1, Instant::now());
    while started.elapsed() < Duration::from_millis(3500) {
        std::thread::sleep(Duration::from_millis(250));
        let n: u32 = get(&demo.addr, "/", Some(&cookie)).body.parse().unwrap();
        if n == 1 {
            return;
        }
        assert_eq!(n, last + 1);
        last = n;
    }
    panic!("an active session lived past its 2 s absolute lifetime (counted to {last})");
}

fn forty_concurrent_locked_requests_return_one_to_forty(target: &Target) {
    let demo = target.start(&[]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    let answers = concurrently(&demo.addr, &cookie, 40, |_| {
        ("GET", "/locked?hold_ms=5".into(), String::new())
    });
    let mut seen: Vec<u32> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{a:?}");
            a.body.parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<_>>());
}

fn forty_concurrent_increments_lose_nothing(target: &Target) {
    let demo = target.start(&[]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    let answers = concurrently(&demo.addr, &cookie, 40, |_| {
        ("GET", "/".into(), String::new())
    });
    let seen: BTreeSet<u32> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{a:?}");
            a.body.parse().unwrap()
        })
        .collect();
    assert_eq!(
        seen,
        (2..=41).collect::<BTreeSet<_>>(),
        "two requests saw one count"
    );
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "42");
}

fn forty_concurrent_writes_of_different_keys_are_all_kept(target: &Target) {
    let demo = target.start(&[]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    let answers = concurrently(&demo.addr, &cookie, 40, |i| {
        ("PUT", format!("/set/k{i}"), i.to_string())
    });
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    for i in 0..40 {
        let answer = get(&demo.addr, &format!("/get/k{i}"), Some(&cookie));
        assert_eq!(
            (answer.status, answer.body),
            (200, i.to_string()),
            "k{i} lost"
        );
    }
    assert_eq!(get(&demo.addr, "/get/foo", Some(&cookie)).body, "1");
}

fn hostile_cookies_get_a_fresh_session_never_a_5xx(target: &Target) {
    let demo = target.start(&[]);
    let real = get(&demo.addr, "/", None).cookie().unwrap();
    let real_id = real.trim_start_matches("id=").to_string();
    let hostile: Vec<Vec<u8>> = vec![
        b"id=".to_vec(),
        b"id=garbage".to_vec(),
        format!("id={}", "A".repeat(4000)).into_bytes(),
        format!("id={real_id}x").into_bytes(),
        format!("id={}", &real_id[..42]).into_bytes(),
        // A quote on one side only (RFC 6265 quotes the whole value, which is accepted).
        format!("id=\"{real_id}").into_bytes(),
        b"id=\xff\xfe\xfd".to_vec(),
        b";;;=;=id==;".to_vec(),
        b"id=../../etc/passwd".to_vec(),
        format!("id={}", "=".repeat(43)).into_bytes(),
    ];
    for value in &hostile {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: ",
            demo.addr
        );
        let raw = [head.as_bytes(), value, b"\r\n\r\n"].concat();
        let answer = request_raw(&demo.addr, &raw);
        let shown = String::from_utf8_lossy(value);
        assert!(
            answer.status < 500,
            "{} for cookie {shown:?}",
            answer.status
        );
        assert_eq!(
            answer.body, "1",
            "hostile cookie {shown:?} reached a session"
        );
        assert_ne!(answer.cookie().expect("a fresh session"), real);
    }
    assert_eq!(
        get(&demo.addr, "/", Some(&real)).body,
        "2",
        "the real session was harmed"
    );
}

fn bad_input_is_a_4xx_and_reserved_keys_are_refused(target: &Target) {
    let demo = target.start(&[]);
    let invalid = put(&demo.addr, "/set/a", None, "{not json");
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert!(invalid.set_cookies().is_empty());
    assert_eq!(put(&demo.addr, "/set/_user", None, "\"admin\"").status, 403);
    assert_eq!(get(&demo.addr, "/get/_user", None).status, 403);
    // A handler's session error (foo is not a number) is the default mapping's 500.
    let cookie = put(&demo.addr, "/set/foo", None, "\"text\"")
        .cookie()
        .unwrap();
    let broken = get(&demo.addr, "/", Some(&cookie));
    assert_eq!(
        (broken.status, broken.body.as_str()),
        (500, "session error\n")
    );
}

fn flash_messages_are_shown_once(target: &Target) {
    let demo = target.start(&[]);
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

fn csrf_tokens_guard_the_transfer(target: &Target) {
    let one = target.start(&[]);
    // A second process where the store is shared (not with the in-memory store).
    let second = (target.store != "memory").then(|| target.start(&[]));
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

fn prefs_survive_logout_and_clear(target: &Target) {
    let demo = target.start(&[]);
    let mut jar = common::Jar::default();
    jar.request(&demo.addr, "POST", "/login/ada", "");
    assert_eq!(
        jar.request(&demo.addr, "PUT", "/prefs/theme", "\"dark\"")
            .status,
        200
    );
    jar.request(&demo.addr, "POST", "/logout", "");
    jar.request(&demo.addr, "POST", "/clear", "");
    assert_eq!(
        jar.request(&demo.addr, "GET", "/prefs/theme", "").body,
        "\"dark\""
    );
    assert_eq!(jar.request(&demo.addr, "GET", "/me", "").status, 401);
}

fn preferences_are_a_second_session_that_a_logout_leaves_alone(target: &Target) {
    let demo = target.start(&[]);
    let set = request(&demo.addr, "PUT", "/prefs/theme", None, r#""dark""#);
    assert_eq!(set.status, 200, "{set:?}");
    let header = id_set_cookie(&set);
    assert!(header.starts_with("prefs="), "its own cookie: {header}");
    assert!(header.contains("Max-Age="), "persistent: {header}");
    let prefs = set.cookie().unwrap();
    let login = post(&demo.addr, "/login/ada", Some(&prefs));
    let pairs = id_cookies_of(&login);
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
        id_cookies_of(&logout)
            .iter()
            .all(|p| !p.starts_with("prefs=")),
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

fn the_users_sessions_are_listed_and_revoked(target: &Target) {
    let demo = target.start(&[]);
    let phone = post(&demo.addr, "/login/ada", None).cookie().unwrap();
    let laptop = post(&demo.addr, "/login/ada", None).cookie().unwrap();
    let listed = get(&demo.addr, "/sessions", Some(&laptop));
    assert_eq!(listed.status, 200, "{listed:?}");
    let sessions: Vec<serde_json::Value> = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let revoked = post(&demo.addr, "/sessions/revoke-others", Some(&laptop));
    assert_eq!(revoked.body.trim(), "1");
    assert_eq!(get(&demo.addr, "/me", Some(&phone)).status, 401);
    assert_eq!(get(&demo.addr, "/me", Some(&laptop)).body, "ada");
    let none = request(&demo.addr, "DELETE", "/sessions/nope", Some(&laptop), "");
    assert_eq!(none.status, 404);
}

fn lock_wait_timeout_is_a_503_with_retry_after(target: &Target) {
    let demo = target.start(&["--lock-wait-ms", "100"]);
    let cookie = get(&demo.addr, "/", None).cookie().unwrap();
    let holder = {
        let (addr, cookie) = (demo.addr.clone(), cookie.clone());
        std::thread::spawn(move || get(&addr, "/locked?hold_ms=1500", Some(&cookie)))
    };
    std::thread::sleep(Duration::from_millis(300));
    let waiter = get(&demo.addr, "/locked", Some(&cookie));
    assert_eq!(waiter.status, 503, "{waiter:?}");
    assert!(
        waiter
            .headers
            .to_ascii_lowercase()
            .contains("retry-after: 1"),
        "{waiter:?}"
    );
    assert_eq!(holder.join().unwrap().body, "1");
}

/// A number goes in and comes back as the same double, in JSON and in MessagePack.
fn numbers_read_back_as_the_same_double(target: &Target) {
    for codec in ["json", "msgpack"] {
        let demo = target.start(&["--codec", codec]);
        let mut jar = common::Jar::default();
        for (i, number) in [
            "1.5e-300",
            "123456789.12345679",
            "0.1",
            "-2.2250738585072014e-308",
        ]
        .iter()
        .enumerate()
        {
            let put = jar.request(&demo.addr, "PUT", &format!("/set/n{i}"), number);
            assert_eq!(put.status, 200, "{put:?}");
            let back = jar.request(&demo.addr, "GET", &format!("/get/n{i}"), "");
            let (sent, read): (f64, f64) = (number.parse().unwrap(), back.body.parse().unwrap());
            assert_eq!(
                sent.to_bits(),
                read.to_bits(),
                "{codec}: {number} read back as {}",
                back.body
            );
        }
        // `-0.0` over `0.0` is a write like any other.
        for number in ["0.0", "-0.0"] {
            assert_eq!(jar.request(&demo.addr, "PUT", "/set/z", number).status, 200);
        }
        let back = jar.request(&demo.addr, "GET", "/get/z", "");
        assert_eq!(back.body, "-0.0", "{codec}");
    }
}

/// A locked section that outlives its session (its absolute lifetime ends while the lock
/// is held) never answers 200 for a write that is lost, nor "busy, retry": either the write
/// is where the browser reads it, or the answer says that the session ended.
fn a_locked_section_that_outlives_its_session_says_so(target: &Target) {
    let demo = target.start(&["--absolute-ttl", "2"]);
    let mut jar = common::Jar::default();
    assert_eq!(jar.request(&demo.addr, "PUT", "/set/x", "1").status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    let locked = jar.request(&demo.addr, "GET", "/locked?hold_ms=1500", "");
    match locked.status {
        200 => {
            let read = jar.request(&demo.addr, "GET", "/get/locked", "");
            assert_eq!(
                read.body, locked.body,
                "answered 200 ({locked:?}), and the write is lost: {read:?}"
            );
        }
        status => {
            assert_eq!(status, 409, "{locked:?}");
            assert!(locked.body.contains("session ended"), "{locked:?}");
            assert!(locked.id_cookies().is_empty(), "{locked:?}");
        }
    }
}

/// A locked section that logs out while a login (another request of the same browser)
/// moves the session on: the logout is refused, 409 with `Retry-After` and no cookie, so a
/// browser applying the answers in any order stays logged in.
fn a_locked_logout_racing_a_login_is_refused_without_a_cookie(target: &Target) {
    let demo = target.start(&[]);
    let cookie = request(&demo.addr, "PUT", "/set/x", None, "1")
        .cookie()
        .unwrap();
    std::thread::scope(|s| {
        let locked = s.spawn(|| get(&demo.addr, "/locked?hold_ms=600&then=logout", Some(&cookie)));
        std::thread::sleep(Duration::from_millis(200));
        let login = post(&demo.addr, "/login/vic", Some(&cookie));
        assert_eq!(login.status, 200, "{login:?}");
        let logged_in = login.cookie().unwrap();
        let locked = locked.join().unwrap();
        assert_eq!(locked.status, 409, "{locked:?}");
        assert!(
            locked
                .headers
                .to_ascii_lowercase()
                .contains("retry-after: 1"),
            "{locked:?}"
        );
        assert!(
            locked.set_cookies().is_empty(),
            "a refused logout sent cookies: {locked:?}"
        );
        assert_eq!(get(&demo.addr, "/me", Some(&logged_in)).body, "vic");
    });
}

/// A logout (and a locked section) carrying an id many rotations old: past the forwards a
/// request follows it is refused with nothing deleted or written (the browser holds a newer
/// id by now, and its retry with that one logs out); within them it ends the live session.
fn a_logout_with_an_id_many_rotations_old_ends_the_session_or_nothing(target: &Target) {
    let demo = target.start(&[]);
    for hops in [16, 17] {
        let oldest = request(&demo.addr, "PUT", "/set/x", None, "1")
            .cookie()
            .unwrap();
        let mut newest = oldest.clone();
        for _ in 0..hops {
            newest = post(&demo.addr, "/rotate", Some(&newest)).cookie().unwrap();
        }
        // A locked section follows no more forwards than a read.
        let locked = get(&demo.addr, "/locked?hold_ms=0", Some(&oldest));
        let expected = if hops > 16 { 409 } else { 200 };
        assert_eq!(locked.status, expected, "{hops} hops: {locked:?}");
        if hops > 16 {
            assert!(locked.set_cookies().is_empty(), "{locked:?}");
            assert_eq!(get(&demo.addr, "/get/locked", Some(&newest)).status, 404);
        }
        let logout = post(&demo.addr, "/logout", Some(&oldest));
        let alive = get(&demo.addr, "/get/x", Some(&newest)).status == 200;
        match logout.status {
            200 => assert!(!alive, "{hops} hops: logged out, yet the session lives"),
            409 => {
                assert!(hops > 16, "{hops} hops: {logout:?}");
                assert!(alive, "{hops} hops: refused, yet something was deleted");
                assert!(logout.set_cookies().is_empty(), "{logout:?}");
                assert_eq!(post(&demo.addr, "/logout", Some(&newest)).status, 200);
                assert_eq!(get(&demo.addr, "/get/x", Some(&newest)).status, 404);
            }
            _ => panic!("{hops} hops: {logout:?}"),
        }
    }
}

/// One test per (binary, store, case).
macro_rules! contract_suite {
    ($($module:ident: $bin:literal on $store:literal;)*) => {$(
        mod $module {
            use super::Target;
            contract_suite!(@cases $bin, $store,
                counter_counts_per_cookie,
                attacker_chosen_ids_are_replaced,
                reading_an_empty_session_sets_no_cookie,
                clear_expires_the_cookie_with_its_attributes,
                rotate_keeps_data_and_the_old_id_follows_unseen,
                login_rotates_and_logout_destroys,
                the_guard_answers_401_and_lets_preflights_through,
                remember_me_chooses_the_cookie_kind,
                a_logins_duration_is_its_idle_timeout,
                idle_sessions_expire_and_activity_extends_them,
                absolute_lifetime_ends_even_active_sessions,
                forty_concurrent_locked_requests_return_one_to_forty,
                forty_concurrent_increments_lose_nothing,
                forty_concurrent_writes_of_different_keys_are_all_kept,
                hostile_cookies_get_a_fresh_session_never_a_5xx,
                bad_input_is_a_4xx_and_reserved_keys_are_refused,
                flash_messages_are_shown_once,
                csrf_tokens_guard_the_transfer,
                prefs_survive_logout_and_clear,
                preferences_are_a_second_session_that_a_logout_leaves_alone,
                the_users_sessions_are_listed_and_revoked,
                lock_wait_timeout_is_a_503_with_retry_after,
                numbers_read_back_as_the_same_double,
                a_locked_section_that_outlives_its_session_says_so,
                a_locked_logout_racing_a_login_is_refused_without_a_cookie,
                a_logout_with_an_id_many_rotations_old_ends_the_session_or_nothing,
            );
        }
    )*};
    (@cases $bin:literal, $store:literal, $($case:ident,)*) => {$(
        #[test]
        fn $case() {
            super::$case(&Target::new($bin, $store));
        }
    )*};
}

contract_suite! {
    axum_memory: "demo" on "memory";
    axum_redis: "demo" on "redis";
    actix_memory: "demo_actix" on "memory";
    actix_redis: "demo_actix" on "redis";
}

// Cases with two processes of one binary on one shared store (Redis).

fn a_login_on_one_process_is_seen_by_another(target: &Target) {
    let one = target.start(&[]);
    let two = target.start(&[]);
    let cookie = post(&one.addr, "/login/ada", None).cookie().unwrap();
    assert_eq!(get(&two.addr, "/me", Some(&cookie)).body, "ada");
    assert_eq!(post(&two.addr, "/logout", Some(&cookie)).status, 200);
    assert_eq!(get(&one.addr, "/me", Some(&cookie)).status, 401);
}

fn concurrent_flashes_on_two_processes_are_all_shown_once(target: &Target) {
    let one = target.start(&[]);
    let two = target.start(&[]);
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

/// The prefs session beside a main session that another request holds locked, on two
/// processes: prefs writes are not held up by the main lock and land; the locked section
/// counts as usual; a logout on the other process leaves the prefs session alone.
fn a_named_session_on_two_processes_is_independent_of_the_main_lock(target: &Target) {
    let one = target.start(&[]);
    let two = target.start(&[]);
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

/// One test per (binary, case), each on two processes over a private Redis.
macro_rules! two_process_suite {
    ($($module:ident: $bin:literal;)*) => {$(
        mod $module {
            use super::Target;
            two_process_suite!(@cases $bin,
                a_login_on_one_process_is_seen_by_another,
                concurrent_flashes_on_two_processes_are_all_shown_once,
                a_named_session_on_two_processes_is_independent_of_the_main_lock,
            );
        }
    )*};
    (@cases $bin:literal, $($case:ident,)*) => {$(
        #[test]
        fn $case() {
            super::$case(&Target::new($bin, "redis"));
        }
    )*};
}

two_process_suite! {
    axum_two_processes: "demo";
    actix_two_processes_on_redis: "demo_actix";
}

/// The two-process cases: two actix demos on one Redis (the axum demo runs them in
/// `redis.rs`).
mod actix_two_processes {
    use super::*;

    #[test]
    fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
        let redis = RedisServer::start();
        two_processes::sixty_locked_requests_on("demo_actix", &redis.url());
    }

    #[test]
    fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
        let redis = RedisServer::start();
        two_processes::forty_writes_of_different_keys_on("demo_actix", &redis.url());
    }

    #[test]
    fn an_axum_and_an_actix_process_share_sessions() {
        let redis = RedisServer::start();
        let axum = Demo::start_example("demo", &["--store", &redis.url()]);
        let actix = Demo::start_example("demo_actix", &["--store", &redis.url()]);
        let cookie = post(&axum.addr, "/login/ada", None).cookie().unwrap();
        assert_eq!(get(&actix.addr, "/me", Some(&cookie)).body, "ada");
        assert_eq!(get(&actix.addr, "/", Some(&cookie)).body, "1");
        assert_eq!(get(&axum.addr, "/", Some(&cookie)).body, "2");
        post(&actix.addr, "/logout", Some(&cookie));
        assert_eq!(get(&axum.addr, "/me", Some(&cookie)).status, 401);
    }
}
