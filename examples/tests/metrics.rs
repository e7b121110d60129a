//! `GET /metrics` (the demos' `--metrics`, Prometheus text) after a scripted sequence on
//! a private Redis: 10 new sessions, concurrent writes until 5 conflicts were retried,
//! then Redis killed and one request answered 503. Run against both demos.

mod common;

use common::{get, request, Demo};
use sessio_test_servers::RedisServer;

/// The value of the sample `name` (with its labels, as written) in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// `GET /metrics` of `demo`: Prometheus text, and no session made by the scrape.
fn scrape(demo: &Demo) -> String {
    let answer = get(&demo.addr, "/metrics", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "not Prometheus text: {answer:?}"
    );
    assert!(answer.cookie().is_none(), "a scrape made a session");
    answer.body
}

/// The session counters of one scrape, in a fixed order, for one comparison per step.
#[derive(Debug, PartialEq)]
struct Lifecycle {
    created: f64,
    loaded: f64,
    saved: f64,
    rotated: f64,
    destroyed: f64,
    lock_waits: f64,
    lock_timeouts: f64,
    lock_lost: f64,
}

fn lifecycle(demo: &Demo) -> Lifecycle {
    let text = scrape(demo);
    let n = |name: &str| sample(&text, name);
    Lifecycle {
        created: n("sessio_sessions_created_total"),
        loaded: n("sessio_sessions_loaded_total"),
        saved: n("sessio_sessions_saved_total"),
        rotated: n("sessio_sessions_rotated_total"),
        destroyed: n("sessio_sessions_destroyed_total"),
        lock_waits: n("sessio_lock_waits_total"),
        lock_timeouts: n("sessio_lock_timeouts_total"),
        lock_lost: n("sessio_lock_lost_total"),
    }
}

fn scripted_sequence_shows_in_the_metrics(bin: &str) {
    let mut redis = RedisServer::start();
    let demo = Demo::start_example(bin, &["--store", &redis.url(), "--metrics"]);
    let metrics = || scrape(&demo);

    let cookies: Vec<String> = (0..10)
        .map(|_| get(&demo.addr, "/", None).cookie().expect("a new session"))
        .collect();
    let text = metrics();
    assert_eq!(
        sample(&text, "sessio_sessions_created_total"),
        10.0,
        "{text}"
    );
    assert_eq!(sample(&text, "sessio_conflicts_total"), 0.0, "{text}");

    // Concurrent writes of different keys to one session: each conflict is retried
    // (merged), and every write is kept.
    let cookie = &cookies[0];
    let mut rounds = 0;
    while sample(&metrics(), "sessio_conflicts_total") < 5.0 {
        rounds += 1;
        assert!(
            rounds <= 50,
            "50 rounds of 20 concurrent writes made fewer than 5 conflicts"
        );
        let writers: Vec<_> = (0..20)
            .map(|i| {
                let (addr, cookie) = (demo.addr.clone(), cookie.clone());
                std::thread::spawn(move || {
                    request(
                        &addr,
                        "PUT",
                        &format!("/set/r{rounds}k{i}"),
                        Some(&cookie),
                        "1",
                    )
                })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.join().unwrap().status, 200);
        }
    }
    let text = metrics();
    assert_eq!(
        sample(&text, "sessio_sessions_created_total"),
        10.0,
        "{text}"
    );
    let saved = sample(&text, "sessio_sessions_saved_total");
    assert!(
        saved >= 20.0 * rounds as f64,
        "{saved} saves for {rounds} rounds: {text}"
    );
    assert!(
        sample(&text, "sessio_sessions_loaded_total") >= 20.0,
        "{text}"
    );
    assert!(
        text.contains("sessio_store_call_seconds") && text.contains("op=\"save\""),
        "no store latency histogram: {text}"
    );
    assert_eq!(
        sample(&text, "sessio_store_errors_total{kind=\"unavailable\"}")
            + sample(&text, "sessio_store_errors_total{kind=\"timeout\"}"),
        0.0,
        "{text}"
    );

    redis.kill();
    let outage = get(&demo.addr, "/", Some(cookie));
    assert_eq!(outage.status, 503, "{outage:?}");
    // Every 503 says when to retry, a store outage's as a lock timeout's.
    assert!(
        outage
            .headers
            .to_ascii_lowercase()
            .contains("retry-after: 1"),
        "a 503 without Retry-After: {outage:?}"
    );
    let text = metrics();
    let errors = sample(&text, "sessio_store_errors_total{kind=\"unavailable\"}")
        + sample(&text, "sessio_store_errors_total{kind=\"timeout\"}");
    assert_eq!(
        errors, 1.0,
        "one request in the outage, one store error: {text}"
    );
}

#[test]
fn axum_demo_metrics_count_sessions_conflicts_and_an_outage() {
    scripted_sequence_shows_in_the_metrics("demo");
}

#[test]
fn actix_demo_metrics_count_sessions_conflicts_and_an_outage() {
    scripted_sequence_shows_in_the_metrics("demo_actix");
}

