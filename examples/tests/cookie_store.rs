//! The demo on the encrypted cookie store (`--store cookie`), over real TCP on 127.0.0.1:
//! the counter across two processes, 30 kinds of tampered or foreign cookies, key
//! rotation across restarts, a 12 KiB session over chunks, expiry from inside the seal,
//! and every route of the demo (`/locked` and the devices index answer 501).

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{request, Demo, Jar};

const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI";
const K3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM";

fn cookie_demo(keys: &[&str], extra: &[&str]) -> Demo {
    let mut args = vec!["--store", "cookie"];
    for key in keys {
        args.extend(["--cookie-key", key]);
    }
    args.extend(extra);
    Demo::start(&args)
}

fn count(demo: &Demo, jar: &mut Jar) -> String {
    let answer = jar.request(&demo.addr, "GET", "/", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

#[test]
fn the_counter_counts_across_two_processes_sharing_a_key() {
    let one = cookie_demo(&[K1], &[]);
    let two = cookie_demo(&[K1], &[]);
    let mut jar = Jar::default();
    for (i, demo) in [&one, &two, &one, &two].into_iter().enumerate() {
        assert_eq!(count(demo, &mut jar), (i + 1).to_string());
    }
    assert_eq!(jar.names(), ["id"]);
    let value = &jar.0["id"];
    assert!(!value.contains("foo"), "the data is sealed: {value}");
}

#[test]
fn thirty_kinds_of_tampered_or_foreign_cookies_get_a_fresh_session_never_a_5xx() {
    let demo = cookie_demo(&[K1], &["--cookie-max-chunks", "8"]);
    let mut jar = Jar::default();
    count(&demo, &mut jar);
    count(&demo, &mut jar);
    let good = jar.0["id"].clone();
    let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
    let reencoded = |raw: &[u8]| URL_SAFE_NO_PAD.encode(raw);
    let flip = |at: usize| {
        let mut raw = raw.clone();
        raw[at] ^= 0x01;
        reencoded(&raw)
    };
    // Sealed by others: another key, the prefs cookie, a server-side demo's id.
    let other_key = {
        let other = cookie_demo(&[K3], &[]);
        let mut jar = Jar::default();
        count(&other, &mut jar);
        jar.0["id"].clone()
    };
    let prefs_value = {
        let mut jar = Jar::default();
        assert_eq!(
            jar.request(&demo.addr, "PUT", "/prefs/theme", "\"dark\"")
                .status,
            200
        );
        jar.0["prefs"].clone()
    };
    let server_id = {
        let memory = Demo::start(&["--store", "memory"]);
        let mut jar = Jar::default();
        count(&memory, &mut jar);
        jar.0["id"].clone()
    };
    // A large session's chunks, to misuse.
    let mut big = Jar::default();
    let body = format!("\"{}\"", "z".repeat(6000));
    assert_eq!(
        big.request(&demo.addr, "PUT", "/set/big", &body).status,
        200
    );
    assert!(big.0.contains_key("id.1"), "{:?}", big.names());
    let chunk0 = big.0["id.0"].clone();
    let chunk1 = big.0["id.1"].clone();

    let cases: Vec<(&str, String)> = vec![
        ("flip in the version byte", flip(0)),
        ("flip in the nonce", flip(5)),
        ("flip in the ciphertext", flip(30)),
        ("flip in the tag", flip(raw.len() - 1)),
        ("wrong version", {
            let mut r = raw.clone();
            r[0] = 1;
            reencoded(&r)
        }),
        ("truncated by one", good[..good.len() - 1].to_string()),
        ("truncated by half", good[..good.len() / 2].to_string()),
        ("nonce only", reencoded(&raw[..25])),
        ("one byte appended", format!("{good}A")),
        ("doubled", format!("{good}{good}")),
        ("empty", String::new()),
        ("garbage", "garbage".into()),
        ("not base64", "!!!!****".into()),
        ("standard base64 alphabet", {
            // A value with neither `-` nor `_` (one in fifty) gets a `/` in front.
            let standard = good.replace('-', "+").replace('_', "/");
            if standard == good {
                format!("/{}", &good[1..])
            } else {
                standard
            }
        }),
        ("padded", format!("{good}==")),
        ("quoted on one side only", format!("\"{good}")),
        ("with a write count", format!("{good}.7")),
        (
            "percent-encoded",
            format!("%{:02X}{}", good.as_bytes()[0], &good[1..]),
        ),
        ("another key", other_key),
        ("the prefs cookie's value", prefs_value),
        ("a server-side store's id", server_id),
        ("a uuid4 hex", "0123456789abcdef0123456789abcdef".into()),
        ("a Fernet-looking token", "gAAAAABlZWxsbw==".into()),
        ("chunks-0", "chunks-0".into()),
        ("chunks-99", "chunks-99".into()),
        ("chunks-abc", "chunks-abc".into()),
        ("chunks-2 without chunks", "chunks-2".into()),
        ("8 KiB of letters", "A".repeat(8192)),
        (
            "chunks swapped",
            "chunks-2; id.0=".to_string() + &chunk1 + "; id.1=" + &chunk0,
        ),
        (
            "chunks-2 with the second missing",
            "chunks-2; id.0=".to_string() + &chunk0,
        ),
    ];
    assert_eq!(cases.len(), 30);
    for (what, value) in cases {
        let header = format!("id={value}");
        let answer = request(&demo.addr, "GET", "/", Some(&header), "");
        assert_eq!(answer.status, 200, "{what}: {answer:?}");
        assert_eq!(answer.body, "1", "{what}: a fresh session");
        // A read of a bad cookie never removes it; this one wrote, so it replaces it.
        assert!(
            answer.cookie().is_some_and(|c| c.starts_with("id=")),
            "{what}"
        );
    }
    // Non-UTF-8 bytes in the cookie header too.
    let raw_request = [
        format!("GET / HTTP/1.1\r\nHost: {}\r\nCookie: id=", demo.addr).as_bytes(),
        b"\xff\xfe\xfd",
        b"\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    let answer = common::request_raw(&demo.addr, &raw_request);
    assert_eq!((answer.status, answer.body.as_str()), (200, "1"));
    // And the good cookie still counts.
    assert_eq!(count(&demo, &mut jar), "3");
}

#[test]
fn keys_rotate_across_restarts() {
    let mut jar = Jar::default();
    {
        let k1 = cookie_demo(&[K1], &[]);
        assert_eq!(count(&k1, &mut jar), "1");
    }
    let sealed_with_k1 = jar.clone();
    {
        let rotating = cookie_demo(&[K2, K1], &[]);
        let before = jar.0["id"].clone();
        assert_eq!(count(&rotating, &mut jar), "2", "the old key still opens");
        assert_ne!(jar.0["id"], before, "the response sealed it again");
    }
    let k2 = cookie_demo(&[K2], &[]);
    assert_eq!(count(&k2, &mut jar), "3", "sealed again with K2");
    let mut stale = sealed_with_k1;
    assert_eq!(count(&k2, &mut stale), "1", "K1 is gone: a fresh session");
}

#[test]
fn a_12_kib_session_spreads_over_chunks_reads_back_intact_and_shrinks() {
    let demo = cookie_demo(&[K1], &["--cookie-max-chunks", "8"]);
    let mut jar = Jar::default();
    let big: String = (0..12 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let answer = jar.request(&demo.addr, "PUT", "/set/big", &format!("\"{big}\""));
    assert_eq!(answer.status, 200, "{answer:?}");
    let chunks = jar.names().len() - 1;
    assert!(chunks >= 4, "{:?}", jar.names());
    assert_eq!(jar.0["id"], format!("chunks-{chunks}"));
    for set in answer.set_cookies() {
        assert!(set.len() <= 4096, "a cookie of {} bytes", set.len());
    }
    let answer = jar.request(&demo.addr, "GET", "/get/big", "");
    assert_eq!(answer.body, format!("\"{big}\""));
    assert_eq!(count(&demo, &mut jar), "1");

    let answer = jar.request(&demo.addr, "PUT", "/set/big", "\"small\"");
    assert_eq!(answer.status, 200);
    let expired: Vec<String> = answer
        .set_cookies()
        .into_iter()
        .filter(|c| c.contains("Max-Age=0"))
        .collect();
    assert_eq!(expired.len(), chunks, "every chunk is expired: {expired:?}");
    for removal in &expired {
        assert!(
            removal.contains("Path=/") && removal.contains("HttpOnly"),
            "{removal}"
        );
    }
    assert_eq!(jar.names(), ["id"]);
    assert_eq!(count(&demo, &mut jar), "2");
    let answer = jar.request(&demo.addr, "GET", "/get/big", "");
    assert_eq!(answer.body, "\"small\"");

    // Past the maximum: 413, and the browser keeps what it had.
    let huge = format!("\"{}\"", "q".repeat(40 * 1024));
    let answer = jar.request(&demo.addr, "PUT", "/set/huge", &huge);
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(count(&demo, &mut jar), "3");
}

#[test]
fn idle_and_absolute_expiry_are_enforced_from_inside_the_payload() {
    let demo = cookie_demo(&[K1], &["--ttl", "2", "--absolute-ttl", "5"]);
    // Idle: a cookie replayed after its idle timeout, with a forged long Max-Age (the
    // browser's attribute; the server never sees it), is refused.
    let mut jar = Jar::default();
    assert_eq!(count(&demo, &mut jar), "1");
    let set = request(&demo.addr, "GET", "/", jar.header().as_deref(), "");
    assert!(set.set_cookies()[0].contains("Max-Age=2"), "{set:?}");
    jar.take(&set);
    let replay = jar.clone();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count(&demo, &mut replay.clone()), "1", "idle timeout");

    // Absolute: however active, the session ends 5 s after it began.
    let mut jar = Jar::default();
    let mut last = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(6500) {
        let n: u64 = count(&demo, &mut jar).parse().unwrap();
        if n < last {
            assert!(
                started.elapsed() >= Duration::from_secs(4),
                "ended early, after {:?}",
                started.elapsed()
            );
            return;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the session outlived its absolute lifetime (counted to {last})");
}

#[test]
fn every_route_works_except_the_lock_and_the_index() {
    let demo = cookie_demo(&[K1], &[]);
    let mut jar = Jar::default();
    let addr = demo.addr.as_str();
    let locked = jar.request(addr, "GET", "/locked", "");
    assert_eq!(locked.status, 501);
    assert!(
        locked.body.contains("cannot lock"),
        "the 501 says what is missing: {locked:?}"
    );
    assert_eq!(
        jar.request(addr, "PUT", "/set/a", "{\"x\":[1,2]}").status,
        200
    );
    assert_eq!(jar.request(addr, "GET", "/get/a", "").body, "{\"x\":[1,2]}");
    assert_eq!(jar.request(addr, "GET", "/me", "").status, 401);
    assert_eq!(jar.request(addr, "POST", "/login/ada", "").status, 200);
    assert_eq!(jar.request(addr, "GET", "/me", "").body.trim(), "ada");
    assert_eq!(jar.request(addr, "GET", "/sessions", "").status, 501);
    assert_eq!(
        jar.request(addr, "POST", "/sessions/revoke-others", "")
            .status,
        501
    );
    assert_eq!(jar.request(addr, "POST", "/flash", "hello").status, 200);
    assert_eq!(jar.request(addr, "GET", "/flash", "").body, "[\"hello\"]");
    assert_eq!(jar.request(addr, "GET", "/flash", "").body, "[]");
    let token = jar.request(addr, "GET", "/csrf", "").body;
    let header = jar.header().unwrap();
    let raw = format!(
        "POST /transfer HTTP/1.1\r\nHost: {addr}\r\nCookie: {header}\r\nX-CSRF-Token: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(common::request_raw(addr, raw.as_bytes()).status, 200);
    assert_eq!(jar.request(addr, "POST", "/transfer", "").status, 403);
    let before = jar.0["id"].clone();
    assert_eq!(jar.request(addr, "POST", "/rotate", "").status, 200);
    assert_ne!(jar.0["id"], before);
    assert_eq!(jar.request(addr, "GET", "/me", "").body.trim(), "ada");
    assert_eq!(
        jar.request(addr, "PUT", "/prefs/theme", "\"dark\"").status,
        200
    );
    let kept = jar.clone();
    assert_eq!(jar.request(addr, "POST", "/logout", "").status, 200);
    assert_eq!(jar.request(addr, "GET", "/me", "").status, 401);
    assert_eq!(
        jar.request(addr, "GET", "/prefs/theme", "").body,
        "\"dark\""
    );
    assert_eq!(jar.request(addr, "PUT", "/set/b", "1").status, 200);
    assert_eq!(jar.request(addr, "POST", "/clear", "").status, 200);
    assert_eq!(
        jar.names(),
        ["prefs"],
        "the cleared session's cookie is removed"
    );
    // What a cookie store cannot do: the copy kept before the logout still opens.
    let mut copy = kept;
    assert_eq!(copy.request(addr, "GET", "/me", "").body.trim(), "ada");
    // A key that is not 32 bytes of base64url is refused at start, with a message.
    let out = std::process::Command::new(common::demo_path())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            "cookie",
            "--cookie-key",
            "short",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
}

/// RFC 6265 allows a cookie value in double quotes (Python's `http.cookies` adds them
/// around a Fernet token's `=` padding): a quoted session, whole or in chunks, opens.
#[test]
fn a_quoted_cookie_value_opens() {
    let demo = cookie_demo(&[K1], &[]);
    let mut jar = Jar::default();
    count(&demo, &mut jar);
    assert_eq!(count(&demo, &mut jar), "2");
    let mut quoted = Jar(jar
        .0
        .iter()
        .map(|(k, v)| (k.clone(), format!("\"{v}\"")))
        .collect());
    assert_eq!(
        count(&demo, &mut quoted),
        "3",
        "the quoted cookie did not open"
    );
    // The same over chunks.
    let big = format!("\"{}\"", "y".repeat(6000));
    assert_eq!(jar.request(&demo.addr, "PUT", "/set/big", &big).status, 200);
    assert!(jar.names().len() > 2, "chunked: {:?}", jar.names());
    let mut quoted = Jar(jar
        .0
        .iter()
        .map(|(k, v)| (k.clone(), format!("\"{v}\"")))
        .collect());
    let back = quoted.request(&demo.addr, "GET", "/get/big", "");
    assert_eq!(back.body, big, "the quoted chunks did not open");
}

/// A login's `duration` is bounded: a cookie no browser would keep that long is refused
/// with a message, never sent as a 136-year `Max-Age`.
#[test]
fn an_endless_login_duration_is_refused() {
    let demo = cookie_demo(&[K1], &[]);
    let mut jar = Jar::default();
    let answer = jar.request(
        &demo.addr,
        "POST",
        "/login/ada?duration=18446744073709551615",
        "",
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("at most"), "{answer:?}");
    assert!(answer.set_cookies().is_empty(), "{answer:?}");
    let answer = jar.request(&demo.addr, "POST", "/login/ada?duration=34560000", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let set = answer.set_cookies().join("\n");
    assert!(set.contains("Max-Age=34560000"), "{set}");
}

#[test]
fn clients_cannot_write_sessios_own_keys() {
    let demo = cookie_demo(&[K1], &[]);
    let addr = demo.addr.as_str();
    let mut jar = Jar::default();
    for path in ["/set/_user", "/prefs/_user", "/set/_csrf"] {
        assert_eq!(
            jar.request(addr, "PUT", path, "\"admin\"").status,
            403,
            "{path}"
        );
    }
    assert_eq!(jar.request(addr, "GET", "/get/_user", "").status, 403);
    assert_eq!(jar.request(addr, "GET", "/me", "").status, 401);
}

#[test]
fn in_the_fernet_mode_a_prefs_token_does_not_open_as_the_session() {
    let fernet = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let demo = Demo::start(&[
        "--store",
        "cookie",
        "--compat",
        "sanic-cookies",
        "--fernet-key",
        fernet,
        "--cookie-key",
        K2,
    ]);
    let addr = demo.addr.as_str();
    let mut jar = Jar::default();
    assert_eq!(jar.request(addr, "PUT", "/prefs/foo", "41").status, 200);
    let prefs = jar.0["prefs"].clone();
    assert!(
        !prefs.starts_with("gAAAAA"),
        "the prefs are sealed natively: {prefs}"
    );
    let header = format!("session={prefs}");
    assert_eq!(request(addr, "GET", "/", Some(&header), "").body, "1");
    // And the session's token does not open as the prefs.
    let session = jar.request(addr, "GET", "/", "");
    assert_eq!(session.body, "1");
    let token = jar.0["session"].clone();
    let header = format!("prefs={token}");
    assert_eq!(
        request(addr, "GET", "/prefs/foo", Some(&header), "").status,
        404
    );
    // A session too large for one cookie: 413 (sanic-cookies reads no chunks).
    let big = format!("\"{}\"", "b".repeat(5000));
    assert_eq!(jar.request(addr, "PUT", "/set/big", &big).status, 413);
}
