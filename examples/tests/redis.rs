//! Two demo processes on one private Redis: the lock and key-level merging hold across
//! processes; and the service survives Redis going down and coming back.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{get, request, Demo};
use sessio_store_tests::servers::RedisServer;

fn two_demos(redis: &RedisServer) -> (Demo, Demo) {
    let url = redis.url();
    (
        Demo::start(&["--store", &url]),
        Demo::start(&["--store", &url]),
    )
}

#[test]
fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
    let redis = RedisServer::start();
    let (a, b) = two_demos(&redis);
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

#[test]
fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
    let redis = RedisServer::start();
    let (a, b) = two_demos(&redis);
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
    // And concurrent increments through both processes lose nothing.
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

#[test]
fn redis_outage_answers_503_quickly_and_service_resumes() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let mut demo = Demo::start(&["--store", &redis.url()]);
    let cookie = get(&demo.addr, "/", None)
        .cookie()
        .expect("a session cookie");
    assert_eq!(get(&demo.addr, "/", Some(&cookie)).body, "2");

    redis.kill();
    let outage = Instant::now();
    let mut answers = 0;
    while outage.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let answer = get(&demo.addr, "/", Some(&cookie));
        let took = started.elapsed();
        assert_eq!(answer.status, 503, "during the outage: {answer:?}");
        assert!(
            answer.cookie().is_none(),
            "no Set-Cookie while the store is down"
        );
        assert!(
            took < Duration::from_millis(1500),
            "a 503 took {took:?}: not bounded by the timeout"
        );
        answers += 1;
    }
    assert!(answers >= 2);
    assert!(demo.is_running(), "the process died during the outage");

    let _redis = RedisServer::start_on(port);
    let back = Instant::now();
    loop {
        let answer = get(&demo.addr, "/", Some(&cookie));
        if answer.status == 200 {
            // Redis kept nothing (no persistence), so the session starts over, under a new id.
            assert_eq!(answer.body, "1");
            break;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "service did not resume within 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
