//! The axum demo and the actix-web demo serve one contract: for each request shape (HEAD,
//! OPTIONS, a wrong method, an oversized or malformed body, an unknown route) both answer
//! with the same status, the same `Allow` and the same body.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{request_raw, Answer, Demo};

/// One request; the server may answer (413) before reading a large body and close: what
/// it answered is read all the same.
fn request(addr: &str, method: &str, path: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the demo");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Answer {
        status: status
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status"),
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

/// The parts of an answer that the contract fixes.
fn shape(answer: &Answer) -> (u16, Option<String>, String) {
    let allow = answer.headers.lines().find_map(|h| {
        let (name, value) = h.split_once(':')?;
        name.eq_ignore_ascii_case("allow").then(|| {
            let mut methods: Vec<&str> = value.split(',').map(str::trim).collect();
            methods.sort_unstable();
            methods.join(", ")
        })
    });
    (answer.status, allow, answer.body.clone())
}

#[test]
fn both_demos_answer_every_request_shape_alike() {
    let axum = Demo::start_example("demo", &["--store", "memory"]);
    let actix = Demo::start_example("demo_actix", &["--store", "memory"]);
    let big = format!("\"{}\"", "x".repeat(3 << 20));
    let cases: Vec<(&str, &str, String)> = vec![
        ("HEAD", "/", String::new()),
        ("HEAD", "/get/a", String::new()),
        ("OPTIONS", "/", String::new()),
        ("OPTIONS", "/set/a", String::new()),
        ("OPTIONS", "/me", String::new()),
        ("POST", "/", String::new()),
        ("DELETE", "/set/a", String::new()),
        ("GET", "/rotate", String::new()),
        ("GET", "/no/such/route", String::new()),
        ("PUT", "/set/a", "{not json".to_string()),
        ("PUT", "/set/a", big.clone()),
        ("POST", "/flash", big),
        ("PUT", "/prefs/a", "[1,".to_string()),
    ];
    let mut differ = Vec::new();
    // A flash message that is not UTF-8.
    let raw = |addr: &str| {
        let head = format!(
            "POST /flash HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        request_raw(addr, &[head.as_bytes(), b"\xff\xfe"].concat())
    };
    let (a, b) = (raw(&axum.addr), raw(&actix.addr));
    assert_eq!(a.status, 400, "{a:?}");
    if shape(&a) != shape(&b) {
        differ.push(format!(
            "POST /flash (not UTF-8): axum {:?}, actix {:?}",
            shape(&a),
            shape(&b)
        ));
    }
    for (method, path, body) in &cases {
        let a = request(&axum.addr, method, path, body);
        let b = request(&actix.addr, method, path, body);
        if shape(&a) != shape(&b) {
            differ.push(format!(
                "{method} {path}: axum {:?}, actix {:?}",
                shape(&a),
                shape(&b)
            ));
        }
    }
    // A HEAD answers as the GET would, without a body.
    let head = request_raw(
        &axum.addr,
        format!(
            "HEAD / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            axum.addr
        )
        .as_bytes(),
    );
    assert_eq!(head.status, 200, "{head:?}");
    assert!(
        differ.is_empty(),
        "the demos disagree:\n{}",
        differ.join("\n")
    );
}
