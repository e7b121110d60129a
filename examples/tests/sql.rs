//! The demo on the SQL stores, two processes sharing one database: PostgreSQL (a private
//! cluster), SQLite (one file) and MariaDB (a private server). The lock and key-level
//! merging hold across processes, a logout stays a logout, and a database outage is a
//! `503` that heals.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, two_processes, Demo};
use sessio_test_servers::{MariaDbServer, PostgresServer, TempDir};

/// A SQLite database file in a fresh temporary directory.
struct SqliteFile {
    dir: TempDir,
}

impl SqliteFile {
    fn new() -> Self {
        Self {
            dir: TempDir::new("sqlite-demo"),
        }
    }
    fn path(&self) -> String {
        self.dir.path.join("sessions.db").display().to_string()
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.path())
    }
}

macro_rules! on_each_database {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(#[test] fn $case() {
                let server = PostgresServer::start();
                two_processes::$case(&server.url());
            })*
        }
        mod sqlite {
            use super::*;
            $(#[test] fn $case() {
                let file = SqliteFile::new();
                two_processes::$case(&file.url());
            })*
        }
        mod mariadb {
            use super::*;
            $(#[test] fn $case() {
                let server = MariaDbServer::start();
                two_processes::$case(&server.url());
            })*
        }
    };
}

on_each_database!(
    sixty_locked_requests_return_one_to_sixty,
    forty_writes_of_different_keys_are_all_kept,
    a_logout_racing_writes_is_not_undone,
);

#[test]
fn a_logout_during_a_held_lock_stays_a_logout_on_each_database() {
    let pg = PostgresServer::start();
    let file = SqliteFile::new();
    let maria = MariaDbServer::start();
    for url in [pg.url(), file.url(), maria.url()] {
        let (a, b) = (
            Demo::start(&["--store", &url]),
            Demo::start(&["--store", &url]),
        );
        let cookie = common::request(&a.addr, "POST", "/login/alice", None, "")
            .cookie()
            .expect("login sets a cookie");
        let locked = {
            let (addr, cookie) = (a.addr.clone(), cookie.clone());
            std::thread::spawn(move || get(&addr, "/locked?hold_ms=700", Some(&cookie)))
        };
        std::thread::sleep(Duration::from_millis(250));
        let logout = common::request(&b.addr, "POST", "/logout", Some(&cookie), "");
        assert_eq!(logout.status, 200, "{url}: {logout:?}");
        let _ = locked.join().unwrap();
        for addr in [&a.addr, &b.addr] {
            let me = get(addr, "/me", Some(&cookie));
            assert_ne!(
                (me.status, me.body.as_str()),
                (200, "alice"),
                "{url}: the locked request undid the logout"
            );
        }
    }
}

/// PostgreSQL stopped (`pg_ctl stop -m immediate`) under a client looping on `GET /`:
/// only 503s, each within the store's timeout, the demo stays up; 200 again within 5 s of
/// the restart, with the session intact.
#[test]
fn postgres_stopped_answers_503_and_service_resumes() {
    let mut server = PostgresServer::start();
    let mut demo = Demo::start(&["--store", &server.url()]);
    let cookie = get(&demo.addr, "/", None).cookie().expect("a cookie");
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "2");
    server.stop_immediate();
    let outage = Instant::now();
    let mut answers = 0;
    while outage.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let answer = get(&demo.addr, "/", Some(&cookie));
        assert_eq!(answer.status, 503, "during the outage: {answer:?}");
        assert!(
            answer.cookie().is_none(),
            "no Set-Cookie while the store is down"
        );
        assert!(
            started.elapsed() < Duration::from_millis(4500),
            "a 503 took {:?}: not bounded by the store's timeout",
            started.elapsed()
        );
        answers += 1;
    }
    assert!(answers >= 1);
    assert!(demo.is_running(), "the demo died during the outage");
    server.restart();
    let back = Instant::now();
    loop {
        let answer = get(&demo.addr, "/", Some(&cookie));
        if answer.status == 200 {
            assert_eq!(answer.body, "3", "the session survived the outage");
            break;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "service did not resume within 5 s of the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Another process (Python's sqlite3) holds the database file's write lock past the busy
/// timeout: writes answer 503; once it lets go, 200 again.
#[test]
fn sqlite_locked_by_another_process_answers_503_then_recovers() {
    let file = SqliteFile::new();
    let demo = Demo::start(&["--store", &file.url()]);
    let cookie = get(&demo.addr, "/", None).cookie().expect("a cookie");
    let script = format!(
        "import sqlite3, sys, time\n\
         c = sqlite3.connect({path:?}, isolation_level=None)\n\
         c.execute('BEGIN EXCLUSIVE')\n\
         print('locked', flush=True)\n\
         sys.stdin.readline()\n\
         c.execute('COMMIT')\n",
        path = file.path()
    );
    let mut holder = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 (the test command in README installs it)");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let answer = get(&demo.addr, "/", Some(&cookie));
    assert_eq!(
        answer.status, 503,
        "a write past the busy timeout: {answer:?}"
    );
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let answer = get(&demo.addr, "/", Some(&cookie));
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "2"),
        "{answer:?}"
    );
}
