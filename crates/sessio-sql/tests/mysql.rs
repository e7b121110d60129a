//! The MySQL store against a private MariaDB: the whole conformance suite, the sweeper,
//! hostile names.
#![cfg(feature = "mysql")]

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sessio::store::{Outcome, Store};
use sessio_sql::{MySqlStore, SqlStoreError};
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, MariaDbServer};

static SERVER: Mutex<Weak<MariaDbServer>> = Mutex::new(Weak::new());

async fn setup() -> Fixture<MySqlStore> {
    let server = shared(&SERVER, MariaDbServer::start);
    let store = MySqlStore::builder()
        .pool_size(4)
        .connect(&server.url())
        .await
        .expect("connect to the private MariaDB");
    store.migrate().await.expect("migrate");
    Fixture::new(store).keeping(server)
}

sessio_store_tests::basic_suite!(setup, Timing::FAST);
sessio_store_tests::locking_suite!(setup, Timing::FAST);
sessio_store_tests::devices_suite!(setup, Timing::FAST);

#[tokio::test]
async fn hostile_names_are_refused_and_the_sweeper_keeps_live_rows() {
    let server = shared(&SERVER, MariaDbServer::start);
    for table in ["x`; DROP TABLE sessions; --", "a.b", "a b"] {
        let error = MySqlStore::builder()
            .table(table)
            .connect(&server.url())
            .await
            .unwrap_err();
        assert!(
            matches!(error, SqlStoreError::InvalidName { .. }),
            "{error}"
        );
    }
    let store = MySqlStore::builder()
        .table("sweep_test")
        .sweep_batch(4)
        .connect(&server.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    for i in 0..12 {
        let ttl = if i % 2 == 0 { 60_000 } else { 200 };
        let Outcome::Done(_) = store
            .create(&format!("k{i}"), b"v", Duration::from_millis(ttl))
            .await
            .unwrap()
        else {
            panic!("created");
        };
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.sweep().await.unwrap(), 6);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sweep_test")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 6);
    for i in (0..12).step_by(2) {
        assert!(store.load(&format!("k{i}")).await.unwrap().is_some());
    }
    // A key longer than the key column is refused, not cut.
    let long = "k".repeat(800);
    let error = store
        .create(&long, b"v", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
}
