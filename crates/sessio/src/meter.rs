//! Metrics through the [`metrics`] facade. Nothing is recorded unless the application
//! installs a recorder (such as `metrics-exporter-prometheus`); without one each call is
//! a no-op.
//!
//! The session counters count what a request did to a session, once each, whatever store
//! calls it took: a rotation is one `rotated` (not a session created and another
//! destroyed, nor the forward it leaves a save), a session begun under the lock is one
//! `created`, and a logout that also ends the successor of a racing rotation counts
//! each live session it ended.
//!
//! | name | kind | counts | labels |
//! |---|---|---|---|
//! | `sessio_sessions_created_total` | counter | a new session's first write | |
//! | `sessio_sessions_loaded_total` | counter | a live session read for a request (first use, or taking its lock) | |
//! | `sessio_sessions_saved_total` | counter | a write of an existing session's changes | |
//! | `sessio_sessions_rotated_total` | counter | a session moved to a new id | |
//! | `sessio_sessions_destroyed_total` | counter | a live session ended (logout, emptied, revoked) | |
//! | `sessio_conflicts_total` | counter | a write that met a concurrent change, then merged and retried | |
//! | `sessio_lock_waits_total` | counter | a lock found held, then waited for | |
//! | `sessio_lock_timeouts_total` | counter | a lock wait that ran out | |
//! | `sessio_lock_lost_total` | counter | a locked section that ended unwritten (lease lapsed, or the session rotated or destroyed by another request) | |
//! | `sessio_store_errors_total` | counter | a failed store call | `kind`: unavailable, timeout, full, protocol |
//! | `sessio_store_call_seconds` | histogram | each store call's latency | `store`, `op` |
//! | `sessio_near_cache_hits_total`, `sessio_near_cache_misses_total` | counter | Redis near-cache reads | |
//! | `sessio_memory_store_bytes`, `sessio_memory_store_entries` | gauge | the memory store's size | |

use std::time::Duration;

use crate::store::StoreErrorKind;

/// The counters known in advance, with their help text.
const COUNTERS: [(&str, &str); 9] = [
    (
        "sessio_sessions_created_total",
        "new sessions written for the first time",
    ),
    (
        "sessio_sessions_loaded_total",
        "live sessions read for a request",
    ),
    (
        "sessio_sessions_saved_total",
        "writes of an existing session's changes",
    ),
    (
        "sessio_sessions_rotated_total",
        "sessions moved to a new id",
    ),
    (
        "sessio_sessions_destroyed_total",
        "live sessions ended (logout, emptied, revoked)",
    ),
    (
        "sessio_conflicts_total",
        "writes that met a concurrent change, merged and retried",
    ),
    (
        "sessio_lock_waits_total",
        "session locks found held and waited for",
    ),
    (
        "sessio_lock_timeouts_total",
        "session lock waits that ran out",
    ),
    (
        "sessio_lock_lost_total",
        "locked sections that ended unwritten",
    ),
];

/// Describes every metric and exports each counter at 0, so that a scrape before any
/// traffic already lists them (`rate()` and alerts work from the first scrape). Called
/// when a manager is built: with a recorder installed before that, nothing is missing.
pub(crate) fn register() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
    metrics::describe_counter!(
        "sessio_store_errors_total",
        "failed session store calls, by kind"
    );
    for kind in [
        StoreErrorKind::Unavailable,
        StoreErrorKind::Timeout,
        StoreErrorKind::Full,
        StoreErrorKind::Protocol,
    ] {
        metrics::counter!("sessio_store_errors_total", "kind" => kind_label(kind)).increment(0);
    }
    metrics::describe_histogram!(
        "sessio_store_call_seconds",
        metrics::Unit::Seconds,
        "latency of each session store call, by store and operation"
    );
}

/// One store call took `took`.
pub(crate) fn store_call(store: &'static str, op: &'static str, took: Duration) {
    metrics::histogram!("sessio_store_call_seconds", "store" => store, "op" => op)
        .record(took.as_secs_f64());
}

/// A new session was written for the first time.
pub(crate) fn created() {
    metrics::counter!("sessio_sessions_created_total").increment(1);
}

/// A live session was read for a request.
pub(crate) fn loaded() {
    metrics::counter!("sessio_sessions_loaded_total").increment(1);
}

/// An existing session's changes were written.
pub(crate) fn saved() {
    metrics::counter!("sessio_sessions_saved_total").increment(1);
}

/// A session moved to a new id.
pub(crate) fn rotated() {
    metrics::counter!("sessio_sessions_rotated_total").increment(1);
}

/// A live session was ended.
pub(crate) fn destroyed() {
    metrics::counter!("sessio_sessions_destroyed_total").increment(1);
}

/// A write met a concurrent change and is retried.
pub(crate) fn conflict() {
    metrics::counter!("sessio_conflicts_total").increment(1);
}

/// A locked section ended without writing: the lock was not ours any more.
pub(crate) fn lock_lost() {
    metrics::counter!("sessio_lock_lost_total").increment(1);
}

/// A store call failed.
pub(crate) fn store_error(kind: StoreErrorKind) {
    metrics::counter!("sessio_store_errors_total", "kind" => kind_label(kind)).increment(1);
}

/// The label of an error kind.
pub(crate) fn kind_label(kind: StoreErrorKind) -> &'static str {
    match kind {
        StoreErrorKind::Unavailable => "unavailable",
        StoreErrorKind::Timeout => "timeout",
        StoreErrorKind::Full => "full",
        StoreErrorKind::Protocol => "protocol",
    }
}

/// A lock was found held and is being waited for.
pub(crate) fn lock_wait() {
    metrics::counter!("sessio_lock_waits_total").increment(1);
}

/// A lock wait ran out.
pub(crate) fn lock_timeout() {
    metrics::counter!("sessio_lock_timeouts_total").increment(1);
}

/// The memory store's size now.
pub(crate) fn memory_store(bytes: usize, entries: usize) {
    metrics::gauge!("sessio_memory_store_bytes").set(bytes as f64);
    metrics::gauge!("sessio_memory_store_entries").set(entries as f64);
}
