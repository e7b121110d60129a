//! Errors of session operations, and of store operations.

use std::fmt;
use std::time::Duration;

/// Why a session operation failed.
///
/// Each error knows the HTTP answer it deserves ([`status`](Self::status)): the store's
/// trouble and lock contention are `503` (retry later), a session over the size limit is
/// `413`, a value nested too deeply is `422`, a request whose session a login replaced
/// meanwhile and a locked section whose session ended are `409`, a feature the store or
/// configuration lacks is `501`, and programming errors are `500`. Every `503`, and the
/// `409` of [`Error::Superseded`], comes with a [`retry_after`](Self::retry_after).
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

    /// The lock's lease lapsed, or the session was rotated or destroyed by another request
    /// while locked, before the guarded work was saved; nothing was written.
    #[error("the session lock was lost before its changes were saved, because its lease lapsed (raise Config::with_lock_lease above the longest guarded section) or another request rotated the session meanwhile; nothing was written")]
    LockLost,

    /// The store has no lock ability.
    #[error("this session store cannot lock (its Store::locking returns None), so Session::lock is unavailable; use a store that implements LockingStore (its docs say so), or guard the work with a lock of your own")]
    LockUnsupported,

    /// The user's devices index is not configured, so sessions cannot be listed or
    /// revoked.
    #[error("the user's devices index is off, so sessions cannot be listed or revoked; turn it on with Config::with_devices, on a store that keeps records until they expire (one whose Store::keeps_live_records is true)")]
    DevicesOff,

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

    /// A value is nested more deeply than a session can hold and read back.
    #[error("the value for session key {key:?} is nested more than {max} levels deep; a session could not read it back. Store a flatter value")]
    TooDeep {
        /// The session key.
        key: String,
        /// The deepest nesting accepted.
        max: usize,
    },

    /// The encoded session is larger than the configured maximum; it was not saved.
    #[error("the session is {size} bytes encoded, over the maximum of {max}; store less in it or raise Config::with_max_size")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Configured maximum.
        max: usize,
    },

    /// The sealed session needs more cookies than the cookie store may use; it was not
    /// saved, and the browser keeps its previous cookies.
    #[error("the sealed session is {size} bytes, over the {max} bytes that the cookie store's chunks hold; store less in it or raise CookieStore::with_max_chunks")]
    CookieTooLarge {
        /// Sealed size, in bytes of cookie value.
        size: usize,
        /// What the configured chunks hold.
        max: usize,
    },

    /// [`Session::commit`](crate::Session::commit) was called on a session whose response
    /// needs several `Set-Cookie` headers (the cookie store's chunks, or the write-count
    /// cookie of a store that serves reads from a cache); the integration must call
    /// [`Session::commit_cookies`](crate::Session::commit_cookies).
    #[error("this session's response needs several Set-Cookie headers (the cookie store splits large sessions; a store that serves reads from a cache adds a write-count cookie); call Session::commit_cookies instead of Session::commit")]
    SeveralCookies,

    /// Another request changed a key that this request changed under the lock; the
    /// holder's save would have overwritten it, so nothing was written.
    #[error("another request changed session key {key:?} while this request held the session lock and changed it too; nothing was written. Retry the request")]
    Overwritten {
        /// The key both changed.
        key: String,
    },

    /// The session ended while this request held its lock: it expired (idle or absolute
    /// lifetime) or another request logged it out. Nothing of the locked section was
    /// written; the client's next request starts a new session, so a plain retry is not
    /// what the user wants.
    #[error("the session ended (it expired, or another request logged it out) while this request held its lock; nothing was written. The client's next request starts a new session")]
    Ended,

    /// The session id this request carried was rotated away by a login (on another
    /// request) before this request could write, or this request logs in on a session
    /// that another request rotated meanwhile (a cookie renewal, say), or the id is more
    /// rotations old than a request follows (the client holds a newer one): the request is
    /// refused, and its client keeps the cookie it has. A browser's own request that raced
    /// simply retries with the cookie it holds by then; a request carrying an id planted
    /// before a login (session fixation) never reaches the logged-in session.
    #[error("the session id this request carried was replaced (by a login, or by more rotations than a request follows) while the request ran; nothing was written. Retry the request: the client's current cookie carries the new id")]
    Superseded,

    /// An earlier store error in this request left the session's state unknown.
    #[error("an earlier session store error in this request left the session unknown; nothing more is read or written for it")]
    Poisoned,

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
            Self::Store(_)
                | Self::LockTimeout { .. }
                | Self::LockLost
                | Self::Conflict { .. }
                | Self::Overwritten { .. }
                | Self::Poisoned
        )
    }

    /// The `Retry-After` to send with this error: every retryable answer (each `503` and
    /// the `409` of [`Error::Superseded`]) has one; other errors have none.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Superseded => Some(Duration::from_secs(1)),
            _ if self.is_unavailable() => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The HTTP status this error deserves: `503` for [`is_unavailable`](Self::is_unavailable),
    /// `409` for [`Error::Superseded`] and [`Error::Ended`], `413` for [`Error::TooLarge`] and
    /// [`Error::CookieTooLarge`], `422` for [`Error::TooDeep`], `501` for
    /// [`Error::LockUnsupported`] and [`Error::DevicesOff`], `500` otherwise.
    pub fn status(&self) -> u16 {
        match self {
            _ if self.is_unavailable() => 503,
            Self::Superseded | Self::Ended => 409,
            Self::TooLarge { .. } | Self::CookieTooLarge { .. } => 413,
            Self::TooDeep { .. } => 422,
            Self::LockUnsupported | Self::DevicesOff => 501,
            _ => 500,
        }
    }

    /// A short body text for the response, safe to show a client (no internals).
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::Store(_) | Self::Poisoned => "session store unavailable, please retry\n",
            _ if self.is_unavailable() => "session busy, please retry\n",
            Self::Superseded => "the session's id changed while this request ran: please retry\n",
            Self::Ended => "the session ended while this request ran: nothing was saved\n",
            Self::TooLarge { .. } | Self::CookieTooLarge { .. } => {
                "session too large: the data was not saved\n"
            }
            Self::TooDeep { .. } => "value nested too deeply for the session: not saved\n",
            Self::DevicesOff => "the devices index is not available on this server\n",
            Self::LockUnsupported => "this server's session store cannot lock sessions\n",
            _ => "session error\n",
        }
    }
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or refused the connection.
    Unavailable,
    /// The store did not answer within the configured timeout.
    Timeout,
    /// The store is full and its policy is to refuse new records.
    Full,
    /// The store answered something the client could not understand.
    Protocol,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "session store unavailable",
            Self::Timeout => "session store timed out",
            Self::Full => "session store full",
            Self::Protocol => "unexpected answer from the session store",
        })
    }
}

/// A store operation failed. This is never "absent": the engine reports it to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A new error of `kind`, with a message that says what to check.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The store could not be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Unavailable, message)
    }

    /// The store did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Timeout, message)
    }

    /// The store is full.
    pub fn full(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Full, message)
    }

    /// The store answered something unexpected.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Protocol, message)
    }

    /// Attaches the underlying error (a driver's, an I/O error).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}
