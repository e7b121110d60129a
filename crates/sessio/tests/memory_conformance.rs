//! The in-memory store passes the store conformance suite, one test per case.

use sessio::MemoryStore;
use sessio_store_tests::{Fixture, Timing};

async fn memory() -> Fixture<MemoryStore> {
    Fixture::new(MemoryStore::default())
}

sessio_store_tests::basic_suite!(memory, Timing::FAST);
sessio_store_tests::locking_suite!(memory, Timing::FAST);
sessio_store_tests::devices_suite!(memory, Timing::FAST);
