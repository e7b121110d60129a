//! The one retry rule of every conditional write: a write that lost a race (the record
//! changed or vanished between its read and its write) is counted, metered, and retried
//! after a short random pause, until the configured number of attempts
//! (`Config::with_max_retries`) is spent; then the caller answers [`Error::Conflict`].
//! Session saves (`session::persist`), logouts that walk a rotation's forwards, and the
//! devices index all retry through [`Retry`].

use std::time::Duration;

use crate::error::Error;

/// Counts the lost conditional writes of one operation.
#[derive(Debug)]
pub(crate) struct Retry {
    lost: u32,
    max: u32,
}

impl Retry {
    /// At most `max` attempts (at least one).
    pub(crate) fn new(max: u32) -> Self {
        Self {
            lost: 0,
            max: max.max(1),
        }
    }

    /// A write lost its race: waits before the next attempt, or, once every attempt is
    /// spent, returns the error to answer.
    pub(crate) async fn lost(&mut self) -> Result<(), Error> {
        crate::meter::conflict();
        self.lost += 1;
        if self.lost >= self.max {
            return Err(Error::Conflict {
                attempts: self.lost,
            });
        }
        backoff(self.lost).await;
        Ok(())
    }
}

/// Waits a little after a lost conditional write, so that many requests racing on one
/// session spread out instead of colliding again: a random pause of up to `lost` ms (at
/// most 20 ms) from the second loss on.
async fn backoff(lost: u32) {
    if lost < 2 {
        return;
    }
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(lost);
    let ceiling = u64::from(lost.min(20)) * 1000;
    tokio::time::sleep(Duration::from_micros(random % ceiling)).await;
}
