//! I8 — the browser keeps its session. A browser does not wait for one answer before it
//! sends the next request: autosaves, beacons and a second tab go out while a login or a
//! rotation is on its way, each carrying the cookie the jar held when it was sent, and the
//! jar applies every answer's `Set-Cookie` in the order the answers arrive.
//!
//! These tests drive demo processes with such a client ([`BrowserModel`]) and check what
//! the user sees at the end: logged in after a login, in the successor after a rotation,
//! every write answered 2xx in the final cookie's session, and every refused request
//! retryable and without a cookie. Two processes share the store (one process on memory);
//! writes alternate between them.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{request, Answer, Demo, Jar, Pair};
use sessio_test_servers::{
    memcached_url, MemcachedServer, MongoServer, PostgresServer, RedisServer, TempDir,
};

/// Trials per store and scenario.
const TRIALS: usize = 200;
/// Writes in flight during each login or rotation.
const WRITES: usize = 4;

/// A browser's cookie jar shared by its concurrent requests: each request carries the
/// cookies the jar held when it was sent; each answer's cookies are applied when it
/// arrives.
#[derive(Clone, Default)]
struct BrowserModel {
    jar: Arc<Mutex<Jar>>,
}

impl BrowserModel {
    fn send(&self, addr: &str, method: &str, path: &str, body: &str) -> Answer {
        let cookie = self.jar.lock().unwrap().header();
        let answer = request(addr, method, path, cookie.as_deref(), body);
        self.jar.lock().unwrap().take(&answer);
        answer
    }

    fn cookies(&self) -> Jar {
        self.jar.lock().unwrap().clone()
    }
}

/// A small pseudo-random pause (0–`max_us` µs), so that answers arrive in varied orders.
fn jitter(seed: u64, max_us: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    std::thread::sleep(Duration::from_micros(x % max_us.max(1)));
}

/// What went wrong in one trial (printed with `Debug` when the test fails).
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
enum Broken {
    LoggedOut(Answer),
    Emptied(Answer),
    NotRotated,
    WriteLost { key: String, seen: Answer },
    RefusedBadly(Answer),
}

/// One browser: a session with `seed`, then `step` (a login or a rotation) racing WRITES
/// PUTs, alternating between the processes. Returns what the user would see broken.
fn trial(p: &Pair, n: usize, step: &str) -> Vec<Broken> {
    trial_of(p, n, step, seeded(p, n))
}

/// A browser holding a session with `seed` = 7.
fn seeded(p: &Pair, n: usize) -> BrowserModel {
    let browser = BrowserModel::default();
    let seeded = browser.send(&p.addr(n), "PUT", "/set/seed", "7");
    assert_eq!(seeded.status, 200, "{seeded:?}");
    browser
}

/// [`trial`] with a browser already holding its session.
fn trial_of(p: &Pair, n: usize, step: &str, browser: BrowserModel) -> Vec<Broken> {
    let before = browser.cookies();
    let mut threads = Vec::new();
    for w in 0..WRITES {
        let (b, addr) = (browser.clone(), p.addr(n + w + 1));
        threads.push(std::thread::spawn(move || {
            jitter((n * 31 + w) as u64, 3000);
            let key = format!("w{w}");
            let answer = b.send(&addr, "PUT", &format!("/set/{key}"), &format!("{n}"));
            (Some(key), answer)
        }));
    }
    let (b, addr, step_path) = (browser.clone(), p.addr(n), step.to_string());
    threads.push(std::thread::spawn(move || {
        jitter(n as u64 * 7 + 3, 1500);
        (None, b.send(&addr, "POST", &step_path, ""))
    }));
    let mut acknowledged = Vec::new();
    let mut broken = Vec::new();
    let mut step_refused = false;
    for t in threads {
        let (key, answer) = t.join().unwrap();
        match key {
            // A login that lost the race to a rotation (a write renewing the cookie) is
            // refused, retryably and without a cookie; the page retries it.
            None if answer.status == 409 => {
                assert!(
                    answer.headers.to_ascii_lowercase().contains("retry-after:")
                        && answer.set_cookies().is_empty(),
                    "{step}: {answer:?}"
                );
                step_refused = true;
            }
            None => assert_eq!(answer.status, 200, "{step}: {answer:?}"),
            Some(key) if (200..300).contains(&answer.status) => acknowledged.push(key),
            Some(_) => {
                let retryable = matches!(answer.status, 409 | 503)
                    && answer.headers.to_ascii_lowercase().contains("retry-after:")
                    && answer.set_cookies().is_empty();
                if !retryable {
                    broken.push(Broken::RefusedBadly(answer));
                }
            }
        }
    }
    // The browser goes on with whatever its jar holds now.
    let reader = p.addr(n + 1);
    if step_refused {
        let again = browser.send(&reader, "POST", step, "");
        assert_eq!(again.status, 200, "{step}, retried: {again:?}");
    }
    if step.starts_with("/login/") {
        let me = browser.send(&reader, "GET", "/me", "");
        if me.status != 200 || me.body != "alice" {
            broken.push(Broken::LoggedOut(me));
        }
    } else if browser.cookies().0 == before.0 {
        broken.push(Broken::NotRotated);
    }
    let seed = browser.send(&reader, "GET", "/get/seed", "");
    if seed.body != "7" {
        broken.push(Broken::Emptied(seed));
    }
    for key in acknowledged {
        let seen = browser.send(&reader, "GET", &format!("/get/{key}"), "");
        if seen.status != 200 || seen.body != n.to_string() {
            broken.push(Broken::WriteLost { key, seen });
        }
    }
    broken
}

