//! Black-box HTTP tests of the guarantees where features meet, over TCP against demo
//! processes: on memory (one process), and on Redis, Memcached, PostgreSQL, SQLite and
//! MariaDB (two processes sharing the store, requests alternating between them). Each test
//! is one defect that `main` had.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{get, request, Answer, Demo, Pair};
use sessio_test_servers::{
    memcached_url, MariaDbServer, MemcachedServer, MongoServer, PostgresServer, RedisServer,
    TempDir,
};

fn set_cookie(answer: &Answer) -> Option<String> {
    answer.cookie()
}

/// The id in a `name=value` cookie pair, without the write count a caching store adds.
fn id_of(pair: &str) -> &str {
    pair.split('.').next().unwrap_or(pair)
}

/// #1: a logout on one process while another holds the lock stays a logout.
fn logout_during_a_held_lock_stays_a_logout(p: &Pair) {
    let login = request(&p.a(), "POST", "/login/alice", None, "");
    let cookie = set_cookie(&login).expect("login sets a cookie");
    let (a, c) = (p.a(), cookie.clone());
    let locked = std::thread::spawn(move || get(&a, "/locked?hold_ms=700", Some(&c)));
    std::thread::sleep(Duration::from_millis(250));
    let logout = request(&p.b(), "POST", "/logout", Some(&cookie), "");
    assert_eq!(logout.status, 200, "{logout:?}");
    let _ = locked.join().unwrap();
    for addr in [p.a(), p.b()] {
        let me = get(&addr, "/me", Some(&cookie));
        assert_eq!(
            me.status, 401,
            "the locked request undid the logout: {me:?}"
        );
    }
}

/// #1 (rotation): a rotation during a held lock is not undone either.
fn rotation_during_a_held_lock_is_not_undone(p: &Pair) {
    let put = request(&p.a(), "PUT", "/set/x", None, "1");
    let cookie = set_cookie(&put).expect("a cookie");
    let (a, c) = (p.a(), cookie.clone());
    let locked = std::thread::spawn(move || get(&a, "/locked?hold_ms=700", Some(&c)));
    std::thread::sleep(Duration::from_millis(250));
    let rotate = request(&p.b(), "POST", "/rotate", Some(&cookie), "");
    assert_eq!(rotate.status, 200);
    let new = set_cookie(&rotate).expect("the rotation sends the new id");
    let _ = locked.join().unwrap();
    for addr in [p.a(), p.b()] {
        // The old id leads to the successor (unseen), not to a record of its own.
        let late = get(&addr, "/get/x", Some(&cookie));
        assert_eq!((late.status, late.body.as_str()), (200, "1"), "{late:?}");
        assert!(late.id_cookies().is_empty(), "{late:?}");
        assert_eq!(get(&addr, "/get/x", Some(&new)).body, "1");
        assert_eq!(
            get(&addr, "/get/locked", Some(&new)).status,
            404,
            "the refused locked section was written"
        );
    }
}

/// #2: plain writes made during a held lock survive the lock holder's save.
fn plain_writes_during_a_held_lock_are_kept(p: &Pair) {
    let first = get(&p.a(), "/", None);
    let cookie = set_cookie(&first).expect("a cookie");
    let (a, c) = (p.a(), cookie.clone());
    let locked = std::thread::spawn(move || get(&a, "/locked?hold_ms=700", Some(&c)));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        request(&p.b(), "PUT", "/set/cart", Some(&cookie), "[1]").status,
        200
    );
    assert_eq!(get(&p.b(), "/", Some(&cookie)).body, "2");
    let locked = locked.join().unwrap();
    assert_eq!(
        (locked.status, locked.body.as_str()),
        (200, "1"),
        "{locked:?}"
    );
    for addr in [p.a(), p.b()] {
        assert_eq!(
            get(&addr, "/get/cart", Some(&cookie)).body,
            "[1]",
            "the lock holder's save dropped cart"
        );
        assert_eq!(
            get(&addr, "/get/foo", Some(&cookie)).body,
            "2",
            "the lock holder's save rolled foo back"
        );
        assert_eq!(get(&addr, "/get/locked", Some(&cookie)).body, "1");
    }
}

