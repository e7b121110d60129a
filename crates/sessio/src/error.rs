//! Errors of session operations.

use std::time::Duration;

use crate::StoreError;

/// Why a session operation failed.
///
/// [`Error::Store`] and the lock errors are the server's trouble, not the client's: the
/// axum layer answers them with `503 Service Unavailable` by default. The others are
/// programming errors in the application (500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed; the session's state is unknown, so nothing was assumed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Another request held the session lock past the configured wait.
    #[error("waited {waited:?} for the session lock, which another request holds; retry later, or raise Config::with_lock_wait")]
    LockTimeout {
        /// How long `lock()` waited.
        waited: Duration,
    },

    /// The lock's lease lapsed before the guarded work was saved, so the save was refused
    /// (another request may hold the lock now).
    #[error("the session lock's lease lapsed before its changes were saved; nothing was written. Raise Config::with_lock_lease above the longest guarded section")]
    LockLost,

    /// The store has no lock ability.
    #[error("this session store does not implement LockingStore, so Session::lock is unavailable")]
    LockUnsupported,

    /// `lock()` was called while this request already holds the session lock.
    #[error(
        "this request already holds the session lock; unlock the first guard before locking again"
    )]
    AlreadyLocked,

    /// The record kept changing under concurrent requests; every conditional save lost.
    #[error("gave up saving the session after {attempts} conflicting concurrent writes; retry the request, or raise Config::with_max_retries")]
    Conflict {
        /// How many saves were attempted.
        attempts: u32,
    },

    /// A value could not be turned into JSON.
    #[error(
        "cannot store the value for session key {key:?}: it does not serialize to JSON: {source}"
    )]
    Serialize {
        /// The session key.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value does not have the type asked for.
    #[error("the value under session key {key:?} does not deserialize into the requested type: {source}")]
    Deserialize {
        /// The session key.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// The encoded session is larger than the configured maximum; it was not saved.
    #[error("the session is {size} bytes encoded, over the maximum of {max}; store less in it or raise Config::with_max_size")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Configured maximum.
        max: usize,
    },

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl Error {
    /// Whether the failure is the server's temporary trouble (store down, lock busy,
    /// contention), for which a client may simply retry: such errors map to `503`.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Store(_) | Self::LockTimeout { .. } | Self::LockLost | Self::Conflict { .. }
        )
    }

    /// A suggested `Retry-After` for errors worth retrying soon (lock contention).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::LockTimeout { .. } | Self::Conflict { .. } | Self::LockLost => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }
}
