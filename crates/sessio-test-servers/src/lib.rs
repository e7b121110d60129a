//! # sessio-test-servers
//!
//! Private server processes for sessio's tests: each on a free loopback port, stopped on
//! drop. Not published; the store crates' tests and the examples' tests use it as a
//! dev-dependency.
//!
//! Tests never use a server someone left running: they start their own here. When the
//! server's program is missing, the helper panics with what to install.
//!
//! ```no_run
//! let redis = sessio_test_servers::RedisServer::start();
//! println!("{}", redis.url()); // redis://127.0.0.1:PORT, gone when `redis` drops
//! ```
#![warn(missing_docs)]

mod cluster;
mod mariadb;
mod memcached;
mod mongo;
mod postgres;
mod process;
mod proxy;
mod pypi;
mod redis;
mod sentinel;
mod shared;
mod temp;

pub use cluster::RedisCluster;
pub use mariadb::MariaDbServer;
pub use memcached::{memcached_url, MemcachedServer};
#[cfg(feature = "mongodb")]
pub use mongo::MongoReplicaSet;
pub use mongo::MongoServer;
pub use postgres::PostgresServer;
pub use process::{free_port, wait_for_port, Process};
pub use proxy::LossyProxy;
pub use redis::RedisServer;
pub use sentinel::RedisSentinel;
pub use shared::shared;
pub use temp::TempDir;
