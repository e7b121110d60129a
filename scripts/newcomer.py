#!/usr/bin/env python3
"""Helper of scripts/newcomer.sh: what a newcomer copies from the docs, checked as they would.

  newcomer.py manifest ROOT           the [dependencies] lines of README's ```toml blocks,
                                      the git source replaced by this checkout's paths
  newcomer.py extract ROOT CRATE      every Rust block of README.md and of the guide
                                      (crates/sessio-axum/src/guide.rs), as
                                      CRATE/examples/snippet_N.rs; prints which is the
                                      README's whole app (the block that reads PORT)
  newcomer.py curl ROOT BIN           starts BIN on a free loopback port (PORT=...), runs the
                                      README's curl lines against it with a fresh cookie jar,
                                      checks each status and body as the README states them
  newcomer.py redis BIN               starts a private redis-server on a free loopback port and
                                      BIN (the README's Redis switch, REDIS_URL=...) twice:
                                      the visitor's count goes on across the restart
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

GIT = 'git = "https://github.com/sessio-rs/sessio"'


def fail(message):
    print(f"newcomer: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def fenced_blocks(lines, source):
    """(info, first line number, code lines) of each fenced block in `lines`."""
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        info, start, body = m.group(2).strip(), i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            fail(f"{source}:{start}: unclosed code block")
        blocks.append((info, start, body))
        i += 1
    return blocks


def readme(root):
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        return f.read().splitlines()


def guide(root):
    """The guide's doc comment, without its `//!` prefix."""
    path = os.path.join(root, "crates/sessio-axum/src/guide.rs")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("//! "):
                out.append(line[4:])
            elif line.startswith("//!"):
                out.append(line[3:])
    return out


def rust_kind(info, doc_comment):
    """None if the block is not compiled by rustdoc, else the attributes it has."""
    tokens = [t.strip() for t in re.split(r"[,\s]+", info) if t.strip()]
    langs = [t for t in tokens if t not in ("no_run", "ignore", "should_panic", "compile_fail", "edition2018", "edition2021", "edition2024")]
    if langs and langs != ["rust"]:
        return None  # text, toml, console, sh...
    if not langs and not doc_comment:
        return None  # in Markdown a bare fence is not Rust
    return set(tokens)


def unhide(lines):
    """rustdoc's hidden lines (`# code`, `#`) shown; `##` is an escaped `#`."""
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped == "#":
            out.append("")
        elif stripped.startswith("# "):
            out.append(indent + stripped[2:])
        elif stripped.startswith("##"):
            out.append(indent + stripped[1:])
        else:
            out.append(line)
    return out


def wrap(lines):
    """A whole file, as rustdoc makes one: inner attributes first, and a `fn main` around
    a block that has none (returning a Result when the block ends in `Ok::<..>(..)`)."""
    attrs = [l for l in lines if l.lstrip().startswith("#![")]
    body = [l for l in lines if not l.lstrip().startswith("#![")]
    head = ["#![allow(unused)]"] + attrs
    if any(re.search(r"\bfn\s+main\s*\(", l) for l in body):
        return head + body
    last = next((l.strip() for l in reversed(body) if l.strip()), "")
    if last.startswith("Ok::<"):
        return head + [
            "fn main() {",
            "    fn _inner() -> core::result::Result<(), impl core::fmt::Debug> {",
            *["        " + l for l in body],
            "    }",
            "    _inner().unwrap()",
            "}",
        ]
    return head + ["fn main() {", *["    " + l for l in body], "}"]


def manifest(root):
    deps = {}
    for info, start, body in fenced_blocks(readme(root), "README.md"):
        if info != "toml":
            continue
        for line in body:
            m = re.match(r"^([A-Za-z0-9_-]+)\s*=\s*(.+?)\s*(#.*)?$", line.strip())
            if not m:
                continue
            name, value = m.group(1), m.group(2)
            if GIT in value:
                path = os.path.join(root, "crates", name)
                if not os.path.isfile(os.path.join(path, "Cargo.toml")):
                    fail(f"README.md:{start}: {name} is not a crate of this repository")
                value = value.replace(GIT, f'path = "{path}"')
            if name in deps and deps[name] != value:
                fail(f"README.md:{start}: {name} appears twice, differently: {deps[name]} / {value}")
            deps[name] = value
    if "sessio-axum" not in deps:
        fail("README.md: no ```toml block names sessio-axum")
    for name, value in deps.items():
        print(f"{name} = {value}")


