//! Tests that any networked store must pass with two demo processes sharing it.

use std::collections::BTreeSet;

use super::{get, request, Answer, Demo};

/// Two processes of the example `bin` (`demo` or `demo_actix`) on the store at `url`, and
/// a session cookie issued by the first.
fn two_demos(bin: &str, url: &str) -> (Demo, Demo, String) {
    let (a, b) = (
        Demo::start_example(bin, &["--store", url]),
        Demo::start_example(bin, &["--store", url]),
    );
    let cookie = get(&a.addr, "/", None).cookie().expect("a session cookie");
    (a, b, cookie)
}

/// Sends `n` concurrent requests with `cookie`, alternating between `a` and `b`; request
/// `i` is `(method, path, body)` from `make(i)`. Returns the answers in order.
fn spread(
    a: &Demo,
    b: &Demo,
    cookie: &str,
    n: usize,
    make: impl Fn(usize) -> (&'static str, String, String),
) -> Vec<Answer> {
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let addr = if i % 2 == 0 { &a.addr } else { &b.addr }.clone();
            let cookie = cookie.to_string();
            let (method, path, body) = make(i);
            std::thread::spawn(move || request(&addr, method, &path, Some(&cookie), &body))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// 60 concurrent `/locked` requests with one cookie, alternating between the processes,
/// return exactly 1..=60.
pub fn sixty_locked_requests_return_one_to_sixty(url: &str) {
    sixty_locked_requests_on("demo", url);
}

/// [`sixty_locked_requests_return_one_to_sixty`] with two processes of the example `bin`.
pub fn sixty_locked_requests_on(bin: &str, url: &str) {
    let (a, b, cookie) = two_demos(bin, url);
    let answers = spread(&a, &b, &cookie, 60, |_| {
        ("GET", "/locked?hold_ms=3".into(), String::new())
    });
    let mut seen: Vec<u32> = answers
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, 200, "{answer:?}");
            answer.body.parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=60).collect::<Vec<_>>(),
        "lock holders overlapped across processes"
    );
}

/// 40 concurrent `PUT /set/k{i}` alternating between the processes are all kept, and 40
/// concurrent increments lose nothing.
pub fn forty_writes_of_different_keys_are_all_kept(url: &str) {
    forty_writes_of_different_keys_on("demo", url);
}

/// [`forty_writes_of_different_keys_are_all_kept`] with two processes of the example `bin`.
pub fn forty_writes_of_different_keys_on(bin: &str, url: &str) {
    let (a, b, cookie) = two_demos(bin, url);
    let answers = spread(&a, &b, &cookie, 40, |i| {
        ("PUT", format!("/set/k{i}"), i.to_string())
    });
    assert!(
        answers.iter().all(|answer| answer.status == 200),
        "{answers:?}"
    );
    for i in 0..40 {
        let answer = get(&b.addr, &format!("/get/k{i}"), Some(&cookie));
        assert_eq!(
            (answer.status, answer.body),
            (200, i.to_string()),
            "k{i} was lost"
        );
    }
    let answers = spread(&a, &b, &cookie, 40, |_| ("GET", "/".into(), String::new()));
    let counts: BTreeSet<u32> = answers.iter().map(|a| a.body.parse().unwrap()).collect();
    assert_eq!(
        counts,
        (2..=41).collect::<BTreeSet<_>>(),
        "concurrent increments lost some"
    );
}

/// A logout on one process racing 30 writes with the same cookie on both: afterwards the
/// logged-out cookie is logged out on both processes (no write brought the login back),
/// and every write answered 200 before the logout is in no session the cookie reaches.
pub fn a_logout_racing_writes_is_not_undone(url: &str) {
    let (a, b) = (
        Demo::start(&["--store", url]),
        Demo::start(&["--store", url]),
    );
    let cookie = request(&a.addr, "POST", "/login/alice", None, "")
        .cookie()
        .expect("login sets a cookie");
    let writers = {
        let (a, b, cookie) = (a.addr.clone(), b.addr.clone(), cookie.clone());
        std::thread::spawn(move || {
            (0..30)
                .map(|i| {
                    let addr = if i % 2 == 0 { &a } else { &b };
                    request(addr, "PUT", &format!("/set/w{i}"), Some(&cookie), "1").status
                })
                .collect::<Vec<_>>()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let logout = request(&b.addr, "POST", "/logout", Some(&cookie), "");
    assert_eq!(logout.status, 200, "{logout:?}");
    let statuses = writers.join().unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    for addr in [&a.addr, &b.addr] {
        let me = get(addr, "/me", Some(&cookie));
        assert_ne!(
            (me.status, me.body.as_str()),
            (200, "alice"),
            "a write racing the logout logged alice back in"
        );
    }
}
