//! Helpers for store authors: the timeout and error mapping every store needs.
//!
//! ```
//! use std::time::Duration;
//! use sessio::store::support::within;
//! use sessio::store::StoreErrorKind;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let slow = async {
//!     tokio::time::sleep(Duration::from_secs(5)).await;
//!     Ok(())
//! };
//! let error = within("load", "example-db at 127.0.0.1:1", Duration::from_millis(10), slow)
//!     .await
//!     .unwrap_err();
//! assert_eq!(error.kind(), StoreErrorKind::Timeout);
//! assert!(error.to_string().contains("example-db at 127.0.0.1:1 did not answer load within 10ms"));
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use super::{StoreError, StoreResult};

/// Runs one store operation `op` against `backend` (a name for messages, e.g.
/// `"Redis at 10.0.0.1:6379"`) and fails with a [`Timeout`](super::StoreErrorKind::Timeout)
/// error that names both if it takes longer than `timeout`.
///
/// # Errors
/// The operation's own error, or the timeout.
pub async fn within<T>(
    op: &str,
    backend: &str,
    timeout: Duration,
    work: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::timeout(format!(
            "{backend} did not answer {op} within {timeout:?}; check that it is up and reachable, or raise the store's timeout"
        ))),
    }
}

/// Milliseconds of a TTL for a backend that counts milliseconds: rounded up, at least 1.
pub fn ttl_millis(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    ms.clamp(1, u128::from(u64::MAX)) as u64
}

/// Whole seconds of a TTL for a backend with a one-second clock: rounded up, at least 1.
pub fn ttl_secs(ttl: Duration) -> u64 {
    (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up() {
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(3)), 3);
        assert_eq!(ttl_secs(Duration::ZERO), 1);
    }
}