/// TRIALS browsers through `step`; none may end logged out, emptied or missing a write.
fn browsers_keep_their_session(p: &Pair, step: &str) {
    let mut failures: BTreeMap<&'static str, (usize, String)> = BTreeMap::new();
    let mut failed_trials = 0;
    for n in 0..TRIALS {
        let broken = trial(p, n, step);
        if !broken.is_empty() {
            failed_trials += 1;
        }
        for b in broken {
            let kind = match &b {
                Broken::LoggedOut(_) => "logged out",
                Broken::Emptied(_) => "emptied",
                Broken::NotRotated => "not rotated",
                Broken::WriteLost { .. } => "a write answered 2xx is missing",
                Broken::RefusedBadly(_) => "refused without a retryable status, or with a cookie",
            };
            let entry = failures.entry(kind).or_insert((0, format!("{b:?}")));
            entry.0 += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{step}: {failed_trials} of {TRIALS} browsers broke: {failures:#?}"
    );
}

/// The same when every browser's cookie is due for renewal (the demo's `--ttl 6`: past
/// half its age after 3 s): the requests in flight with the old id must not bring it back
/// after the login's or the rotation's answer.
fn steps_with_writes_in_flight_when_the_cookie_is_due_for_renewal(url: Option<&str>) {
    let store = url.unwrap_or("memory");
    let start = || Demo::start(&["--store", store, "--ttl", "6"]);
    let p = Pair {
        a: start(),
        b: url.map(|_| start()),
    };
    for step in ["/login/alice", "/rotate"] {
        let browsers: Vec<BrowserModel> = (0..20).map(|n| seeded(&p, n)).collect();
        std::thread::sleep(Duration::from_millis(3100));
        let mut broken = Vec::new();
        for (n, browser) in browsers.into_iter().enumerate() {
            broken.extend(trial_of(&p, n, step, browser));
        }
        assert!(
            broken.is_empty(),
            "{step}: {} failures, e.g. {:?}",
            broken.len(),
            broken.first()
        );
    }
}

fn login_with_writes_in_flight(p: &Pair) {
    browsers_keep_their_session(p, "/login/alice");
}

fn rotation_with_writes_in_flight(p: &Pair) {
    browsers_keep_their_session(p, "/rotate");
}

/// Fixation stays closed: an attacker planted a session id in the victim's browser; the
/// victim logs in. Whatever the attacker sends with the planted id, during the login or
/// after it, never learns the new id, never reads the logged-in session and never writes
/// into it.
fn a_planted_id_stays_outside_the_login(p: &Pair) {
    for round in 0..20 {
        let planted = request(&p.addr(0), "PUT", "/set/bait", None, "1");
        let planted = planted.cookie().expect("the attacker's session");
        // The attacker's writes race the victim's login, on both processes.
        let attacker: Vec<_> = (0..6)
            .map(|i| {
                let (addr, cookie) = (p.addr(i), planted.clone());
                std::thread::spawn(move || {
                    jitter((round * 13 + i) as u64, 2000);
                    request(
                        &addr,
                        "PUT",
                        &format!("/set/poison{i}"),
                        Some(&cookie),
                        "true",
                    )
                })
            })
            .collect();
        jitter(round as u64, 1000);
        let login = request(&p.addr(round), "POST", "/login/victim", Some(&planted), "");
        assert_eq!(login.status, 200, "{login:?}");
        let victim = login.cookie().expect("the login sends the new id");
        let victim_id = victim.split('=').nth(1).unwrap().split('.').next().unwrap();
        let mut answers: Vec<Answer> = attacker.into_iter().map(|t| t.join().unwrap()).collect();
        // And after the login, reads and writes with the planted id.
        for i in 0..2 {
            answers.push(request(&p.addr(i), "GET", "/me", Some(&planted), ""));
            answers.push(request(&p.addr(i), "GET", "/get/bait", Some(&planted), ""));
            answers.push(request(
                &p.addr(i),
                "PUT",
                "/set/late_poison",
                Some(&planted),
                "true",
            ));
        }
        for answer in &answers {
            assert!(
                !answer.headers.contains(victim_id),
                "the planted id learned the logged-in id: {answer:?}"
            );
            assert_ne!(answer.body, "victim", "the planted id read the login");
        }
        for i in 0..2 {
            let me = request(&p.addr(i), "GET", "/me", Some(&planted), "");
            assert_eq!(me.status, 401, "the planted id is logged in: {me:?}");
        }
        // Writes the attacker made before the login are the anonymous data the login keeps;
        // nothing written with the planted id once the login was done is in the session.
        let late = request(&p.addr(1), "GET", "/get/late_poison", Some(&victim), "");
        assert_eq!(
            late.status, 404,
            "a write with the planted id landed: {late:?}"
        );
        let me = request(&p.addr(1), "GET", "/me", Some(&victim), "");
        assert_eq!(me.body, "victim");
    }
}

/// Flash messages are delivered exactly once: one added, two `GET /flash` racing on the
/// two processes, 200 rounds: one answer carries it, the other does not.
fn a_flash_is_read_exactly_once(p: &Pair) {
    let browser = BrowserModel::default();
    assert_eq!(browser.send(&p.addr(0), "PUT", "/set/x", "1").status, 200);
    let mut wrong = Vec::new();
    for round in 0..200 {
        let added = browser.send(&p.addr(round), "POST", "/flash", &format!("m{round}"));
        assert_eq!(added.status, 200, "{added:?}");
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let (b, addr) = (browser.clone(), p.addr(i));
                std::thread::spawn(move || b.send(&addr, "GET", "/flash", ""))
            })
            .collect();
        let bodies: Vec<Answer> = readers.into_iter().map(|t| t.join().unwrap()).collect();
        let delivered = bodies
            .iter()
            .filter(|a| a.body.contains(&format!("\"m{round}\"")))
            .count();
        if delivered != 1 || bodies.iter().any(|a| a.status != 200) {
            wrong.push((round, bodies));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 200 flashes were not delivered exactly once, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
}

/// The same again, when the flash is all the session holds (taking it empties the
/// session, so the take is a deletion).
fn a_lone_flash_is_read_exactly_once(p: &Pair) {
    let mut wrong = 0;
    for round in 0..100 {
        let browser = BrowserModel::default();
        let added = browser.send(&p.addr(round), "POST", "/flash", "hello");
        assert_eq!(added.status, 200, "{added:?}");
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let (b, addr) = (browser.clone(), p.addr(i));
                std::thread::spawn(move || b.send(&addr, "GET", "/flash", ""))
            })
            .collect();
        let delivered = readers
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|a| a.body.contains("hello"))
            .count();
        if delivered != 1 {
            wrong += 1;
        }
    }
    assert_eq!(
        wrong, 0,
        "{wrong} of 100 lone flashes were not delivered exactly once"
    );
}

