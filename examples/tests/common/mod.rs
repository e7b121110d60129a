//! Helpers shared by the tests that run the demo binary as a process.
#![allow(dead_code)]

pub mod failover;
pub mod python;
pub mod two_processes;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `target/<profile>/examples/demo`, which `cargo test` builds with the tests.
pub fn demo_path() -> PathBuf {
    example_path("demo")
}

/// `target/<profile>/examples/<name>` (`demo`, or `demo_actix`, the same contract on
/// actix-web), which `cargo test` builds with the tests.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let demo = profile_dir.join("examples").join(name);
    assert!(
        demo.exists(),
        "{} is missing: run the tests with `cargo test` so the examples are built",
        demo.display()
    );
    demo
}

/// A running demo process, killed on drop.
pub struct Demo {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Demo {
    /// Starts the demo on a free port with these extra arguments.
    pub fn start(args: &[&str]) -> Self {
        Self::start_example("demo", args)
    }

    /// Starts the example binary `name` (`demo` or `demo_actix`) on a free port with these
    /// extra arguments.
    pub fn start_example(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example_path(name))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the demo's first line");
        let Some(addr) = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|a| !a.is_empty())
        else {
            let _ = child.kill();
            panic!("the demo did not start (args {args:?}); it printed {line:?}");
        };
        Self {
            addr: addr.to_string(),
            child,
        }
    }

    /// The process's resident memory now, in bytes (Linux).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the demo's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status");
        kib * 1024
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the demo").is_none()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo processes serving one store: two sharing it, or one on the memory store
/// (whose sessions live in the process).
pub struct Pair {
    pub a: Demo,
    pub b: Option<Demo>,
}

impl Pair {
    /// One demo on the memory store.
    pub fn memory() -> Self {
        Self {
            a: Demo::start(&["--store", "memory"]),
            b: None,
        }
    }

    /// Two demos on the store at `url`.
    pub fn shared(url: &str) -> Self {
        Self::shared_with(url, &[])
    }

    /// Two demos on the store at `url`, with more flags.
    pub fn shared_with(url: &str, flags: &[&str]) -> Self {
        let args: Vec<&str> = ["--store", url].iter().chain(flags).copied().collect();
        Self {
            a: Demo::start(&args),
            b: Some(Demo::start(&args)),
        }
    }

    /// Two demos on the Redis at `url` whose near caches serve an entry for 2 ms after Redis
    /// last confirmed it: most reads find their entry past that window and read it again.
    pub fn redis_stale_near_cache(url: &str) -> Self {
        Self::shared_with(url, &["--redis-near-cache-trust-ms", "2"])
    }

    /// The first process's address.
    pub fn a(&self) -> String {
        self.a.addr.clone()
    }

    /// The second process's address (the first's on memory).
    pub fn b(&self) -> String {
        self.b.as_ref().unwrap_or(&self.a).addr.clone()
    }

    /// Request `i`'s address: the processes in turn.
    pub fn addr(&self, i: usize) -> String {
        if i.is_multiple_of(2) {
            self.a()
        } else {
            self.b()
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header block.
    pub headers: String,
    /// Body.
    pub body: String,
}

impl Answer {
    /// `name=value` of the first Set-Cookie header that carries a session id (not a
    /// write count), if any.
    pub fn cookie(&self) -> Option<String> {
        self.id_cookies().into_iter().next()
    }
}

impl Answer {
    /// The `name=value` pairs of the `Set-Cookie` headers that carry a session id: the
    /// write-count cookies (`<name>.w`) that a caching store's sessions add are left out.
    pub fn id_cookies(&self) -> Vec<String> {
        self.set_cookies()
            .iter()
            .map(|c| c.split(';').next().unwrap_or_default().to_string())
            .filter(|pair| !pair.split('=').next().unwrap_or_default().ends_with(".w"))
            .collect()
    }

    /// Every `Set-Cookie` header value, in order.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .lines()
            .filter_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie")
                    .then(|| value.trim().to_string())
            })
            .collect()
    }
}

/// A browser's cookie jar for one site: takes `Set-Cookie` headers (a `Max-Age=0` one
/// removes its cookie) and sends what it holds.
#[derive(Debug, Default, Clone)]
pub struct Jar(pub std::collections::BTreeMap<String, String>);

impl Jar {
    /// Applies the answer's `Set-Cookie` headers.
    pub fn take(&mut self, answer: &Answer) {
        for set in answer.set_cookies() {
            self.apply(&set);
        }
    }

    /// Applies one `Set-Cookie` header value.
    pub fn apply(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        if set_cookie.contains("Max-Age=0") {
            self.0.remove(name);
        } else {
            self.0.insert(name.to_string(), value.to_string());
        }
    }

    /// A jar holding the cookies of a `Cookie` header value (`a=1; b=2`).
    pub fn from_header(header: &str) -> Self {
        let mut jar = Self::default();
        for pair in header.split(';') {
            jar.apply(pair.trim());
        }
        jar
    }

    /// The `Cookie` header value, if the jar holds anything.
    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// One request with the jar's cookies; the answer's cookies go into the jar.
    pub fn request(&mut self, addr: &str, method: &str, path: &str, body: &str) -> Answer {
        let answer = request(addr, method, path, self.header().as_deref(), body);
        self.take(&answer);
        answer
    }

    /// The cookie names held, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// One HTTP/1.1 request on a fresh connection (blocking), with a read timeout.
pub fn request(addr: &str, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Answer {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    request_raw(addr, &[head.as_bytes(), body.as_bytes()].concat())
}

/// Sends `raw` (a whole request, any bytes) on a fresh connection and reads the answer.
pub fn request_raw(addr: &str, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the demo");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    Answer {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

/// `GET path`.
pub fn get(addr: &str, path: &str, cookie: Option<&str>) -> Answer {
    request(addr, "GET", path, cookie, "")
}
