//! `GET /metrics` (the demos' `--metrics`, Prometheus text) after a scripted sequence on
//! a private Redis: 10 new sessions, concurrent writes until 5 conflicts were retried,
//! then Redis killed and one request answered 503. Run against both demos.

mod common;

use common::{get, request, Demo};
use sessio_store_tests::servers::RedisServer;

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

fn scripted_sequence_shows_in_the_metrics(bin: &str) {
    let mut redis = RedisServer::start();
    let demo = Demo::start_example(bin, &["--store", &redis.url(), "--metrics"]);
    let metrics = || {
        let answer = get(&demo.addr, "/metrics", None);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.cookie().is_none(), "a scrape made a session");
        answer.body
    };

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

#[test]
fn without_the_flag_there_is_no_metrics_route() {
    let demo = Demo::start(&[]);
    assert_eq!(get(&demo.addr, "/metrics", None).status, 404);
}
