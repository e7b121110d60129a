//! Metrics through the [`metrics`] facade. Nothing is recorded unless the application
//! installs a recorder (such as `metrics-exporter-prometheus`); without one each call is
//! a no-op.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `sessio_sessions_created_total` | counter | |
//! | `sessio_sessions_loaded_total` | counter | |
//! | `sessio_sessions_saved_total` | counter | |
//! | `sessio_sessions_destroyed_total` | counter | |
//! | `sessio_conflicts_total` | counter (each one is retried or merged) | |
//! | `sessio_lock_waits_total` | counter (a lock found held, then waited for) | |
//! | `sessio_lock_timeouts_total` | counter | |
//! | `sessio_lock_lost_total` | counter (a write refused: the lease was another's) | |
//! | `sessio_store_errors_total` | counter | `kind`: unavailable, timeout, full, protocol |
//! | `sessio_store_call_seconds` | histogram | `store`, `op` |
//! | `sessio_near_cache_hits_total`, `sessio_near_cache_misses_total` | counter | |
//! | `sessio_memory_store_bytes`, `sessio_memory_store_entries` | gauge | |

use std::time::Duration;

use crate::store::StoreErrorKind;

/// The counts one store call's outcome stands for.
pub(crate) fn store_call(
    store: &'static str,
    op: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    metrics::histogram!("sessio_store_call_seconds", "store" => store, "op" => op)
        .record(took.as_secs_f64());
    let counter = match (op, outcome) {
        ("load" | "load_fresh", "found") => "sessio_sessions_loaded_total",
        ("create", "done") => "sessio_sessions_created_total",
        ("save" | "save_locked", "done") => "sessio_sessions_saved_total",
        ("delete" | "delete_if" | "delete_locked", "done") => "sessio_sessions_destroyed_total",
        (_, "conflict") => "sessio_conflicts_total",
        (_, "lease_lost") => "sessio_lock_lost_total",
        _ => return,
    };
    metrics::counter!(counter).increment(1);
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
