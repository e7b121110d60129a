//! The MongoDB store against a real `mongod` (6.0.5, private servers that the tests start):
//! the whole conformance suite with no client-side serialization (one document's writes
//! are atomic on the server), on a standalone server and on a replica set of three; the TTL
//! index that `setup` creates with the server itself deleting expired documents; and clear
//! errors for bad URLs and dead servers.

use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use sessio::store::{Outcome, Store};
use sessio_mongodb::MongoStore;
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, MongoReplicaSet, MongoServer};

static MONGOD: Mutex<Weak<MongoServer>> = Mutex::new(Weak::new());
static REPLICA_SET: Mutex<Weak<MongoReplicaSet>> = Mutex::new(Weak::new());

async fn setup() -> Fixture<MongoStore> {
    let server = shared(&MONGOD, MongoServer::start);
    let store = MongoStore::connect(&server.url("sessio"))
        .await
        .expect("connect to mongod");
    Fixture::new(store).keeping(server)
}

sessio_store_tests::basic_suite!(setup, Timing::SECONDS);
sessio_store_tests::locking_suite!(setup, Timing::SECONDS);
sessio_store_tests::devices_suite!(setup, Timing::SECONDS);

/// The same suite on a replica set of three, through a connection string naming every
/// member and the set (majority writes, primary reads).
mod replica_set {
    use super::*;

    async fn setup() -> Fixture<MongoStore> {
        let set = shared(&REPLICA_SET, MongoReplicaSet::start);
        let store = MongoStore::connect(&set.url("sessio"))
            .await
            .expect("connect to the replica set");
        Fixture::new(store).keeping(set)
    }

    sessio_store_tests::basic_suite!(setup, Timing::SECONDS);
    sessio_store_tests::locking_suite!(setup, Timing::SECONDS);
    sessio_store_tests::devices_suite!(setup, Timing::SECONDS);
}

/// `setup` creates the TTL index (idempotently), and mongod itself deletes the document
/// of an expired session: the collection shrinks with no read or sweep by sessio.
#[tokio::test]
async fn setup_makes_mongod_delete_expired_sessions() {
    let server = MongoServer::start();
    let url = server.url("ttl");
    let store = MongoStore::connect(&url).await.expect("connect to mongod");
    store.setup().await.expect("the TTL index");
    store.setup().await.expect("setup again is harmless");
    for (key, ttl) in [("session:short", 1), ("session:long", 600)] {
        let created = store
            .create(key, b"x", Duration::from_secs(ttl))
            .await
            .unwrap();
        assert!(matches!(created, Outcome::Done(_)), "{key}: {created:?}");
    }
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    let sessions = client
        .database("ttl")
        .collection::<mongodb::bson::Document>("sessions");
    let started = Instant::now();
    loop {
        let short = sessions
            .count_documents(doc! { "_id": "session:short" })
            .await
            .unwrap();
        if short == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "mongod kept the expired document for 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let long = sessions
        .count_documents(doc! { "_id": "session:long" })
        .await
        .unwrap();
    assert_eq!(long, 1, "a live session was deleted");
}

#[tokio::test]
async fn bad_urls_and_dead_servers_are_clear_errors() {
    let error = MongoStore::connect("mongodb://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("database"), "{error}");
    let port = sessio_test_servers::free_port();
    let error = MongoStore::connect(&format!(
        "mongodb://127.0.0.1:{port}/x?directConnection=true"
    ))
    .await
    .unwrap_err();
    assert!(error.to_string().contains("MongoDB ping failed"), "{error}");
}
