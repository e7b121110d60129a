//! Virtualenvs for the interop tests, built once per target directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The python of the virtualenv `name` under the target directory, after running each
/// `pip install` argument list of `installs` in it (once: a later call whose `check`
/// imports succeed reuses it). The tests of one binary build it one at a time.
pub fn venv(name: &str, installs: &[&[&str]], check: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = dir.join("bin").join("python");
    let ready = || {
        Command::new(&python)
            .args(["-c", check])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready() {
        return python;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 is needed for the interop tests: apt-get install -y python3 python3-venv");
    assert!(
        status.success(),
        "python3 -m venv failed: apt-get install -y python3-venv"
    );
    for args in installs {
        let output = Command::new(dir.join("bin").join("pip"))
            .args(["install", "-q"])
            .args(*args)
            .output()
            .expect("run pip");
        assert!(
            output.status.success(),
            "pip install {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(ready(), "the virtualenv {name} still cannot run {check:?}");
    python
}
