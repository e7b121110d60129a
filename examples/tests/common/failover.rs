//! A store failing under load: clients, each with a session of its own, count up through
//! two demo processes while a test kills part of the store; then what every client was
//! answered is checked against what the store kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{get, Demo};

/// One answer to a client's `GET /` (an increment of its counter).
#[derive(Debug, Clone)]
pub struct Answered {
    /// When it came, from the start of the load.
    pub at: Duration,
    /// How long the request took.
    pub took: Duration,
    /// Its status.
    pub status: u16,
    /// The count, for a `200`.
    pub count: Option<u64>,
    /// Whether it set a new session cookie.
    pub new_cookie: bool,
}

/// What a load run saw: per client, its cookie and its answers in order.
#[derive(Debug)]
pub struct Run {
    /// `(cookie, answers)` per client.
    pub clients: Vec<(String, Vec<Answered>)>,
    /// When the fault began, from the start of the load.
    pub fault_at: Duration,
}

/// Starts `clients` clients, each with a new session made on `a`, counting up through `a`
/// and `b` in turn; after `before`, runs `fault` (which kills and restarts what it likes,
/// and returns when the store should be back), then keeps the load on for `after`.
pub fn under_load(
    a: &Demo,
    b: &Demo,
    clients: usize,
    before: Duration,
    fault: impl FnOnce(),
    after: Duration,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (a, b, stop) = (a.addr.clone(), b.addr.clone(), stop.clone());
            std::thread::spawn(move || {
                // The store may still be settling from an earlier fault (a replica
                // catching up answers a write that waits for it with a 503): the session
                // is made before this fault, retrying for a while.
                let deadline = Instant::now() + Duration::from_secs(10);
                let first = loop {
                    let first = get(&a, "/", None);
                    if first.status == 200 || Instant::now() > deadline {
                        break first;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                assert_eq!(
                    first.status, 200,
                    "a new session before the fault: {first:?}"
                );
                let cookie = first.cookie().expect("a session cookie");
                let mut answers = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let addr = if i.is_multiple_of(2) { &a } else { &b };
                    i += 1;
                    let sent = Instant::now();
                    let answer = get(addr, "/", Some(&cookie));
                    answers.push(Answered {
                        at: start.elapsed(),
                        took: sent.elapsed(),
                        status: answer.status,
                        count: (answer.status == 200)
                            .then(|| answer.body.parse().expect("a count")),
                        new_cookie: answer.cookie().is_some(),
                    });
                    if answer.status != 200 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                (cookie, answers)
            })
        })
        .collect();
    std::thread::sleep(before);
    let fault_at = start.elapsed();
    fault();
    std::thread::sleep(after);
    stop.store(true, Ordering::Relaxed);
    Run {
        clients: threads.into_iter().map(|t| t.join().unwrap()).collect(),
        fault_at,
    }
}

impl Run {
    /// Every answer is a `200` or a `5xx` that took less than `longest`; no `200` lost an
    /// increment answered before it or set a new session; and every client's count, read
    /// again now through `a`, is above the last count it was answered (nothing answered
    /// `200` was lost). Returns the time from the fault to the last non-`200` answer.
    pub fn check(&self, a: &Demo, longest: Duration) -> Duration {
        let mut last_failure = Duration::ZERO;
        for (client, (cookie, answers)) in self.clients.iter().enumerate() {
            let mut counted = 0;
            for answer in answers {
                assert!(
                    answer.status == 200 || answer.status >= 500,
                    "client {client}: neither 200 nor 5xx: {answer:?}"
                );
                assert!(
                    answer.took < longest,
                    "client {client}: a request took {:?}: {answer:?}",
                    answer.took
                );
                match answer.count {
                    Some(count) => {
                        assert!(
                            count > counted && !answer.new_cookie,
                            "client {client}: answered {count} after {counted} (an increment or the session was lost): {answer:?}"
                        );
                        counted = count;
                    }
                    None => last_failure = last_failure.max(answer.at),
                }
            }
            let now = get(&a.addr, "/", Some(cookie));
            assert_eq!(now.status, 200, "client {client} after the run: {now:?}");
            let kept: u64 = now.body.parse().unwrap();
            assert!(
                kept > counted && now.cookie().is_none(),
                "client {client}: the store kept {} increments, but {counted} were answered 200",
                kept - 1
            );
        }
        last_failure.saturating_sub(self.fault_at)
    }

    /// How many answers were `200`, and how many were not.
    pub fn tally(&self) -> (usize, usize) {
        let all = self.clients.iter().flat_map(|(_, answers)| answers);
        let ok = all.clone().filter(|a| a.status == 200).count();
        (ok, all.count() - ok)
    }
}
