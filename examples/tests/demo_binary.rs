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
