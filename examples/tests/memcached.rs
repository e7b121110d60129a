//! Two demo processes on one private memcached: the lock and key-level merging hold across
//! processes.

mod common;

use common::two_processes;
use sessio_test_servers::{memcached_url, MemcachedServer};

#[test]
fn sixty_locked_requests_over_two_processes_return_one_to_sixty() {
    let server = MemcachedServer::start();
    two_processes::sixty_locked_requests_return_one_to_sixty(&memcached_url(&[&server]));
}

#[test]
fn forty_writes_of_different_keys_over_two_processes_are_all_kept() {
    let server = MemcachedServer::start();
    two_processes::forty_writes_of_different_keys_are_all_kept(&memcached_url(&[&server]));
}
