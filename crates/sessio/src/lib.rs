//! # sessio
//!
//! Server-side HTTP sessions for async Rust: a dict-like session per request, its id in a
//! cookie, its data in a [`Store`](store::Store). This crate is the engine; it knows no web framework and
//! no database driver. Use it through an integration such as `sessio-axum`, with the
//! embedded [`MemoryStore`] or a networked store (`sessio-redis`, `sessio-memcached`,
//! `sessio-mongodb`).
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
//!
//! ## Guarantees
//!
//! These hold on every store that passes the conformance suite, across processes sharing
//! the store, in every interleaving of requests:
//!
//! - **I1 — no lost writes.** A write answered 2xx is visible afterwards in its session (or
//!   in the session it was rotated to), unless a later logout or clear destroyed it.
//!   Saves are conditional and merge key by key on conflict; a write that finds its session
//!   destroyed goes into a new session (with a new cookie), as if it had arrived after the
//!   logout.
//! - **I2 — destroyed stays destroyed.** No save, locked save, rotation or touch recreates
//!   a session that a logout deleted; a logout that raced a rotation ends the rotated
//!   session too.
//! - **I3 — a real lock.** [`Session::lock`] excludes other lock holders in every process,
//!   with a lease and a wait deadline. The holder's save merges plain writes of other keys
//!   and is refused ([`Error::Overwritten`]) rather than overwrite a key another request
//!   changed meanwhile; a rotation by another request ends the section with
//!   [`Error::LockLost`], a logout or the session's expiry with [`Error::Ended`]. Nothing
//!   of a refused section is written.
//! - **I4 — no panics.** Any sequence of public calls, in any order, returns a value or an
//!   error; locking composes with [`Session::cycle_id`] and [`Session::destroy`].
//! - **I5 — read-your-writes** for one client across processes. A store that serves reads
//!   from an in-process cache says so ([`Store::serves_from_cache`](store::Store::serves_from_cache)); the engine then keeps
//!   a write count in the record and in a cookie of its own (`<name>.w`), and a count
//!   newer than the cached copy's is read from the store itself.
//! - **I6 — stale cookies are harmless.** A request carrying a rotated-away or unknown id
//!   never removes or replaces the browser's cookie unless that request itself writes.
//! - **I7 — bounded by bytes.** The [`MemoryStore`] has a byte budget and evicts sessions
//!   nobody came back to first; ids are checked before any store lookup, so a forged id
//!   costs a store one read and nothing that grows.
//! - **I8 — the browser keeps its session.** Whatever order a browser's answers arrive in,
//!   its final cookie is its session (logged in after a login, the successor after a
//!   rotation), holding every write answered 2xx. The id cookie is sent only when the id
//!   is new; a request still carrying an id that [`Session::cycle_id`] moved away follows
//!   it for the rotation grace, unseen and without a cookie; one carrying an id that a
//!   login moved away is refused ([`Error::Superseded`], `409` with `Retry-After`) and
//!   never reaches the logged-in session.
//!
//! Also: ids are 256 random bits from the OS, never adopted when the server did not issue
//! them, and the store is keyed by a hash of the id; a store error is an error, never
//! "no session"; idle and absolute expiry are checked on every load.
//!
//! Where a store cannot give one of these, its docs say so and what to do instead. In the
//! `sanic_session` compatibility mode the record must be the bare JSON object and the
//! cookie the bare id: a rotation cannot leave a forward (writes racing it are lost), the
//! cookie carries no write count (turn a near cache off there), and the Python app's own
//! writes are last-write-wins. With the Redis near cache another process sees a logout
//! after the invalidation's flight time (milliseconds; more under load), so a copy of the
//! cookie replayed in that window still reads as logged in.
//!
//! ## Layout
//!
//! The crate root holds what an application uses: [`SessionManager`], [`Session`],
//! [`Config`], [`Error`], [`MemoryStore`]. The rest lives in modules, each for one role:
//! [`auth`] the options of a login; [`keys`] typed session keys and the keys sessio's own
//! helpers use; [`devices`] the user's devices (list, revoke, a maximum per user);
//! [`store`] the contract a store implements and the types it deals in; [`memory`] the
//! in-memory store's options; [`id`] session ids and custom id generators; [`codec`] and
//! [`clock`] two options of [`Config`]; [`integration`] what a web-framework integration
//! needs; `cookie_store` (feature `cookie-store`) the encrypted cookie store, where the
//! session travels sealed in the browser's cookies and these guarantees narrow to one
//! request (its docs say which hold).
//!
//! Inside, imports run one way, from the leaves up (`scripts/layers.py` checks it):
//!
//! 1. **leaves**, which know no session: `error`, `id`, `clock`, `codec`, `record`,
//!    `keys`, `auth`, `policy`, `seal`, `meter`, `store`, `observe`, `memory`, `devices`;
//! 2. **configuration**, what a manager is told and derives from it once: `config`,
//!    `cookie` (the cookie jar), `carried` and `cookie_store` (the cookie store's sealing);
//! 3. **the engine**, what every session of a manager shares and the store writes that
//!    are not one session's: `engine`;
//! 4. **the per-request session**: `session`, one file per role;
//! 5. **entry points**: `manager`, `integration` (what a web framework calls), and this
//!    file.
#![warn(missing_docs)]

// 1. leaves
pub mod auth;
pub mod clock;
pub mod codec;
pub mod devices;
mod error;
pub mod id;
pub mod keys;
pub mod memory;
mod meter;
mod observe;
mod policy;
mod record;
mod seal;
pub mod store;
// 2. configuration
mod carried;
mod config;
mod cookie;
#[cfg(feature = "cookie-store")]
pub mod cookie_store;
// 3. the engine
mod engine;
// 4. the per-request session
mod session;
// 5. entry points
pub mod integration;
mod manager;

pub use config::{Compat, Config, ConfigError, SameSite};
pub use error::Error;
pub use manager::SessionManager;
pub use memory::MemoryStore;
pub use session::{Session, SessionLock};
