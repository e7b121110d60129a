#!/usr/bin/env bash
# A newcomer's first hour, checked by a machine. From a crate OUTSIDE this workspace that
# depends only on what README's install block names (this checkout by path instead of the
# git URL), it builds every Rust block of README.md and of the guide
# (crates/sessio-axum/src/guide.rs), then runs the README's whole app on a free loopback
# port and checks that its curl lines answer what the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
# Share the workspace's build directory, so dependencies already built are reused.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$ROOT/$CARGO_TARGET_DIR" ;; esac
CRATE="$CARGO_TARGET_DIR/newcomer"

echo "== newcomer: a crate of its own in $CRATE"
rm -rf "$CRATE"
mkdir -p "$CRATE/src"
deps=$(python3 scripts/newcomer.py manifest "$ROOT")
{
  cat <<EOF
[package]
name = "newcomer"
version = "0.0.0"
edition = "2021"
publish = false

# Not a member of the sessio workspace: a crate of the newcomer's own.
[workspace]

[dependencies]
EOF
  # The guide's section 8 turns sessio-axum's `cookie-store` feature on.
  echo "$deps" | sed 's/^\(sessio-axum = {.*\) }$/\1, features = ["cookie-store"] }/'
} >"$CRATE/Cargo.toml"
echo 'fn main() {}' >"$CRATE/src/main.rs"
# The versions this repository is tested with.
cp Cargo.lock "$CRATE/Cargo.lock"
sed 's/^/   /' "$CRATE/Cargo.toml" | sed -n '/\[dependencies\]/,$p'

echo "== newcomer: the Rust blocks of README.md and of the guide"
apps=$(python3 scripts/newcomer.py extract "$ROOT" "$CRATE")
read -r app redis_app <<<"$apps"

echo "== newcomer: cargo build --examples"
if ! (cd "$CRATE" && cargo build --quiet --examples); then
  echo "newcomer: FAIL: a snippet of README.md or the guide does not compile where a user stands" >&2
  echo "          (the snippets are in $CRATE/examples; each names its source on line 1)" >&2
  exit 1
fi

echo "== newcomer: the README's app ($app) and its curl lines"
python3 scripts/newcomer.py curl "$ROOT" "$CARGO_TARGET_DIR/debug/examples/$app"
echo "== newcomer: the README's Redis switch ($redis_app), on a Redis of its own"
python3 scripts/newcomer.py redis "$CARGO_TARGET_DIR/debug/examples/$redis_app"
echo "newcomer: ok"
