//! [`shared`]: one server for the overlapping tests of a test binary.

/// One server shared by the tests of a binary that overlap in time: the first caller
/// starts it, later callers get the same one while any test still holds it, and it stops
/// when the last holder drops it (a later test starts a new one).
///
/// ```no_run
/// use std::sync::{Mutex, Weak};
/// use sessio_test_servers::{shared, RedisServer};
///
/// static REDIS: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
/// let server = shared(&REDIS, RedisServer::start);
/// # let _ = server;
/// ```
pub fn shared<T>(
    slot: &'static std::sync::Mutex<std::sync::Weak<T>>,
    start: impl FnOnce() -> T,
) -> std::sync::Arc<T> {
    let mut weak = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = weak.upgrade() {
        return server;
    }
    let server = std::sync::Arc::new(start());
    *weak = std::sync::Arc::downgrade(&server);
    server
}
