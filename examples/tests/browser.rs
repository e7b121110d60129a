//! A real browser against the demo: headless Chromium (Debian's `chromium`), driven over
//! WebDriver by its `chromedriver`, both started privately on loopback ports. What only a
//! browser can say: which cookies it keeps, which it sends, and for how long.
//!
//! The WebDriver client is the handful of W3C WebDriver commands the test needs (new
//! session, navigate, execute script, get cookies), sent as JSON over the tests' plain
//! HTTP helper.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Demo;
use serde_json::{json, Value};

/// A chromedriver process and one headless Chromium session, ended on drop.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(binary: &str, package: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        let path = format!("{dir}/{binary}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!("{binary} not found: install Debian's {package} (apt-get install -y chromium chromium-driver); the README's test command does it");
}

impl Browser {
    fn start() -> Self {
        let chromium = find("chromium", "chromium");
        let driver_path = find("chromedriver", "chromium-driver");
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut browser = Self {
            driver,
            addr,
            session: String::new(),
        };
        let profile = std::env::temp_dir().join(format!("sessio-chromium-{port}"));
        let created = browser.command(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--no-first-run",
                             format!("--user-data-dir={}", profile.display())],
                },
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; its `value`.
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let body = body.to_string();
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let (status, body) = exchange(&self.addr, raw.as_bytes());
        let value: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("WebDriver answered {status}: {body}"));
        assert_eq!(status, 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn in_session(&self, method: &str, path: &str, body: Value) -> Value {
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.in_session("POST", "/url", json!({ "url": url }));
    }

    /// The page's text.
    fn text(&self) -> String {
        self.script("return document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn script(&self, script: &str) -> Value {
        self.in_session(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// Runs `fetch(url, init)` from the current page and waits for it; returns the status
    /// (0 for an opaque no-cors answer).
    fn fetch(&self, url: &str, init: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\
             fetch({url:?}, {init}).then(r => done(r.status), e => done('error: ' + e));"
        );
        self.in_session(
            "POST",
            "/execute/async",
            json!({ "script": script, "args": [] }),
        )
    }

    /// The cookies the browser holds for the current page.
    fn cookies(&self) -> Vec<Value> {
        self.in_session("GET", "/cookie", json!({}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn cookie(&self, name: &str) -> Option<Value> {
        self.cookies().into_iter().find(|c| c["name"] == name)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let raw = format!(
                "DELETE {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            let _ = std::panic::catch_unwind(|| exchange(&self.addr, raw.as_bytes()));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One request to chromedriver and its answer (status, body). chromedriver keeps the
/// connection open, so the body is read to its `Content-Length`.
fn exchange(addr: &str, raw: &[u8]) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut reader = BufReader::new(stream);
    let (mut status, mut length) = (0, 0);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a WebDriver answer");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
            status = code[..3].parse().unwrap_or(0);
        } else if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .expect("the WebDriver answer's body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn port_of(demo: &Demo) -> &str {
    demo.addr.rsplit(':').next().unwrap()
}

#[test]
fn a_secure_host_prefixed_cookie_sticks_on_localhost_and_logout_removes_it() {
    let demo = Demo::start(&["--secure", "--cookie-name", "__Host-id"]);
    let site = format!("http://localhost:{}", port_of(&demo));
    let browser = Browser::start();
    browser.go(&format!("{site}/"));
    assert_eq!(browser.text(), "1");
    let cookie = browser
        .cookie("__Host-id")
        .expect("Chromium kept the Secure __Host- cookie on http://localhost");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");
    browser.go(&format!("{site}/"));
    assert_eq!(browser.text(), "2", "the browser sent the cookie back");

    assert_eq!(browser.fetch("/logout", "{method: 'POST'}"), 200);
    assert!(
        browser.cookie("__Host-id").is_none(),
        "the logout left the cookie in the browser's jar: {:?}",
        browser.cookies()
    );
    browser.go(&format!("{site}/"));
    assert_eq!(
        browser.text(),
        "1",
        "after the logout the count starts again"
    );
    assert_eq!(browser.fetch("/clear", "{method: 'POST'}"), 200);
    assert!(
        browser.cookie("__Host-id").is_none(),
        "/clear left the cookie in the browser's jar: {:?}",
        browser.cookies()
    );
}

#[test]
fn a_lax_cookie_is_not_sent_on_a_cross_site_post() {
    let demo = Demo::start(&[]);
    let other = Demo::start(&[]);
    let site = format!("http://localhost:{}", port_of(&demo));
    let browser = Browser::start();
    browser.go(&format!("{site}/"));
    let cookie = browser.cookie("id").expect("a session cookie");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");

    // From a page of another site (127.0.0.1 is not localhost's site), a POST to the demo.
    browser.go(&format!("http://{}/get/nothing", other.addr));
    let cross = browser.fetch(
        &format!("{site}/flash"),
        "{method: 'POST', mode: 'no-cors', credentials: 'include', body: 'cross-site'}",
    );
    assert_eq!(cross, 0, "an opaque answer: {cross}");
    // From the demo's own site, the same POST carries the cookie.
    browser.go(&format!("{site}/get/nothing"));
    let same = browser.fetch(
        &format!("{site}/flash"),
        "{method: 'POST', credentials: 'include', body: 'same-site'}",
    );
    assert_eq!(same, 200);
    browser.go(&format!("{site}/flash"));
    assert_eq!(
        browser.text(),
        r#"["same-site"]"#,
        "the cross-site POST reached the session (SameSite=Lax not honoured?)"
    );
}

#[test]
fn remember_me_off_is_a_browser_session_cookie() {
    let demo = Demo::start(&[]);
    let site = format!("http://localhost:{}", port_of(&demo));
    let browser = Browser::start();
    browser.go(&format!("{site}/get/nothing"));
    assert_eq!(
        browser.fetch("/login/ada?remember=0", "{method: 'POST'}"),
        200
    );
    let session = browser.cookie("id").expect("the login's cookie");
    assert!(
        session.get("expiry").is_none(),
        "remember=0 gave a cookie with an expiry: {session}"
    );
    browser.go(&format!("{site}/me"));
    assert_eq!(browser.text(), "ada");
    assert_eq!(
        browser.fetch("/login/ada?remember=1", "{method: 'POST'}"),
        200
    );
    let persistent = browser.cookie("id").expect("the login's cookie");
    let expiry = persistent["expiry"]
        .as_u64()
        .unwrap_or_else(|| panic!("remember=1 gave no expiry: {persistent}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry > now + 86_400, "{persistent}");
}
