//! A real browser against the demo: headless Chromium (Debian's `chromium`), driven over
//! WebDriver by its `chromedriver`, both started privately on loopback ports. What only a
//! browser can say: which cookies it keeps, which it sends, and for how long.
//!
//! The WebDriver client is the handful of W3C WebDriver commands the test needs (new
//! session, navigate, execute script, get cookies), sent as JSON over the tests' plain
//! HTTP helper.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Demo;
use serde_json::{json, Value};
use sessio_test_servers::RedisServer;

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

/// Runs per store and scenario of the in-flight tests below with every fetch started in
/// the same task; as many again follow with the launches 1 to 3 ms apart.
const IN_FLIGHT_RUNS: usize = 20;
/// Writes in flight during each login or rotation.
const IN_FLIGHT_WRITES: usize = 4;

/// The page's side of one in-flight run: `IN_FLIGHT_WRITES` `fetch()` PUTs and the step
/// (`POST` the login or the rotation), the step at position `arguments[2]` of the launch
/// order, none awaited before the others start; then all awaited. With `arguments[4]` at
/// 0 every fetch starts in the same task; above 0, the launches are that many milliseconds
/// apart (so that a slow step can also answer before the writes). Each answer, in launch
/// order, as `{path, status, arrived, sent, head, retryAfter, body}`: `arrived` is the
/// answer's place in the order the answers' heads arrived, `sent` and `head` the page's
/// clock (ms) when the fetch started and when its head arrived; `status` -1 for a network
/// error.
const IN_FLIGHT_SCRIPT: &str = r#"
const [run, step, stepAt, writes, spread] = arguments;
const done = arguments[arguments.length - 1];
let arrivals = 0;
const launch = (path, init) => {
    const sent = performance.now();
    return fetch(path, init).then(
        r => {
            const head = performance.now(), arrived = arrivals++;
            return r.text().then(body => ({path, status: r.status, arrived, sent, head,
                                           retryAfter: r.headers.get('retry-after'), body}));
        },
        e => ({path, status: -1, arrived: arrivals++, sent, head: performance.now(),
               retryAfter: null, body: String(e)}));
};
const launches = [];
for (let w = 0; w <= writes; w++) {
    if (w === stepAt) {
        launches.push(() => launch(step, {method: 'POST', credentials: 'same-origin'}));
    }
    if (w < writes) {
        launches.push(() => launch('/set/w' + w, {method: 'PUT', body: String(run),
                                                  credentials: 'same-origin'}));
    }
}
const inFlight = spread === 0
    ? launches.map(start => start())
    : launches.map((start, i) => new Promise(
          resolve => setTimeout(() => resolve(start()), i * spread)));
Promise.all(inFlight).then(done);
"#;

/// `GET` each path from the page, one after the other: `[{path, status, body}]`.
const READ_SCRIPT: &str = r#"
const [paths] = arguments;
const done = arguments[arguments.length - 1];
(async () => {
    const out = [];
    for (const path of paths) {
        try {
            const r = await fetch(path, {credentials: 'same-origin'});
            out.push({path, status: r.status, body: await r.text()});
        } catch (e) {
            out.push({path, status: -1, body: String(e)});
        }
    }
    return out;
})().then(done);
"#;

impl Browser {
    fn script_async(&self, script: &str, args: Value) -> Value {
        self.in_session(
            "POST",
            "/execute/async",
            json!({ "script": script, "args": args }),
        )
    }

    fn delete_all_cookies(&self) {
        self.in_session("DELETE", "/cookie", json!({}));
    }
}

/// What one run left broken, and the answers that show it.
struct Broken {
    run: usize,
    what: &'static str,
    detail: String,
}

