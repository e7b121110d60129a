//! Two demo processes on one private PoloDB server (MongoDB wire protocol): the lock and
//! key-level merging hold across processes.

mod common;

use common::two_processes;
use sessio_store_tests::servers::PoloDbServer;

#[test]
fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
    let server = PoloDbServer::start();
    two_processes::sixty_locked_requests_return_one_to_sixty(&server.url("demo"));
}

#[test]
fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
    let server = PoloDbServer::start();
    two_processes::forty_writes_of_different_keys_are_all_kept(&server.url("demo"));
}
