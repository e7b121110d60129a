//! The demo binary itself, as a user runs it: started as a process, driven over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `target/<profile>/examples/demo`, which `cargo test` builds with the tests.
fn demo_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let demo = profile_dir.join("examples").join("demo");
    assert!(
        demo.exists(),
        "{} is missing: run the tests with `cargo test` so the examples are built",
        demo.display()
    );
    demo
}

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns (status line, headers, body).
fn request(addr: &str, line: &str, cookie: Option<&str>) -> (String, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the demo");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{line} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

#[test]
fn the_demo_binary_counts_over_tcp() {
    let mut child = Command::new(demo_path())
        .args(["--addr", "127.0.0.1:0", "--store", "memory"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().unwrap();
    let _demo = Demo(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("the demo prints its address")
        .to_string();

    let (status, headers, body) = request(&addr, "GET /", None);
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "1");
    let cookie = headers
        .lines()
        .find_map(|h| h.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("the first visit sets the cookie")
        .to_string();
    assert!(cookie.starts_with("id="), "{cookie}");
    assert_eq!(request(&addr, "GET /", Some(&cookie)).2, "2");
    let (status, _, _) = request(&addr, "PUT /set/k", Some(&cookie));
    assert!(
        status.contains("400"),
        "an empty body is invalid JSON: {status}"
    );
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