/// #4: six writers x 25 PUTs racing one rotation: every write answered 200 is in a session.
fn writes_racing_a_rotation_are_kept(p: &Pair) {
    let seed = request(&p.a(), "PUT", "/set/seed", None, "true");
    let cookie = set_cookie(&seed).expect("a cookie");
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (a, b, c) = (p.a(), p.b(), cookie.clone());
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let addr = if i % 2 == 0 { &a } else { &b };
                        let key = format!("w{w}_{i}");
                        let answer = request(
                            addr,
                            "PUT",
                            &format!("/set/{key}"),
                            Some(&c),
                            &i.to_string(),
                        );
                        (key, i, answer)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    // Under this contention a rotation may lose every one of its conditional writes and
    // answer 503 with Retry-After (nothing written); a client retries it, as a browser does.
    let mut rotate = request(&p.a(), "POST", "/rotate", Some(&cookie), "");
    for _ in 0..10 {
        if rotate.status != 503 {
            break;
        }
        assert!(
            rotate.headers.to_ascii_lowercase().contains("retry-after"),
            "{rotate:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        rotate = request(&p.a(), "POST", "/rotate", Some(&cookie), "");
    }
    let successor =
        set_cookie(&rotate).unwrap_or_else(|| panic!("the rotation sends the new id: {rotate:?}"));
    let mut checked = 0;
    for writer in writers {
        for (key, i, answer) in writer.join().unwrap() {
            if answer.status != 200 {
                continue;
            }
            // Every write landed in the successor: those in flight during the rotation
            // and those that started after it with the old cookie (within the rotation
            // grace) alike. None was told the new id or sent an id cookie.
            assert!(answer.id_cookies().is_empty(), "{answer:?}");
            let seen = get(&p.b(), &format!("/get/{key}"), Some(&successor));
            assert_eq!(
                seen.body,
                i.to_string(),
                "{key}, answered 200, is in no session ({seen:?})"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} writes were answered 200");
}

/// #5: a read still carrying the pre-login cookie sends no Set-Cookie at all.
fn a_stale_cookie_does_not_log_the_browser_out(p: &Pair) {
    let put = request(&p.a(), "PUT", "/set/x", None, "1");
    let before = set_cookie(&put).expect("a cookie");
    let login = request(&p.a(), "POST", "/login/alice", Some(&before), "");
    let after = set_cookie(&login).expect("login rotates");
    for addr in [p.a(), p.b()] {
        for path in ["/get/x", "/me"] {
            let late = get(&addr, path, Some(&before));
            assert!(
                !late.headers.to_ascii_lowercase().contains("set-cookie"),
                "a read with the pre-login cookie touched the browser's cookie: {late:?}"
            );
        }
        assert_eq!(get(&addr, "/me", Some(&after)).body, "alice");
    }
}

/// One request with raw header bytes (for a non-UTF-8 `Cookie` header).
fn raw_get(addr: &str, path: &str, cookie_header: &[u8]) -> Answer {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: ");
    common::request_raw(
        addr,
        &[head.as_bytes(), cookie_header, b"\r\n\r\n"].concat(),
    )
}

/// #11: oversized sessions are 413, too-deep values 422 and the session survives; a
/// non-UTF-8 byte in another cookie does not hide the session cookie.
fn bad_values_and_bad_neighbours(p: &Pair) {
    let put = request(&p.a(), "PUT", "/set/x", None, "1");
    let cookie = set_cookie(&put).expect("a cookie");
    let big = format!("\"{}\"", "x".repeat(512 * 1024));
    let answer = request(&p.a(), "PUT", "/set/big", Some(&cookie), &big);
    assert_eq!(answer.status, 413, "{}", answer.status);
    assert!(answer.body.contains("too large"), "{}", answer.body);
    let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let answer = request(&p.a(), "PUT", "/set/deep", Some(&cookie), &deep);
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(
        get(&p.b(), "/get/x", Some(&cookie)).body,
        "1",
        "the session was replaced"
    );
    let header = [b"theme=\xff\xfe; ".as_slice(), cookie.as_bytes()].concat();
    let answer = raw_get(&p.b(), "/get/x", &header);
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "1"),
        "a bad neighbour cookie hid the session"
    );
}

macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $case() { super::$case(&super::Pair::memory()); })*
        }
        mod redis {
            use super::*;
            $(#[test] fn $case() {
                let server = RedisServer::start();
                super::$case(&Pair::shared(&server.url()));
            })*
        }
        mod redis_stale_near_cache {
            use super::*;
            $(#[test] fn $case() {
                let server = RedisServer::start();
                super::$case(&Pair::redis_stale_near_cache(&server.url()));
            })*
        }
        mod memcached {
            use super::*;
            $(#[test] fn $case() {
                let server = MemcachedServer::start();
                super::$case(&Pair::shared(&memcached_url(&[&server])));
            })*
        }
        mod postgres {
            use super::*;
            $(#[test] fn $case() {
                let server = PostgresServer::start();
                super::$case(&Pair::shared(&server.url()));
            })*
        }
        mod sqlite {
            use super::*;
            $(#[test] fn $case() {
                let dir = TempDir::new("sqlite-guarantees");
                let url = format!("sqlite://{}", dir.path.join("s.db").display());
                super::$case(&Pair::shared(&url));
            })*
        }
        mod mariadb {
            use super::*;
            $(#[test] fn $case() {
                let server = MariaDbServer::start();
                super::$case(&Pair::shared(&server.url()));
            })*
        }
        mod mongodb {
            use super::*;
            $(#[test] fn $case() {
                let server = MongoServer::start();
                super::$case(&Pair::shared(&server.url("demo")));
            })*
        }
        mod valkey {
            use super::*;
            $(#[test] fn $case() {
                let server = RedisServer::start_valkey();
                super::$case(&Pair::shared(&server.url()));
            })*
        }
    };
}

