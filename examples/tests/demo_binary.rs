//! The demo binary itself, as a user runs it: started as a process, driven over TCP.

mod common;

use std::process::Command;

use common::{demo_path, get, request, Demo};

#[test]
fn the_demo_binary_counts_over_tcp() {
    let demo = Demo::start(&["--store", "memory"]);
    let first = get(&demo.addr, "/", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"));
    let cookie = first.cookie().expect("the first visit sets the cookie");
    assert!(cookie.starts_with("id="), "{cookie}");
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "2");
    let invalid = request(&demo.addr, "PUT", "/set/k", Some(&cookie), "");
    assert_eq!(invalid.status, 400, "an empty body is invalid JSON");
}

#[test]
fn an_unknown_store_exits_with_code_2_and_says_why() {
    let output = Command::new(demo_path())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            "cassandra://127.0.0.1:9042",
        ])
        .output()
        .expect("run the demo");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown store") && stderr.contains("memory"),
        "{stderr}"
    );
}

/// The main session may not take the preferences session's cookie: the two would replace
/// each other's cookie, and the main session would be lost at the first preference.
#[test]
fn the_preferences_cookie_name_is_refused_for_the_main_session() {
    let output = Command::new(demo_path())
        .args(["--addr", "127.0.0.1:0", "--cookie-name", "prefs"])
        .output()
        .expect("run the demo");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("preferences session") && stderr.contains("another name"),
        "{stderr}"
    );
}

/// A Redis URL with a database index the server does not have: the start-up error names
/// that, and nothing is said about RESP3 or client tracking (which were not the cause).
#[test]
fn a_bad_redis_database_index_is_named_as_the_cause() {
    let redis = sessio_test_servers::RedisServer::start();
    let output = Command::new(demo_path())
        .args(["--addr", "127.0.0.1:0", "--store"])
        .arg(format!("{}/99", redis.url().trim_end_matches('/')))
        .output()
        .expect("run the demo");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DB index"), "{stderr}");
    assert!(
        !stderr.contains("RESP3") && !stderr.contains("TRACKING"),
        "a misleading first message: {stderr}"
    );
}

/// A `Secure` cookie issued on a plain-HTTP request to a host that is not this machine:
/// the browser will drop it, so the server says so (once).
#[test]
fn a_secure_cookie_over_plain_http_to_a_remote_host_is_warned_about_once() {
    let (child, addr) = start_logging(&["--store", "memory", "--secure"]);
    let raw = |host: &str| {
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    // localhost: browsers accept Secure cookies over http there; no warning.
    assert_eq!(
        common::request_raw(&addr, &raw("localhost:3000")).status,
        200
    );
    for _ in 0..3 {
        assert_eq!(common::request_raw(&addr, &raw("shop.example")).status, 200);
    }
    // Behind a TLS proxy that says so: no warning either (checked by the count below).
    let proxied = "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    assert_eq!(common::request_raw(&addr, proxied.as_bytes()).status, 200);
    let stderr = stop_logging(child);
    assert_eq!(
        stderr.matches("Secure").count(),
        1,
        "one warning naming Secure: {stderr}"
    );
    assert!(stderr.contains("shop.example"), "{stderr}");
}

/// A session error that a handler returns with `?` (here: the counter finds text where it
/// expects a number) is answered with its status and logged once, with its message.
#[test]
fn a_handler_session_error_is_logged_once_with_its_message() {
    let (child, addr) = start_logging(&["--store", "memory"]);
    let set = request(&addr, "PUT", "/set/foo", None, r#""text""#);
    let cookie = set.cookie().unwrap();
    let answer = get(&addr, "/", Some(&cookie));
    assert_eq!(answer.status, 500, "{answer:?}");
    let stderr = stop_logging(child);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("foo")).collect();
    assert_eq!(lines.len(), 1, "logged once, naming the key: {stderr}");
    assert!(lines[0].contains("WARN"), "{stderr}");
}

/// Starts the demo with its log (stderr) kept: the process and its address.
fn start_logging(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(demo_path())
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the demo");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    (child, addr)
}

/// Stops a demo from [`start_logging`] and returns what it logged.
fn stop_logging(mut child: std::process::Child) -> String {
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}
