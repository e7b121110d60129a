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

/// A case the generator found: a request sent before a login whose only change left is a
/// plain rotation of a session another request rotated already (dropped, not refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redundant_rotation_after_a_login_is_dropped() {
    use sessio_store_tests::model::{check, Op};
    let ops = [
        Op::Rotate(2),
        Op::LockedIncrement(0, 0),
        Op::Update(2, 0),
        Op::Login(1),
        Op::Update(0, 0),
        Op::Rotate(0),
        Op::Update(1, 0),
    ];
    check(&MemoryStore::default(), &ops).await;
}