/// Where the counters meet the lock, a rotation, a logout and a second process: an axum
/// demo (A) and an actix demo (B) share one Redis, and each counts what it did itself.
#[test]
fn metrics_count_what_each_process_did_to_a_shared_locked_session() {
    let redis = RedisServer::start();
    let a = Demo::start_example("demo", &["--store", &redis.url(), "--metrics"]);
    let b = Demo::start_example(
        "demo_actix",
        &[
            "--store",
            &redis.url(),
            "--metrics",
            "--lock-wait-ms",
            "200",
        ],
    );
    let zero = Lifecycle {
        created: 0.0,
        loaded: 0.0,
        saved: 0.0,
        rotated: 0.0,
        destroyed: 0.0,
        lock_waits: 0.0,
        lock_timeouts: 0.0,
        lock_lost: 0.0,
    };

    // A session begun under the lock is created (not merely saved).
    let first = get(&a.addr, "/locked", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"), "{first:?}");
    let cookie = first.cookie().expect("a cookie");
    assert_eq!(
        lifecycle(&a),
        Lifecycle {
            created: 1.0,
            ..zero
        }
    );

    // A holds the lock; B waits for it, gives up after 200 ms (never having read the
    // session: a waiter reads it only once the lock is its own), then logs the session out
    // (a logout neither waits for the lock nor reads the session first), and A's section
    // ends without writing, answering that the session ended (409).
    let (addr, held) = (a.addr.clone(), cookie.clone());
    let holder = std::thread::spawn(move || get(&addr, "/locked?hold_ms=1200", Some(&held)));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let waiter = get(&b.addr, "/locked", Some(&cookie));
    assert_eq!(waiter.status, 503, "{waiter:?}");
    let logout = request(&b.addr, "POST", "/logout", Some(&cookie), "");
    assert_eq!(logout.status, 200, "{logout:?}");
    let holder = holder.join().unwrap();
    assert_eq!(holder.status, 409, "the logout was undone: {holder:?}");
    assert!(holder.body.contains("session ended"), "{holder:?}");
    assert_eq!(
        lifecycle(&a),
        Lifecycle {
            created: 1.0,
            loaded: 1.0,
            lock_lost: 1.0,
            ..zero
        }
    );
    assert_eq!(
        lifecycle(&b),
        Lifecycle {
            destroyed: 1.0,
            lock_waits: 1.0,
            lock_timeouts: 1.0,
            ..zero
        }
    );

    // A rotation is a rotation: not a session created and another destroyed (nor the
    // forward it leaves behind a save). The next write, on the other process, loads the
    // successor and counts as one save; a logout destroys one session.
    let put = request(&b.addr, "PUT", "/set/x", None, "1");
    let cookie = put.cookie().expect("a cookie");
    let rotate = request(&a.addr, "POST", "/rotate", Some(&cookie), "");
    assert_eq!(rotate.status, 200, "{rotate:?}");
    let rotated = rotate.cookie().expect("the new id");
    let put = request(&b.addr, "PUT", "/set/y", Some(&rotated), "2");
    assert_eq!(put.status, 200, "{put:?}");
    let logout = request(&a.addr, "POST", "/logout", Some(&rotated), "");
    assert_eq!(logout.status, 200, "{logout:?}");
    assert_eq!(
        lifecycle(&a),
        Lifecycle {
            created: 1.0,
            loaded: 2.0,
            rotated: 1.0,
            destroyed: 1.0,
            lock_lost: 1.0,
            ..zero
        }
    );
    assert_eq!(
        lifecycle(&b),
        Lifecycle {
            created: 1.0,
            loaded: 1.0,
            saved: 1.0,
            destroyed: 1.0,
            lock_waits: 1.0,
            lock_timeouts: 1.0,
            ..zero
        }
    );
}

#[test]
fn without_the_flag_there_is_no_metrics_route() {
    for bin in ["demo", "demo_actix"] {
        let demo = Demo::start_example(bin, &[]);
        assert_eq!(get(&demo.addr, "/metrics", None).status, 404, "{bin}");
    }
}

#[test]
fn metrics_answer_only_get() {
    for bin in ["demo", "demo_actix"] {
        let demo = Demo::start_example(bin, &["--metrics"]);
        let post = request(&demo.addr, "POST", "/metrics", None, "");
        assert_eq!(post.status, 405, "{bin}: {post:?}");
        assert!(post.cookie().is_none(), "{bin}: {post:?}");
    }
}

/// Before any traffic, a scrape already lists every session counter at 0 (and Redis's
/// near-cache counters), so that `rate()` and alerts work from the first scrape.
#[test]
fn every_counter_is_listed_at_zero_before_any_traffic() {
    let redis = RedisServer::start();
    for bin in ["demo", "demo_actix"] {
        let demo = Demo::start_example(bin, &["--store", &redis.url(), "--metrics"]);
        let text = scrape(&demo);
        for name in [
            "sessio_sessions_created_total",
            "sessio_sessions_loaded_total",
            "sessio_sessions_saved_total",
            "sessio_sessions_rotated_total",
            "sessio_sessions_destroyed_total",
            "sessio_conflicts_total",
            "sessio_lock_waits_total",
            "sessio_lock_timeouts_total",
            "sessio_lock_lost_total",
            "sessio_store_errors_total{kind=\"unavailable\"}",
            "sessio_store_errors_total{kind=\"timeout\"}",
            "sessio_near_cache_hits_total",
            "sessio_near_cache_misses_total",
        ] {
            assert!(
                text.lines().any(|l| l == format!("{name} 0")),
                "{bin}: {name} is not listed at 0 before any traffic:\n{text}"
            );
        }
        assert!(
            text.contains("# HELP sessio_sessions_created_total"),
            "{bin}: no help text:\n{text}"
        );
    }
}
