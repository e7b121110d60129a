//! # sessio
//!
//! Server-side HTTP sessions for async Rust: a dict-like session per request, its id in a
//! cookie, its data in a [`Store`]. This crate is the engine; it knows no web framework and
//! no database driver. Use it through an integration such as `sessio-axum`, with the
//! embedded [`MemoryStore`] or a networked store (`sessio-redis`, `sessio-memcached`,
//! `sessio-mongodb`).
//!
//! What it guarantees beyond the usual:
//!
//! - **No lost updates.** Saves are conditional; on a conflict the engine reloads and
//!   re-applies only the keys this request changed. [`Session::update`] is an atomic
//!   read-modify-write of one key, and [`Session::lock`] an exclusive lock shared by every
//!   process on the same store, with a lease and a wait deadline.
//! - **No fixation.** Ids are 256 random bits from the OS; an id the server did not issue,
//!   or that expired, is never adopted. The store is keyed by a hash of the id.
//! - **No silent data loss.** A store error is an error, never "no session".
//! - **Idle and absolute expiry**, checked on every load, with throttled touches for reads.
//!
//! ```
//! use sessio::{Config, MemoryStore, SessionManager};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
//! let session = manager.session(std::iter::empty()); // a request without a cookie
//! let n = session.update("foo", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
//! assert_eq!(n, 1);
//! let set_cookie = session.commit().await?;
//! assert!(set_cookie.unwrap().contains("HttpOnly"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

mod config;
mod error;
mod id;
mod manager;
pub mod memory;
mod record;
mod session;
pub mod store;

pub use config::{Compat, Config, ConfigError, SameSite};
pub use error::Error;
pub use id::SessionId;
pub use manager::SessionManager;
pub use memory::MemoryStore;
pub use session::{Session, SessionLock};
pub use store::{
    Acquired, Fenced, LeaseToken, Loaded, LockingStore, Saved, Store, StoreError, StoreErrorKind,
    StoreResult, Version,
};
