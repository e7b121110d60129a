//! Interop with Python: a sanic_session 0.8 app (AIORedisSessionInterface) and the Rust demo
//! in `--compat sanic-session` mode, on one private Redis, continue one session in turn.
//!
//! The test installs `sanic==22.12.0`, `sanic-session==0.8.0` and `redis` from PyPI into a
//! virtualenv under the target directory (once; later runs reuse it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::get;
use sessio_store_tests::servers::{free_port, wait_for_port, Process, RedisServer};

/// The small Python app: the seed's counter, on sanic_session's Redis interface. The last
/// release of `aioredis` does not import on Python 3.11, so `redis.asyncio` stands in for it
/// (it has the same `get`/`setex`/`delete` API).
const APP: &str = r#"
import sys
import redis.asyncio
sys.modules["aioredis"] = redis.asyncio

from sanic import Sanic
from sanic.response import text
from sanic_session import Session, AIORedisSessionInterface

port, redis_url = int(sys.argv[1]), sys.argv[2]
app = Sanic("interop")
session = Session()

# The client connects lazily, on the server's event loop.
app.ctx.redis = redis.asyncio.from_url(redis_url, decode_responses=True)
session.init_app(app, interface=AIORedisSessionInterface(app.ctx.redis))

@app.route("/")
async def index(request):
    if not request.ctx.session.get("foo"):
        request.ctx.session["foo"] = 0
    request.ctx.session["foo"] += 1
    return text(str(request.ctx.session["foo"]))

app.run(host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False)
"#;

fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sanic-venv");
    let python = dir.join("bin").join("python");
    let marker = dir.join(".sessio-ready");
    if marker.exists() {
        return python;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 is needed for the interop test: apt-get install -y python3 python3-venv");
    assert!(
        status.success(),
        "python3 -m venv failed: apt-get install -y python3-venv"
    );
    let output = Command::new(dir.join("bin").join("pip"))
        .args([
            "install",
            "-q",
            "sanic==22.12.0",
            "sanic-session==0.8.0",
            "redis",
        ])
        .output()
        .expect("run pip");
    assert!(
        output.status.success(),
        "pip install sanic==22.12.0 sanic-session==0.8.0 redis failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&marker, b"").unwrap();
    python
}

#[test]
fn one_cookie_counts_across_python_and_rust() {
    let python = venv();
    let redis = RedisServer::start();
    let dir = sessio_store_tests::servers::TempDir::new("sanic-app");
    let app = dir.path.join("app.py");
    std::fs::write(&app, APP).unwrap();
    let port = free_port();
    let _python_app = Process::start(
        python.to_str().unwrap(),
        &[app.display().to_string(), port.to_string(), redis.url()],
        "the virtualenv's python",
    );
    wait_for_port(
        port,
        Duration::from_secs(60),
        "the Python sanic_session app",
    );
    let py = format!("127.0.0.1:{port}");
    let rust = common::Demo::start(&["--store", &redis.url(), "--compat", "sanic-session"]);

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