/// 2 × IN_FLIGHT_RUNS fresh sessions in one real browser, each seeded, then `step` (a
/// login or a rotation) racing IN_FLIGHT_WRITES fetch PUTs; checks what I8 promises the user:
/// logged in after the login, a new id after the rotation, the seed and every write
/// answered 2xx in the final cookie's session, every refused write a 409 with
/// `Retry-After`.
fn browser_keeps_its_session(store: &str, step: &str) {
    let demo = Demo::start(&["--store", store, "--secure"]);
    let site = format!("http://localhost:{}", port_of(&demo));
    let browser = Browser::start();
    browser.go(&format!("{site}/get/nothing"));
    let login = step.starts_with("/login/");
    let mut broken: Vec<Broken> = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for run in 0..2 * IN_FLIGHT_RUNS {
        let mut fail =
            |what: &'static str, detail: String| broken.push(Broken { run, what, detail });
        browser.delete_all_cookies();
        assert!(browser.cookies().is_empty(), "{:?}", browser.cookies());
        let seeded = browser.fetch("/set/seed", "{method: 'PUT', body: '7'}");
        assert_eq!(seeded, 200, "run {run}: the seed");
        let before = browser
            .cookie("id")
            .unwrap_or_else(|| panic!("run {run}: no session cookie after the seed"));
        // The step's place in the launch order cycles. The first IN_FLIGHT_RUNS runs start
        // every fetch at once; the next ones space the launches 1 to 3 ms apart, so that a
        // slow step (a login on Redis) also answers before some writes.
        let stepped_at = run % (IN_FLIGHT_WRITES + 1);
        let spread = if run < IN_FLIGHT_RUNS { 0 } else { 1 + run % 3 };
        let answers = browser.script_async(
            IN_FLIGHT_SCRIPT,
            json!([run, step, stepped_at, IN_FLIGHT_WRITES, spread]),
        );
        let answers = answers.as_array().cloned().unwrap_or_default();
        assert_eq!(
            answers.len(),
            IN_FLIGHT_WRITES + 1,
            "run {run}: {answers:?}"
        );
        // All five were in flight together if the last one started before the first
        // answer's head arrived.
        let clock = |a: &Value, k: &str| a[k].as_f64().unwrap_or(f64::NAN);
        let last_sent = answers.iter().map(|a| clock(a, "sent")).fold(0.0, f64::max);
        let first_head = answers
            .iter()
            .map(|a| clock(a, "head"))
            .fold(f64::INFINITY, f64::min);
        let together = if last_sent < first_head {
            "all in flight together"
        } else {
            "not all in flight together"
        };
        *statuses
            .entry(format!("runs with spread {spread} ms, {together}"))
            .or_default() += 1;
        let mut acknowledged = Vec::new();
        for a in &answers {
            let (path, status) = (
                a["path"].as_str().unwrap_or_default(),
                a["status"].as_i64().unwrap_or(-1),
            );
            let kind = if path == step { step } else { "write" };
            *statuses.entry(format!("{kind} {status}")).or_default() += 1;
            if path == step {
                let arrived = &a["arrived"];
                *statuses
                    .entry(format!("{step} answered #{arrived}"))
                    .or_default() += 1;
                if status != 200 {
                    fail("the step was not answered 200", format!("{a}"));
                }
            } else if (200..300).contains(&status) {
                acknowledged.push(path.trim_start_matches("/set/").to_string());
            } else if status != 409 || a["retryAfter"].is_null() {
                fail("a write refused without 409 + Retry-After", format!("{a}"));
            }
        }
        let after = browser.cookie("id");
        let jar = format!(
            "cookies before {before}, after {:?}; answers {answers:?}",
            browser.cookies()
        );
        let mut paths = vec!["/me".to_string(), "/get/seed".to_string()];
        paths.extend(acknowledged.iter().map(|k| format!("/get/{k}")));
        let reads = browser.script_async(READ_SCRIPT, json!([paths]));
        let reads = reads.as_array().cloned().unwrap_or_default();
        assert_eq!(reads.len(), paths.len(), "run {run}: {reads:?}");
        let me = &reads[0];
        if login {
            if me["status"] != 200 || me["body"] != "alice" {
                fail("logged out after the login", format!("/me: {me}; {jar}"));
            }
        } else {
            match &after {
                None => fail("no cookie after the rotation", jar.clone()),
                Some(c) if c["value"] == before["value"] => {
                    fail("the rotation left the cookie unchanged", jar.clone())
                }
                Some(_) => {}
            }
            if me["status"] != 401 {
                fail("logged in without a login", format!("/me: {me}; {jar}"));
            }
        }
        if reads[1]["status"] != 200 || reads[1]["body"] != "7" {
            fail("the seed is gone", format!("{}; {jar}", reads[1]));
        }
        let written = run.to_string();
        for read in &reads[2..] {
            if read["status"] != 200 || read["body"] != written.as_str() {
                fail("a write answered 2xx is missing", format!("{read}; {jar}"));
            }
        }
    }
    eprintln!(
        "{step} on {store}: {} runs, answers {statuses:#?}",
        2 * IN_FLIGHT_RUNS
    );
    if !broken.is_empty() {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        let runs: std::collections::BTreeSet<usize> = broken.iter().map(|b| b.run).collect();
        for b in &broken {
            *kinds.entry(b.what).or_default() += 1;
        }
        let first: Vec<String> = broken
            .iter()
            .take(3)
            .map(|b| format!("run {}: {}: {}", b.run, b.what, b.detail))
            .collect();
        panic!(
            "{step} on {store}: {} of {} runs broke ({kinds:?}); answers {statuses:?}; \
             first:\n{}",
            runs.len(),
            2 * IN_FLIGHT_RUNS,
            first.join("\n")
        );
    }
}

#[test]
fn a_login_with_four_writes_in_flight_stays_logged_in() {
    browser_keeps_its_session("memory", "/login/alice");
}

#[test]
fn a_login_with_four_writes_in_flight_stays_logged_in_on_redis() {
    let redis = RedisServer::start();
    browser_keeps_its_session(&redis.url(), "/login/alice");
}

#[test]
fn a_rotation_with_four_writes_in_flight_keeps_the_session() {
    browser_keeps_its_session("memory", "/rotate");
}

#[test]
fn a_rotation_with_four_writes_in_flight_keeps_the_session_on_redis() {
    let redis = RedisServer::start();
    browser_keeps_its_session(&redis.url(), "/rotate");
}
