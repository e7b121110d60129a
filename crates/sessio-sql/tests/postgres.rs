//! The PostgreSQL store against a private server: the whole conformance suite, the
//! sweeper, hostile names, an outage.
#![cfg(feature = "postgres")]

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sessio::store::{Outcome, Store, StoreErrorKind};
use sessio_sql::{PostgresStore, SqlStoreError};
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, PostgresServer};

static SERVER: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());

async fn setup() -> Fixture<PostgresStore> {
    let server = shared(&SERVER, PostgresServer::start);
    let store = PostgresStore::builder()
        .pool_size(4)
        .connect(&server.url())
        .await
        .expect("connect to the private PostgreSQL");
    store.migrate().await.expect("migrate");
    Fixture::new(store).keeping(server)
}

sessio_store_tests::basic_suite!(setup, Timing::FAST);
sessio_store_tests::locking_suite!(setup, Timing::FAST);
sessio_store_tests::devices_suite!(setup, Timing::FAST);

#[tokio::test]
async fn migrate_is_idempotent_and_names_are_checked() {
    let server = shared(&SERVER, PostgresServer::start);
    let store = PostgresStore::builder()
        .schema("auth")
        .table("web_sessions")
        .connect(&server.url())
        .await
        .unwrap();
    for _ in 0..3 {
        store.migrate().await.expect("migrate again");
    }
    assert_eq!(store.table(), "auth.web_sessions");
    let Outcome::Done(_) = store
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created in the configured table");
    };
    for (table, schema) in [
        ("sessions\"; DROP TABLE auth.web_sessions; --", None),
        ("sessions", Some("public\".\"x")),
        ("web sessions", None),
        ("", None),
    ] {
        let mut builder = PostgresStore::builder().table(table);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        let error = builder.connect(&server.url()).await.unwrap_err();
        assert!(
            matches!(error, SqlStoreError::InvalidName { .. }),
            "{table:?} / {schema:?}: {error}"
        );
    }
    // The table survived every attempt.
    assert_eq!(store.load("k").await.unwrap().unwrap().data, b"v");
}

#[tokio::test]
async fn the_sweeper_removes_expired_rows_and_only_those() {
    let server = shared(&SERVER, PostgresServer::start);
    let store = PostgresStore::builder()
        .table("sweep_test")
        .sweep_batch(7)
        .sweep_every(Duration::from_millis(100))
        .connect(&server.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for i in 0..30 {
        let ttl = if i % 3 == 0 { 60_000 } else { 200 };
        let _ = store
            .create(&format!("k{i}"), b"v", Duration::from_millis(ttl))
            .await
            .unwrap();
    }
    let rows = || async {
        let client = store.pool().get().await.unwrap();
        let row = client
            .query_one("SELECT count(*) FROM sweep_test", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    assert_eq!(rows().await, 30);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sweeper = store.spawn_sweeper();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rows().await,
        10,
        "the 20 expired rows are gone, the 10 live stay"
    );
    for i in (0..30).step_by(3) {
        assert!(store.load(&format!("k{i}")).await.unwrap().is_some());
    }
    sweeper.stop();
}

#[tokio::test]
async fn a_stopped_database_is_an_error_and_then_recovers() {
    let mut server = PostgresServer::start();
    let store = PostgresStore::builder()
        .timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_millis(400))
        .connect(&server.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let Outcome::Done(_) = store
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    server.stop_immediate();
    let error = store.load("k").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            StoreErrorKind::Unavailable | StoreErrorKind::Timeout
        ),
        "{error}"
    );
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store.load("k").await {
            Ok(Some(record)) => {
                assert_eq!(record.data, b"v");
                break;
            }
            Ok(None) => panic!("the record was lost"),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("not back 5 s after the restart: {error}"),
        }
    }
}

/// A database in read-only mode (a replica, or `default_transaction_read_only`) refuses
/// writes: a store error the edge answers with `503`, never "no session", and reads go on.
#[tokio::test]
async fn a_read_only_database_is_unavailable_for_writes() {
    let server = shared(&SERVER, PostgresServer::start);
    let writable = PostgresStore::builder()
        .table("read_only_test")
        .connect(&server.url())
        .await
        .unwrap();
    writable.migrate().await.unwrap();
    let Outcome::Done(_) = writable
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let read_only = PostgresStore::builder()
        .table("read_only_test")
        .connect(&format!(
            "{}?options=-c%20default_transaction_read_only%3Don",
            server.url()
        ))
        .await
        .unwrap();
    assert_eq!(read_only.load("k").await.unwrap().unwrap().data, b"v");
    let error = read_only
        .create("other", b"v", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
}
