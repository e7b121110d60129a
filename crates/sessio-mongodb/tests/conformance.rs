//! The MongoDB store passes the whole conformance suite against a private PoloDB server
//! (MongoDB wire protocol) started by the tests. PoloDB does not make a write atomic against
//! concurrent writes, which MongoDB does for one document, so the store's operations are
//! applied one at a time on the client side (see `sessio_store_tests::serialized`).
//! PoloDB answers each request after ~40 ms, so the suite uses second-scale leases and TTLs
//! (`Timing::SECONDS`): with 300 ms ones, a busy machine let a lease lapse between an
//! acquire and the save under it (seen in CI).

use std::sync::{Mutex, Weak};

use sessio_mongodb::MongoStore;
use sessio_store_tests::serialized::Serialized;
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, PoloDbServer};

static POLODB: Mutex<Weak<PoloDbServer>> = Mutex::new(Weak::new());

async fn setup() -> Fixture<Serialized<MongoStore>> {
    let server = shared(&POLODB, PoloDbServer::start);
    let store = MongoStore::connect(&server.url("sessio"))
        .await
        .expect("connect to PoloDB");
    Fixture::new(Serialized::new(store)).keeping(server)
}

sessio_store_tests::basic_suite!(setup, Timing::SECONDS);
sessio_store_tests::locking_suite!(setup, Timing::SECONDS);
sessio_store_tests::devices_suite!(setup, Timing::SECONDS);

#[tokio::test]
async fn setup_reports_a_server_without_index_support_clearly() {
    let server = PoloDbServer::start();
    let store = MongoStore::connect(&server.url("sessio"))
        .await
        .expect("connect to PoloDB");
    // PoloDB has no createIndexes command; MongoDB creates the TTL index. Either way the
    // call must answer, and a refusal must say what failed.
    if let Err(error) = store.setup().await {
        assert!(error.to_string().contains("TTL index"), "{error}");
    }
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
