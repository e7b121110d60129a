//! The model-based property test on a private redis-server, near cache on: 500 random
//! interleavings of API calls from several requests on one session, checked against the
//! reference model.

use proptest::prelude::*;
use sessio_redis::RedisStore;
use sessio_test_servers::RedisServer;

#[test]
fn random_interleavings_match_the_model_on_redis() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime
        .block_on(RedisStore::connect(&server.url()))
        .expect("connect to the private redis-server");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(500));
    runner
        .run(&sessio_store_tests::model::ops(), |ops| {
            runtime.block_on(sessio_store_tests::model::check(&store, &ops));
            Ok(())
        })
        .unwrap();
}