on_every_store!(
    logout_during_a_held_lock_stays_a_logout,
    rotation_during_a_held_lock_is_not_undone,
    plain_writes_during_a_held_lock_are_kept,
    writes_racing_a_rotation_are_kept,
    a_stale_cookie_does_not_log_the_browser_out,
    bad_values_and_bad_neighbours,
);

/// A keep-alive HTTP/1.1 connection that keeps its cookie as a browser does: it takes every
/// `Set-Cookie`, and drops the cookie on a removal.
struct Browser {
    conns: Vec<(TcpStream, std::io::BufReader<TcpStream>)>,
    jar: common::Jar,
}

impl Browser {
    fn new(addrs: &[String]) -> Self {
        let conns = addrs
            .iter()
            .map(|addr| {
                let stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                stream.set_nodelay(true).unwrap();
                let reader = std::io::BufReader::new(stream.try_clone().unwrap());
                (stream, reader)
            })
            .collect();
        Self {
            conns,
            jar: common::Jar::default(),
        }
    }

    /// `method path` on connection `conn`; returns (status, body).
    fn send(&mut self, conn: usize, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::BufRead;
        let cookie = self
            .jar
            .header()
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let (stream, reader) = &mut self.conns[conn];
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{cookie}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap();
            } else if name.eq_ignore_ascii_case("set-cookie") {
                self.jar.apply(value);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

/// #6 / I5: one client, two processes, keep-alive, strictly alternating: a write's response
/// has arrived, so the next read on the other process sees it. 2 000 rounds, none stale; and
/// a logout on one process is seen at once on the other.
fn reads_follow_the_clients_own_writes_across_processes(p: &Pair) {
    let mut browser = Browser::new(&[p.a(), p.b()]);
    let mut stale = Vec::new();
    for round in 0..2000 {
        let (writer, reader) = (round % 2, 1 - round % 2);
        let (status, _) = browser.send(writer, "PUT", "/set/cart", &round.to_string());
        assert_eq!(status, 200);
        let (_, seen) = browser.send(reader, "GET", "/get/cart", "");
        if seen != round.to_string() {
            stale.push((round, seen));
        }
    }
    assert!(
        stale.is_empty(),
        "{} of 2000 reads were stale, e.g. {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    let mut logged_in = 0;
    for round in 0..300 {
        let (writer, reader) = (round % 2, 1 - round % 2);
        assert_eq!(browser.send(writer, "POST", "/login/alice", "").0, 200);
        assert_eq!(
            browser.send(reader, "GET", "/me", "").0,
            200,
            "a login was not seen"
        );
        assert_eq!(browser.send(writer, "POST", "/logout", "").0, 200);
        if browser.send(reader, "GET", "/me", "").0 != 401 {
            logged_in += 1;
        }
    }
    assert_eq!(logged_in, 0, "a logout still read as logged in");
}

mod read_your_writes {
    use super::*;

    #[test]
    fn memory() {
        reads_follow_the_clients_own_writes_across_processes(&Pair::memory());
    }

    #[test]
    fn redis_with_the_near_cache() {
        let server = RedisServer::start();
        reads_follow_the_clients_own_writes_across_processes(&Pair::shared(&server.url()));
    }

    #[test]
    fn redis_with_a_stale_near_cache() {
        let server = RedisServer::start();
        reads_follow_the_clients_own_writes_across_processes(&Pair::redis_stale_near_cache(
            &server.url(),
        ));
    }

    #[test]
    fn memcached() {
        let server = MemcachedServer::start();
        reads_follow_the_clients_own_writes_across_processes(&Pair::shared(&memcached_url(&[
            &server,
        ])));
    }
}

/// #10 / I7: 900 MB of new anonymous sessions (15 000 PUTs of 60 KB) leave the memory demo
/// under 512 MiB of RSS: the store is bounded by bytes, not by count.
#[test]
fn a_flood_of_new_sessions_stays_within_the_byte_budget() {
    let demo = Demo::start(&["--store", "memory"]);
    let value = format!("\"{}\"", "x".repeat(60_000));
    let peak = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for i in 0..3750 {
                    let answer = request(&demo.addr, "PUT", "/set/blob", None, &value);
                    assert_eq!(answer.status, 200, "{answer:?}");
                    if i % 250 == 0 {
                        peak.fetch_max(demo.rss(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let peak = peak.into_inner().max(demo.rss());
    assert!(peak < 512 << 20, "the demo grew to {} MiB", peak >> 20);
    eprintln!("peak RSS under a 900 MB flood: {} MiB", peak >> 20);
}

/// #3: rotating or ending the session inside the locked section (a login or a logout under
/// the lock) answers, and leaves no lease behind: the next locked request runs at once.
fn rotation_and_logout_inside_the_lock(p: &Pair) {
    let first = get(&p.a(), "/locked", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "{first:?}");
    let cookie = set_cookie(&first).expect("a cookie");
    let rotated = get(&p.a(), "/locked?then=rotate", Some(&cookie));
    assert_eq!(
        (rotated.status, rotated.body.as_str()),
        (200, "2"),
        "{rotated:?}"
    );
    let new = set_cookie(&rotated).expect("the rotation sends the new id");
    assert_ne!(id_of(&new), id_of(&cookie));
    // The old id follows the rotation, unseen.
    let late = get(&p.b(), "/get/locked", Some(&cookie));
    assert_eq!((late.status, late.body.as_str()), (200, "2"), "{late:?}");
    assert!(late.id_cookies().is_empty(), "{late:?}");
    // The lock moved with the session and was released: no wait for a 10 s lease.
    let next = get(&p.b(), "/locked", Some(&new));
    assert_eq!((next.status, next.body.as_str()), (200, "3"), "{next:?}");
    let logout = get(&p.b(), "/locked?then=logout", Some(&new));
    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.headers.contains("Max-Age=0"), "{logout:?}");
    assert_eq!(
        get(&p.a(), "/get/locked", Some(&new)).status,
        404,
        "the logout under the lock was undone"
    );
}

mod inside_the_lock {
    use super::*;

    #[test]
    fn memory() {
        rotation_and_logout_inside_the_lock(&Pair::memory());
    }

    #[test]
    fn redis() {
        let server = RedisServer::start();
        rotation_and_logout_inside_the_lock(&Pair::shared(&server.url()));
    }

    #[test]
    fn memcached() {
        let server = MemcachedServer::start();
        rotation_and_logout_inside_the_lock(&Pair::shared(&memcached_url(&[&server])));
    }
}

fn redis_info(server: &RedisServer, field: &str) -> u64 {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "info", "stats"])
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .trim()
        .parse()
        .unwrap()
}

fn redis_cli(server: &RedisServer, args: &[&str]) {
    let status = std::process::Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run redis-cli");
    assert!(status.success());
}

/// #7: a session removed from Redis without an invalidation (`SWAPDB`) is not served from
/// the near cache beyond its trust window (1 s), even while other traffic keeps the
/// connection busy.
#[test]
fn redis_a_session_removed_without_an_invalidation_is_not_served() {
    let server = RedisServer::start();
    let demo = Demo::start(&["--store", &server.url()]);
    let put = request(&demo.addr, "PUT", "/set/x", None, "1");
    let cookie = set_cookie(&put).expect("a cookie");
    assert_eq!(get(&demo.addr, "/get/x", Some(&cookie)).body, "1");
    redis_cli(&server, &["swapdb", "0", "1"]);
    let mut served = 0;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let other = set_cookie(&get(&demo.addr, "/", None)).unwrap();
    while std::time::Instant::now() < until {
        get(&demo.addr, "/", Some(&other)); // traffic: the connection stays trusted
        if get(&demo.addr, "/get/x", Some(&cookie)).status == 200 {
            served += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Served for at most the trust window (1 s) after the swap, then read again.
    let last = get(&demo.addr, "/get/x", Some(&cookie));
    assert_eq!(
        last.status, 404,
        "a session gone from Redis was still served 3 s later ({served} times)"
    );
}

/// #8: forged ids (well-formed, never issued) cost Redis nothing that stays: 2 000 of them,
/// reads and locked requests, leave its tracking table as it was.
#[test]
fn redis_forged_ids_leave_no_tracking_memory() {
    let server = RedisServer::start();
    let demo = Demo::start(&["--store", &server.url()]);
    let real = set_cookie(&get(&demo.addr, "/", None)).unwrap();
    assert_eq!(get(&demo.addr, "/", Some(&real)).body, "2");
    let before = redis_info(&server, "tracking_total_keys");
    for i in 0..2000 {
        // Well-formed, never issued by the server.
        let forged = format!("id={}", sessio::id::SessionId::generate().unwrap().as_str());
        let path = if i % 10 == 0 { "/locked" } else { "/get/x" };
        let answer = get(&demo.addr, path, Some(&forged));
        assert!(answer.status < 500, "{answer:?}");
    }
    // The 200 locked requests each start a real session (a forged id is never adopted),
    // which Redis tracks for the near cache; the forged ids themselves leave nothing.
    let after = redis_info(&server, "tracking_total_keys");
    assert!(
        after <= before + 200,
        "forged ids were tracked: {before} -> {after}"
    );
}