macro_rules! on_stores {
    ($($store:ident => $make:expr;)*) => {$(
        mod $store {
            use super::*;
            #[allow(unused_variables)]
            fn pair() -> (Pair, Box<dyn std::any::Any>) {
                $make
            }
            #[test]
            fn login_with_writes_in_flight() {
                let (p, _server) = pair();
                super::login_with_writes_in_flight(&p);
            }
            #[test]
            fn rotation_with_writes_in_flight() {
                let (p, _server) = pair();
                super::rotation_with_writes_in_flight(&p);
            }
            #[test]
            fn a_planted_id_stays_outside_the_login() {
                let (p, _server) = pair();
                super::a_planted_id_stays_outside_the_login(&p);
            }
            #[test]
            fn a_flash_is_read_exactly_once() {
                let (p, _server) = pair();
                super::a_flash_is_read_exactly_once(&p);
            }
            #[test]
            fn a_lone_flash_is_read_exactly_once() {
                let (p, _server) = pair();
                super::a_lone_flash_is_read_exactly_once(&p);
            }
        }
    )*};
}

#[test]
fn memory_steps_with_writes_in_flight_when_the_cookie_is_due_for_renewal() {
    steps_with_writes_in_flight_when_the_cookie_is_due_for_renewal(None);
}

#[test]
fn redis_steps_with_writes_in_flight_when_the_cookie_is_due_for_renewal() {
    let server = RedisServer::start();
    steps_with_writes_in_flight_when_the_cookie_is_due_for_renewal(Some(&server.url()));
}

on_stores! {
    memory => (Pair::memory(), Box::new(()));
    redis => {
        let server = RedisServer::start();
        (Pair::shared(&server.url()), Box::new(server))
    };
    redis_stale_near_cache => {
        let server = RedisServer::start();
        (Pair::redis_stale_near_cache(&server.url()), Box::new(server))
    };
    memcached => {
        let server = MemcachedServer::start();
        (Pair::shared(&memcached_url(&[&server])), Box::new(server))
    };
    postgres => {
        let server = PostgresServer::start();
        (Pair::shared(&server.url()), Box::new(server))
    };
    sqlite => {
        let dir = TempDir::new("sqlite-in-flight");
        let url = format!("sqlite://{}", dir.path.join("s.db").display());
        (Pair::shared(&url), Box::new(dir))
    };
    mongodb => {
        let server = MongoServer::start();
        (Pair::shared(&server.url("in_flight")), Box::new(server))
    };
    valkey => {
        let server = RedisServer::start_valkey();
        (Pair::shared(&server.url()), Box::new(server))
    };
}
