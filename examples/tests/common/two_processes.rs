//! Tests that any networked store must pass with two demo processes sharing it.

use std::collections::BTreeSet;

use super::{get, request, Demo};

/// Two demo processes on the store at `url`.
pub fn two_demos(url: &str) -> (Demo, Demo) {
    (
        Demo::start(&["--store", url]),
        Demo::start(&["--store", url]),
    )
}

/// 60 concurrent `/locked` requests with one cookie, alternating between the processes,
/// return exactly 1..=60.
pub fn sixty_locked_requests_return_one_to_sixty(url: &str) {
    let (a, b) = two_demos(url);
    let cookie = get(&a.addr, "/", None).cookie().expect("a session cookie");
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let cookie = cookie.clone();
            std::thread::spawn(move || get(&addr, "/locked?hold_ms=3", Some(&cookie)))
        })
        .collect();
    let mut seen = Vec::new();
    for thread in threads {
        let answer = thread.join().unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        seen.push(answer.body.parse::<u32>().unwrap());
    }
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
    let (a, b) = two_demos(url);
    let cookie = get(&a.addr, "/", None).cookie().expect("a session cookie");
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let cookie = cookie.clone();
            std::thread::spawn(move || {
                request(
                    &addr,
                    "PUT",
                    &format!("/set/k{i}"),
                    Some(&cookie),
                    &i.to_string(),
                )
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().status, 200);
    }
    for i in 0..40 {
        let answer = get(&b.addr, &format!("/get/k{i}"), Some(&cookie));
        assert_eq!(
            (answer.status, answer.body),
            (200, i.to_string()),
            "k{i} was lost"
        );
    }
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let cookie = cookie.clone();
            std::thread::spawn(move || get(&addr, "/", Some(&cookie)).body)
        })
        .collect();
    let counts: BTreeSet<u32> = threads
        .into_iter()
        .map(|t| t.join().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, (2..=41).collect::<BTreeSet<_>>());
}
