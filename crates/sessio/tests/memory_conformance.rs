//! The in-memory store passes the store conformance suite.

use sessio::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_conformance_suite() {
    sessio_store_tests::run_all(MemoryStore::default(), sessio_store_tests::Timing::FAST).await;
}
