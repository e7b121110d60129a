//! Child processes for tests: [`Process`] (killed on drop), [`free_port`] and
//! [`wait_for_port`], which every launcher uses.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released, so a server can take it), never
/// one this process handed out before: the kernel readily gives a released port again, and
/// two tests running side by side must not start their servers on the same one (the
/// second server would fail to bind while the first answered for both).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Process {
    /// Starts `program` with `args`, output discarded.
    ///
    /// # Panics
    /// With `install_hint` if the program is not installed.
    pub fn start(program: &str, args: &[String], install_hint: &str) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {install_hint}"));
        Self {
            child,
            name: program.to_string(),
        }
    }

    /// Starts `program` with `args`, its output (stdout and stderr) written to `log`.
    ///
    /// # Panics
    /// With `install_hint` if the program is not installed.
    pub fn start_logged(
        program: &str,
        args: &[String],
        install_hint: &str,
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("create the log file");
        let child = Command::new(program)
            .args(args)
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {install_hint}"));
        Self {
            child,
            name: program.to_string(),
        }
    }

    /// Freezes the process (SIGSTOP), as a stalled server or a partition would; see
    /// [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something accepts TCP connections on `port`.
///
/// # Panics
/// If nothing does within `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // A connect to a free port in the ephemeral range can meet itself (a TCP
        // simultaneous open: the client is given that very port), which says nothing
        // about the server; only a peer that is not ourselves counts.
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            if stream.local_addr().ok() != stream.peer_addr().ok() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not accept connections on 127.0.0.1:{port} within {timeout:?}");
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
