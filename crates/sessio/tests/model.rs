//! The model-based property test on the memory store: 500 random interleavings of API calls
//! from several requests on one session, checked against the reference model.

use proptest::prelude::*;
use sessio::MemoryStore;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn random_interleavings_match_the_model(ops in sessio_store_tests::model::ops()) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(sessio_store_tests::model::check(&MemoryStore::default(), &ops));
    }
}
