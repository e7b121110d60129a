//! Two demo processes on one private Redis: the lock and key-level merging hold across
//! processes; and the service survives Redis going down and coming back.

mod common;

use std::time::{Duration, Instant};

use common::{get, two_processes, Demo};
use sessio_store_tests::servers::RedisServer;

#[test]
fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
    let redis = RedisServer::start();
    two_processes::sixty_locked_requests_return_one_to_sixty(&redis.url());
}

#[test]
fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
    let redis = RedisServer::start();
    two_processes::forty_writes_of_different_keys_are_all_kept(&redis.url());
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

/// A demo writing MessagePack and one writing JSON on one Redis continue each other's
/// sessions: records say their codec, so a codec can change while sessions live.
#[test]
fn messagepack_and_json_processes_share_sessions() {
    let redis = RedisServer::start();
    let msgpack = Demo::start(&["--store", &redis.url(), "--codec", "msgpack"]);
    let json = Demo::start(&["--store", &redis.url()]);
    let cookie = get(&msgpack.addr, "/", None).cookie().expect("a cookie");
    for (i, demo) in [&json, &msgpack, &json].into_iter().enumerate() {
        assert_eq!(
            get(&demo.addr, "/", Some(&cookie)).body,
            (i + 2).to_string()
        );
    }
    let value = r#"{"a":[1,2.5,"é",null,true],"b":{"c":-7}}"#;
    let set = common::request(&msgpack.addr, "PUT", "/set/x", Some(&cookie), value);
    assert_eq!(set.status, 200, "{set:?}");
    let read = get(&json.addr, "/get/x", Some(&cookie));
    let read: serde_json::Value = serde_json::from_str(&read.body).unwrap();
    assert_eq!(
        read,
        serde_json::from_str::<serde_json::Value>(value).unwrap()
    );
}
