//! The SQLite store on a database file: the whole conformance suite, two stores (as two
//! processes would) on one file, a database held locked past the busy timeout.
#![cfg(feature = "sqlite")]

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sessio::store::{Outcome, Store, StoreErrorKind};
use sessio_sql::{SqlStoreError, SqliteStore};
use sessio_store_tests::{Fixture, Timing};
use sessio_test_servers::{shared, TempDir};

static DIR: Mutex<Weak<TempDir>> = Mutex::new(Weak::new());

fn url(dir: &TempDir, file: &str) -> String {
    format!("sqlite://{}", dir.path.join(file).display())
}

async fn setup() -> Fixture<SqliteStore> {
    let dir = shared(&DIR, || TempDir::new("sqlite"));
    let store = SqliteStore::connect(&url(&dir, "conformance.db"))
        .await
        .expect("open the database file");
    store.migrate().await.expect("migrate");
    Fixture::new(store).keeping(dir)
}

sessio_store_tests::basic_suite!(setup, Timing::FAST);
sessio_store_tests::locking_suite!(setup, Timing::FAST);
sessio_store_tests::devices_suite!(setup, Timing::FAST);

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes_and_leases() {
    use sessio::store::{Acquired, LeaseToken};
    let dir = Arc::new(TempDir::new("sqlite-two"));
    let a = SqliteStore::connect(&url(&dir, "shared.db")).await.unwrap();
    let b = SqliteStore::connect(&url(&dir, "shared.db")).await.unwrap();
    a.migrate().await.unwrap();
    b.migrate().await.unwrap();
    let Outcome::Done(_) = a
        .create("k", b"from a", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let seen = b.load("k").await.unwrap().expect("b sees a's record");
    assert_eq!(seen.data, b"from a");
    let token = LeaseToken::generate().unwrap();
    let Acquired::Granted(Some(_)) = a
        .locking()
        .unwrap()
        .acquire("k", &token, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("a locks");
    };
    let other = LeaseToken::generate().unwrap();
    assert_eq!(
        b.locking()
            .unwrap()
            .acquire("k", &other, Duration::from_secs(5))
            .await
            .unwrap(),
        Acquired::Held,
        "b sees a's lease"
    );
    assert!(a.locking().unwrap().release("k", &token).await.unwrap());
}

#[tokio::test]
async fn a_database_locked_past_the_busy_timeout_is_an_error_then_recovers() {
    let dir = TempDir::new("sqlite-busy");
    let store = SqliteStore::builder()
        .busy_timeout(Duration::from_millis(200))
        .timeout(Duration::from_secs(2))
        .connect(&url(&dir, "busy.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // Another connection (another process would do the same) takes the write lock.
    let other = rusqlite::Connection::open(dir.path.join("busy.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let error = store
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    other.execute_batch("COMMIT").unwrap();
    let Outcome::Done(_) = store
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created once the lock is gone");
    };
    assert_eq!(store.load("k").await.unwrap().unwrap().data, b"v");
}

#[tokio::test]
async fn a_schema_and_hostile_names_are_refused() {
    let dir = TempDir::new("sqlite-names");
    let error = SqliteStore::builder()
        .schema("main")
        .connect(&url(&dir, "x.db"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SqlStoreError::Unsupported { .. }),
        "{error}"
    );
    let error = SqliteStore::builder()
        .table("t\"; DROP TABLE x; --")
        .connect(&url(&dir, "x.db"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SqlStoreError::InvalidName { .. }),
        "{error}"
    );
}

/// A database file opened read-only refuses writes with a store error (`503` at the edge).
#[tokio::test]
async fn a_read_only_file_is_unavailable_for_writes() {
    let dir = TempDir::new("sqlite-ro");
    let writable = SqliteStore::connect(&url(&dir, "ro.db")).await.unwrap();
    writable.migrate().await.unwrap();
    let Outcome::Done(_) = writable
        .create("k", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let read_only = SqliteStore::connect(&format!("{}?mode=ro", url(&dir, "ro.db")))
        .await
        .unwrap();
    assert_eq!(read_only.load("k").await.unwrap().unwrap().data, b"v");
    let error = read_only
        .create("other", b"v", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
}

/// The sweeper deletes the expired rows, in batches, and only those.
#[tokio::test]
async fn the_sweeper_removes_expired_rows_and_only_those() {
    let dir = TempDir::new("sqlite-sweep");
    let store = SqliteStore::builder()
        .sweep_batch(3)
        .connect(&url(&dir, "sweep.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for i in 0..10 {
        let ttl = if i < 4 { 60_000 } else { 150 };
        let Outcome::Done(_) = store
            .create(&format!("k{i}"), b"v", Duration::from_millis(ttl))
            .await
            .unwrap()
        else {
            panic!("created");
        };
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.sweep().await.unwrap(),
        6,
        "the six expired rows, in batches of 3"
    );
    let rows: i64 = rusqlite::Connection::open(dir.path.join("sweep.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 4);
    for i in 0..4 {
        assert!(store.load(&format!("k{i}")).await.unwrap().is_some());
    }
}

/// A statement whose caller gave up (its timeout passed while it waited for a connection)
/// is not run later: a write the caller was told failed does not land behind its back.
#[tokio::test]
async fn a_write_whose_caller_timed_out_is_not_run_late() {
    let dir = TempDir::new("sqlite-late");
    let store = SqliteStore::builder()
        .pool_size(1)
        .busy_timeout(Duration::from_millis(800))
        .timeout(Duration::from_millis(100))
        .connect(&url(&dir, "late.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let other = rusqlite::Connection::open(dir.path.join("late.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The first write takes the only connection and waits on the lock; the second queues.
    let first = store.create("first", b"v", Duration::from_secs(60));
    let second = store.create("second", b"v", Duration::from_secs(60));
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap_err().kind(), StoreErrorKind::Timeout);
    assert_eq!(second.unwrap_err().kind(), StoreErrorKind::Timeout);
    other.execute_batch("COMMIT").unwrap();
    // Let the first statement finish its busy wait (it had started, it may land).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let fresh = SqliteStore::connect(&url(&dir, "late.db")).await.unwrap();
    assert!(
        fresh.load("second").await.unwrap().is_none(),
        "the queued write was skipped"
    );
}

#[tokio::test]
async fn urls_that_name_no_file_are_refused() {
    for url in ["sqlite::memory:", "sqlite://", "postgres://x/y"] {
        let error = SqliteStore::connect(url).await.unwrap_err();
        assert!(
            matches!(error, SqlStoreError::InvalidUrl { .. }),
            "{url}: {error}"
        );
    }
}

/// Writes stuck behind another process's write lock never hold up reads: WAL readers do
/// not wait for the writer, and neither do the store's reader connections.
#[tokio::test]
async fn reads_go_on_while_writes_wait_for_another_processs_lock() {
    let dir = TempDir::new("sqlite-reads");
    let store = SqliteStore::builder()
        .pool_size(2)
        .busy_timeout(Duration::from_millis(1500))
        .timeout(Duration::from_secs(2))
        .connect(&url(&dir, "reads.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let Outcome::Done(_) = store
        .create("read", b"v", Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("created");
    };
    let other = rusqlite::Connection::open(dir.path.join("reads.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let writes: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(&format!("w{i}"), b"v", Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let loaded = store.load("read").await;
        assert_eq!(
            loaded.expect("a read while writes wait").unwrap().data,
            b"v"
        );
    }
    for write in writes {
        let error = write.await.unwrap().unwrap_err();
        assert!(
            matches!(
                error.kind(),
                StoreErrorKind::Unavailable | StoreErrorKind::Timeout
            ),
            "{error}"
        );
    }
    other.execute_batch("COMMIT").unwrap();
}
