//! Interop with Python: sanic-cookies 0.4.3's own `InCookieEncrypted` interface and the
//! Rust demo in `--store cookie --compat sanic-cookies` mode continue one cookie in turn,
//! with one Fernet key and no server state.
//!
//! sanic-cookies 0.4.3 as a package needs a Sanic that no longer installs on current
//! Python, but its `interfaces/incookie.py` imports only `cryptography` and `ujson`. The
//! test installs the package from PyPI without its dependencies (plus those two) into a
//! virtualenv under the target directory, and loads that one file by path: the code that
//! seals and opens the cookie is sanic-cookies' own.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::get;
use sessio_test_servers::{free_port, wait_for_port, Process};

/// A Fernet key (32 bytes, url-safe base64), shared by both sides.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The seed's counter over `InCookieEncrypted.fetch`/`store`, as sanic-cookies' session
/// object calls them, on Python's own HTTP server. `GET /raw` answers the JSON the
/// cookie holds, as decrypted by the interface.
const APP: &str = r#"
import asyncio, importlib.util, os, sys, types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The package's __init__ imports Sanic: find the package without running it.
package = importlib.util.find_spec("sanic_cookies")
path = os.path.join(package.submodule_search_locations[0], "interfaces", "incookie.py")
spec = importlib.util.spec_from_file_location("incookie", path)
incookie = importlib.util.module_from_spec(spec)
spec.loader.exec_module(incookie)

port, key = int(sys.argv[1]), sys.argv[2].encode()
EXPIRY = 30 * 24 * 60 * 60  # sanic-cookies' default expiry
interface = incookie.InCookieEncrypted(key)

def cookie(headers, name):
    for part in (headers.get("Cookie") or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        sid = cookie(self.headers, "session")
        val = asyncio.run(interface.fetch(sid, EXPIRY, None, "session"))
        if self.path == "/raw":
            body = interface.fernet.decrypt(sid.encode(), ttl=EXPIRY) if sid else b""
            self.answer(body, None)
            return
        if not val.get("foo"):
            val["foo"] = 0
        val["foo"] += 1
        session = types.SimpleNamespace(sid=sid, _prev_sid=[])
        request = {"session": session}
        asyncio.run(interface.store(sid, EXPIRY, val, request, "session", "session"))
        self.answer(str(val["foo"]).encode(), session.sid)

    def answer(self, body, sid):
        self.send_response(200)
        if sid is not None:
            self.send_header("Set-Cookie", f"session={sid}; Path=/; HttpOnly; Max-Age={EXPIRY}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

fn venv() -> PathBuf {
    common::python::venv(
        "sanic-cookies-venv",
        &[
            &["--no-deps", "sanic-cookies==0.4.3"],
            &["cryptography", "ujson"],
        ],
        "import cryptography.fernet, ujson, importlib.util; assert importlib.util.find_spec('sanic_cookies')",
    )
}

#[test]
fn one_cookie_counts_across_sanic_cookies_and_rust() {
    let python = venv();
    let dir = sessio_test_servers::TempDir::new("sanic-cookies-app");
    let app = dir.path.join("app.py");
    std::fs::write(&app, APP).unwrap();
    let port = free_port();
    let _python_app = Process::start(
        python.to_str().unwrap(),
        &[app.display().to_string(), port.to_string(), KEY.to_string()],
        "the virtualenv's python",
    );
    wait_for_port(
        port,
        Duration::from_secs(60),
        "the Python sanic-cookies app",
    );
    let py = format!("127.0.0.1:{port}");
    let rust = common::Demo::start(&[
        "--store",
        "cookie",
        "--compat",
        "sanic-cookies",
        "--fernet-key",
        KEY,
    ]);

    let first = get(&py, "/", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "{first:?}");
    let cookie = first.cookie().expect("the Python app sets its cookie");
    assert!(cookie.starts_with("session=gAAAAA"), "{cookie}");

    let second = get(&rust.addr, "/", Some(&cookie));
    assert_eq!(
        (second.status, second.body.as_str()),
        (200, "2"),
        "Rust did not continue the Python cookie"
    );
    let cookie = second.cookie().expect("Rust seals the new count");
    assert!(cookie.starts_with("session=gAAAAA"), "{cookie}");
    let raw = get(&py, "/raw", Some(&cookie));
    assert_eq!(
        raw.body, r#"{"foo":2}"#,
        "the token holds exactly the JSON object"
    );

    let third = get(&py, "/", Some(&cookie));
    assert_eq!(third.body, "3", "Python did not continue the Rust cookie");
    let cookie = third.cookie().unwrap();
    let fourth = get(&rust.addr, "/", Some(&cookie));
    assert_eq!(fourth.body, "4");

    // A cookie started in Rust continues in Python; one under another key does not open.
    let rust_first = get(&rust.addr, "/", None);
    let rust_cookie = rust_first.cookie().expect("Rust sets the cookie");
    assert_eq!(get(&py, "/", Some(&rust_cookie)).body, "2");
    let other = common::Demo::start(&[
        "--store",
        "cookie",
        "--compat",
        "sanic-cookies",
        "--fernet-key",
        "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=",
    ]);
    let foreign = get(&other.addr, "/", None).cookie().unwrap();
    assert_eq!(get(&py, "/", Some(&foreign)).body, "1");
    assert_eq!(get(&rust.addr, "/", Some(&foreign)).body, "1");
}