def extract(root, crate):
    examples = os.path.join(crate, "examples")
    os.makedirs(examples, exist_ok=True)
    sources = [("README.md", readme(root), False), ("crates/sessio-axum/src/guide.rs", guide(root), True)]
    n, app, redis_app = 0, None, None
    for source, lines, doc_comment in sources:
        for info, start, body in fenced_blocks(lines, source):
            kind = rust_kind(info, doc_comment)
            if kind is None:
                continue
            if "ignore" in kind or "compile_fail" in kind:
                print(f"  skipped {source}:{start} ({info})", file=sys.stderr)
                continue
            code = unhide(body)
            text = "\n".join(code)
            if source == "README.md" and 'env::var("REDIS_URL")' in text:
                if redis_app is not None:
                    fail("README.md: two blocks read REDIS_URL; which one is the Redis switch?")
                redis_app = f"snippet_{n}"
            elif source == "README.md" and re.search(r'\benv::var\("PORT"\)', text):
                if app is not None:
                    fail("README.md: two blocks read PORT; which one is the whole app?")
                app = f"snippet_{n}"
            for l in code:
                for root_crate in re.findall(r"(?<![\w:])(sessio(?:_[a-z]+)?)::", l):
                    if root_crate not in ("sessio_axum", "sessio_actix", "sessio_redis"):
                        fail(f"{source}:{start}: a path from {root_crate}, which a newcomer does not depend on: `{l.strip()}`")
            with open(os.path.join(examples, f"snippet_{n}.rs"), "w", encoding="utf-8") as f:
                f.write(f"// {source}:{start} ({info or 'rust'})\n")
                f.write("\n".join(wrap(code)) + "\n")
            print(f"  snippet_{n}: {source}:{start}", file=sys.stderr)
            n += 1
    if app is None:
        fail("README.md: no Rust block reads PORT (the whole app the curl lines run against)")
    if redis_app is None:
        fail("README.md: no Rust block reads REDIS_URL (the app switched to Redis)")
    print(app, redis_app)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl_lines(root):
    """(command, status, body) of each `$ curl` line of README's console block."""
    steps = []
    for info, start, body in fenced_blocks(readme(root), "README.md"):
        if info != "console" or not any(l.startswith("$ curl") for l in body):
            continue
        i = 0
        while i < len(body):
            line = body[i]
            if not line.startswith("$ "):
                i += 1
                continue
            m = re.match(r"^\$ (curl .*?)\s*#\s*(\d{3})\b", line)
            if not m:
                fail(f"README.md:{start + 1 + i}: a curl line without its status (`# 200`): {line}")
            answer = []
            i += 1
            while i < len(body) and not body[i].startswith("$ "):
                answer.append(body[i])
                i += 1
            while answer and not answer[-1].strip():
                answer.pop()
            steps.append((m.group(1), int(m.group(2)), "\n".join(answer), start + 1))
    if not steps:
        fail("README.md: no ```console block with `$ curl` lines")
    return steps


def curl(root, binary):
    steps = curl_lines(root)
    port = free_port()
    jar = tempfile.NamedTemporaryFile(prefix="newcomer-jar-", delete=False).name
    os.unlink(jar)
    log = tempfile.TemporaryFile()
    app = subprocess.Popen([binary], env={**os.environ, "PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, app, log, f"the README's app (PORT={port})")
        for command, status, body, line in steps:
            args = shlex.split(command)
            if not any(re.match(r"^(http://)?localhost:3000(/|$)", a) for a in args):
                fail(f"README.md:{line}: `{command}` does not ask localhost:3000, where the app listens")
            args = [re.sub(r"^(http://)?localhost:3000", f"http://localhost:{port}", a) for a in args]
            args = [jar if a == "jar" else a for a in args]
            got_status, got_body = fetch(args)
            if int(got_status) != status or got_body.strip() != body.strip():
                fail(f"`{command}`: README says {status} {body!r}, the app answered {got_status} {got_body.strip()!r}")
            print(f"  ok  {command:<50} {status} {body}")
    finally:
        stop(app)
        if os.path.exists(jar):
            os.unlink(jar)
    print(f"newcomer: the README's app answered its {len(steps)} curl lines as the README says")


def fetch(args):
    """Runs a curl command line (`args`), straight to the app whatever proxy is set:
    (status, body)."""
    out = subprocess.run(args[:1] + ["-sS", "--noproxy", "*", "-w", "\n%{http_code}"] + args[1:],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        fail(f"`{' '.join(args)}` failed: {out.stderr.strip()}")
    body, _, status = out.stdout.rpartition("\n")
    return status, body


def wait_listening(port, process, log, what):
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                log.seek(0)
                fail(f"{what} did not listen on 127.0.0.1:{port}:\n{log.read().decode(errors='replace')}")
            time.sleep(0.1)


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def redis(binary):
    """The README's Redis switch, run as a newcomer would: against a Redis of its own."""
    server = shutil.which("redis-server")
    if server is None:
        fail("redis-server not found: install it (Debian: apt-get install -y redis-server)")
    redis_port, port = free_port(), free_port()
    log = tempfile.TemporaryFile()
    db = tempfile.mkdtemp(prefix="newcomer-redis-")
    redis = subprocess.Popen([server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", db], stdout=log, stderr=subprocess.STDOUT)
    jar = os.path.join(db, "jar")
    try:
        wait_listening(redis_port, redis, log, "redis-server")
        env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}"}
        expected = iter(["1", "2", "3"])
        for run in (1, 2):
            app = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_listening(port, app, log, "the README's Redis app")
                for _ in range(2 if run == 1 else 1):
                    status, body = fetch(["curl", "-c", jar, "-b", jar, f"http://localhost:{port}/"])
                    want = next(expected)
                    if status != "200" or body.strip() != want:
                        fail(f"the Redis app (run {run}) answered {status} {body.strip()!r}, expected 200 {want!r}")
                    print(f"  ok  run {run}: GET / -> 200 {want}")
            finally:
                stop(app)
    finally:
        stop(redis)
        shutil.rmtree(db, ignore_errors=True)
    print("newcomer: the README's Redis switch keeps the count across a restart of the app")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command, root = sys.argv[1], os.path.abspath(sys.argv[2])
    if command == "manifest":
        manifest(root)
    elif command == "extract":
        extract(root, sys.argv[3])
    elif command == "curl":
        curl(root, sys.argv[3])
    elif command == "redis":
        redis(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
