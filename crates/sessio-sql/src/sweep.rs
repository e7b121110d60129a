//! The background sweeper: deletes expired rows in bounded batches.

use tokio::task::JoinHandle;

use crate::{Database, SqlStore};

/// A running sweeper (see [`SqlStore::spawn_sweeper`]). It stops when this handle is
/// dropped or [`stop`](Self::stop)ped; it never keeps the store alive on its own terms.
#[derive(Debug)]
#[must_use = "the sweeper stops when its handle is dropped"]
pub struct Sweeper {
    task: JoinHandle<()>,
}

impl Sweeper {
    /// Stops the sweeper (a batch in flight is abandoned; its statement either ran or not).
    pub fn stop(self) {
        self.task.abort();
    }

    /// Lets the sweeper run for as long as the runtime does, without a handle to keep.
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<D: Database> SqlStore<D> {
    /// Starts deleting expired rows every [`sweep_every`](crate::SqlStoreBuilder::sweep_every),
    /// in batches of [`sweep_batch`](crate::SqlStoreBuilder::sweep_batch) rows, on the
    /// current tokio runtime.
    ///
    /// Expired rows are already invisible (every read checks the expiry); the sweeper only
    /// reclaims their space. Any number of processes may sweep the same table at once:
    /// each batch is one `DELETE` (on PostgreSQL, of rows picked with `FOR UPDATE SKIP
    /// LOCKED`, so concurrent sweepers take different rows). A failed sweep is logged and
    /// tried again at the next interval.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_sweeper(&self) -> Sweeper {
        let store = self.clone();
        let every = self.sweep_every();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.sweep().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(rows = n, table = store.table(), "swept expired sessions")
                    }
                    Err(error) => {
                        tracing::warn!(%error, table = store.table(), "sweeping expired sessions failed")
                    }
                }
            }
        });
        Sweeper { task }
    }
}
