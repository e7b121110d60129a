//! Where the engine reads the time: the system's [`SystemClock`] by default, or a
//! [`Clock`] of the application's ([`Config::with_clock`](crate::Config::with_clock)),
//! which is how tests move time by hand.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the engine reads the time. The default is the system clock; tests pass a clock
/// they move by hand ([`Config::with_clock`](crate::Config::with_clock)).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, SystemTime};
/// use sessio::clock::Clock;
///
/// #[derive(Debug)]
/// struct Manual(Mutex<SystemTime>);
/// impl Clock for Manual {
///     fn now(&self) -> SystemTime {
///         *self.0.lock().unwrap()
///     }
/// }
///
/// let clock = Arc::new(Manual(Mutex::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))));
/// let config = sessio::Config::default().with_clock(clock.clone());
/// # let _ = config;
/// *clock.0.lock().unwrap() += Duration::from_secs(60);
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A shared clock.
pub(crate) type SharedClock = Arc<dyn Clock>;

pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}
