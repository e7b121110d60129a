//! Interop with Python: a sanic_session 0.8 app and the Rust demo in `--compat sanic-session`
//! mode continue one session in turn — on one private Redis (AIORedisSessionInterface) and
//! on one private memcached (MemcacheSessionInterface, aiomcache).
//!
//! The test installs `sanic==22.12.0`, `sanic-session==0.8.0`, `redis` and `aiomcache` from
//! PyPI into a virtualenv under the target directory (once; later runs reuse it).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::get;
use sessio_test_servers::{
    free_port, memcached_url, wait_for_port, MemcachedServer, Process, RedisServer,
};

/// The small Python app: the seed's counter, on sanic_session's Redis or Memcache
/// interface. The last release of `aioredis` does not import on Python 3.11, so
/// `redis.asyncio` stands in for it (it has the same `get`/`setex`/`delete` API).
const APP: &str = r#"
import sys
import redis.asyncio
sys.modules["aioredis"] = redis.asyncio
import aiomcache

from sanic import Sanic
from sanic.response import text
from sanic_session import Session, AIORedisSessionInterface, MemcacheSessionInterface

port, backend, address = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = Sanic("interop")
session = Session()

# The clients connect lazily, on the server's event loop.
if backend == "redis":
    app.ctx.store = redis.asyncio.from_url(address, decode_responses=True)
    session.init_app(app, interface=AIORedisSessionInterface(app.ctx.store))
else:
    host, mport = address.split(":")
    app.ctx.store = aiomcache.Client(host, int(mport))
    session.init_app(app, interface=MemcacheSessionInterface(app.ctx.store))

@app.route("/")
async def index(request):
    if not request.ctx.session.get("foo"):
        request.ctx.session["foo"] = 0
    request.ctx.session["foo"] += 1
    return text(str(request.ctx.session["foo"]))

app.run(host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False)
"#;

const PACKAGES: [&str; 4] = [
    "sanic==22.12.0",
    "sanic-session==0.8.0",
    "redis",
    "aiomcache",
];

/// The virtualenv's python, with the packages installed.
fn venv() -> PathBuf {
    common::python::venv(
        "sanic-venv",
        &[&PACKAGES],
        "import sanic, sanic_session, redis.asyncio, aiomcache",
    )
}

/// Python, Rust, Python, Rust on one cookie, over the store `rust_store` (a `--store` URL)
/// that the Python app reaches as `backend` at `address`.
fn counts_across_python_and_rust(backend: &str, address: &str, rust_store: &str) {
    let python = venv();
    let dir = sessio_test_servers::TempDir::new("sanic-app");
    let app = dir.path.join("app.py");
    std::fs::write(&app, APP).unwrap();
    let port = free_port();
    let _python_app = Process::start(
        python.to_str().unwrap(),
        &[
            app.display().to_string(),
            port.to_string(),
            backend.to_string(),
            address.to_string(),
        ],
        "the virtualenv's python",
    );
    wait_for_port(
        port,
        Duration::from_secs(60),
        "the Python sanic_session app",
    );
    let py = format!("127.0.0.1:{port}");
    let rust = common::Demo::start(&["--store", rust_store, "--compat", "sanic-session"]);

    let first = get(&py, "/", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "{first:?}");
    let cookie = first
        .cookie()
        .expect("the Python app sets its session cookie");
    assert!(cookie.starts_with("session="), "{cookie}");

    let second = get(&rust.addr, "/", Some(&cookie));
    assert_eq!(
        (second.status, second.body.as_str()),
        (200, "2"),
        "Rust did not continue the Python session"
    );
    assert_eq!(second.cookie(), None, "Rust kept the Python id");

    let third = get(&py, "/", Some(&cookie));
    assert_eq!(
        third.body, "3",
        "Python did not continue the Rust-written session"
    );
    let fourth = get(&rust.addr, "/", Some(&cookie));
    assert_eq!(fourth.body, "4");

    // A session started on the Rust side continues in Python too.
    let rust_first = get(&rust.addr, "/", None);
    let rust_cookie = rust_first.cookie().expect("Rust sets a session cookie");
    assert!(rust_cookie.starts_with("session="), "{rust_cookie}");
    assert_eq!(get(&py, "/", Some(&rust_cookie)).body, "2");
    assert_eq!(get(&rust.addr, "/", Some(&rust_cookie)).body, "3");
}

#[test]
fn one_cookie_counts_across_python_and_rust_on_redis() {
    let redis = RedisServer::start();
    counts_across_python_and_rust("redis", &redis.url(), &redis.url());
}

#[test]
fn one_cookie_counts_across_python_and_rust_on_memcached() {
    let memcached = MemcachedServer::start();
    counts_across_python_and_rust(
        "memcached",
        &memcached.addr(),
        &memcached_url(&[&memcached]),
    );
}
