//! # sessio-sql
//!
//! SQL stores for [`sessio`]: PostgreSQL, SQLite and MySQL/MariaDB, one crate with a
//! feature per database (`postgres`, `sqlite`, `mysql`).
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use sessio_sql::PostgresStore;
//!
//! let store = PostgresStore::connect("postgres://app@127.0.0.1:5432/app").await?;
//! store.migrate().await?; // creates the table and its index; safe to run every start
//! let sweeper = store.spawn_sweeper(); // deletes expired rows in the background
//! # drop(sweeper);
//! # Ok(()) }
//! ```
//!
//! ## Why one crate, and which drivers
//!
//! The three stores share everything but their SQL text and their driver: the table, the
//! statements' logic, the sweeper, the name checks, the error mapping. One crate keeps that
//! logic in one place (`SqlStore<D>`, written once over a small internal interface: run a
//! statement and read one row, or run it and count the rows it changed), and a feature per
//! database keeps each app's build to the driver it uses.
//!
//! Each database has the driver that measured fastest on the two statements of a
//! keep-cookie request (a load by key, then a conditional update), side by side in one run
//! of `bench/run.sh` (the "drivers" tables in the README):
//!
//! - **PostgreSQL: `tokio-postgres`, pooled by `deadpool-postgres`.** Even with sqlx for
//!   one caller; with 32 concurrent callers it serves 1.6 to 1.9 times as many requests on
//!   the same 16 connections. Statements are prepared once per connection (deadpool's
//!   statement cache) and reused.
//! - **SQLite: `rusqlite`** (SQLite built in), each connection on its own thread: one
//!   writer, which runs every write in turn, and readers sharing the loads, each kind fed by
//!   its own queue (so a write waiting for another process's lock never holds up a read).
//!   With 32 callers a thread per connection serves 2.6 to 4 times what sqlx's SQLite
//!   driver does on the same file and 4 connections, and about 2 times what rusqlite on
//!   `spawn_blocking` does (under load a thread runs one queued statement after another
//!   without being woken for each). Statements are prepared once per connection
//!   (rusqlite's statement cache).
//! - **MySQL / MariaDB: sqlx**, the maintained async MySQL driver with a pool that has a
//!   size and an acquire timeout; statements are prepared once per connection (sqlx's
//!   statement cache).
//!
//! ## No near cache
//!
//! A keep-cookie request is two statements (the load, then the conditional save). A cache
//! in each process could drop the load, but only if another process's write reached it
//! first; on PostgreSQL alone that means `LISTEN`/`NOTIFY` from a trigger, and measured
//! with pgbench on this crate's table (`bench/pg_notify.sh`), the update with the notifying
//! trigger is slower on the server than the load and the update without it (`NOTIFY`
//! serialises committing transactions). So there is none: every load reads the table, and
//! read-your-writes across processes needs nothing more.
//!
//! ## The table
//!
//! One table per store (default `sessions`; table and schema names configurable, checked:
//! letters, digits and `_` only, so a name can never break out of its quotes):
//!
//! | column | type | what |
//! |---|---|---|
//! | `session_key` | text, primary key | the engine's store key (a hash of the id, never the id) |
//! | `data` | bytes, nullable | the record; `NULL` once deleted, or for a lease alone |
//! | `version` | 64-bit integer | changes on every write; conditional writes compare it |
//! | `expires_at` | 64-bit integer | Unix milliseconds, by the database's clock; indexed |
//! | `lease_token`, `lease_until` | bytes, integer, nullable | the lock's lease |
//!
//! Every time comparison uses the database's clock, so app servers with skewed clocks
//! still agree on who holds a lease. A deleted record stays as a row without data until
//! the sweeper removes it (so a lease on it survives a logout, as the contract asks).
//!
//! ## One statement per operation
//!
//! | operation | statement | round trips (MySQL) |
//! |---|---|---|
//! | load | `SELECT … WHERE session_key = ?` | 1 |
//! | create-if-absent | `INSERT … ON CONFLICT DO UPDATE … WHERE <no live record>` | 1 (MySQL: `INSERT IGNORE`, 1; over a dead row, 3) |
//! | conditional save | `UPDATE … WHERE version = ? AND <live>` | 1 (a failed one reads the row to say conflict or missing) |
//! | conditional delete, delete | `UPDATE … SET data = NULL …` | 1 |
//! | touch | `UPDATE … SET expires_at …` | 1 |
//! | lock | `INSERT … ON CONFLICT DO UPDATE SET lease … WHERE <lease free or ours> RETURNING …` | 1 (MySQL: `UPDATE` the lease, then `SELECT`: 2) |
//! | fenced save / delete, with or without release | `UPDATE … WHERE version = ? AND lease_token = ? AND lease_until > now` | 1 |
//! | release | `UPDATE … SET lease = NULL WHERE lease_token = ?` | 1 |
//! | sweep | `DELETE` of one bounded batch of expired rows | 1 per batch |
//!
//! Statements are prepared once per pooled connection and reused. No pool pings a
//! connection before each use (that would double the round trips): PostgreSQL's drops a
//! connection the server closed when it comes back to the pool; on MySQL a connection that
//! broke fails its statement with a store error and is replaced.
//!
//! ## Failures
//!
//! A database that is down, full, read-only, or locked past SQLite's busy timeout is a
//! store error (a `503` at the edge), never "no session"; every operation is bounded by
//! the store's timeout, and waiting for a pooled connection by the pool's acquire timeout.
#![warn(missing_docs)]

mod backend;
mod name;
mod store;
mod sweep;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use store::{SqlStore, SqlStoreBuilder};
pub use sweep::Sweeper;

#[cfg(feature = "mysql")]
pub use mysql::{MySql, MySqlStore};
#[cfg(feature = "postgres")]
pub use postgres::{Postgres, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{Sqlite, SqliteError, SqlitePool, SqliteStore};

/// The databases a [`SqlStore`] runs on: `Postgres`, `Sqlite`, `MySql` (each behind its
/// feature). Sealed: the statements of each are part of this crate.
pub trait Database: backend::Ops {}

/// Why a SQL store could not be built or migrated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlStoreError {
    /// A table or schema name outside `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    #[error(
        "invalid {what} name {name:?}: use ASCII letters, digits and `_` (not first), at most \
         63 bytes; names are never quoted-escaped, so anything else is refused"
    )]
    InvalidName {
        /// What was named ("table", "schema").
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The database URL could not be parsed.
    #[error("invalid {database} URL {url:?}: {source}")]
    InvalidUrl {
        /// The database.
        database: &'static str,
        /// The URL given (with any password removed).
        url: String,
        /// The parser's complaint.
        #[source]
        source: BoxError,
    },
    /// The database did not accept a connection.
    #[error("cannot connect to {database}: {source}; check that it runs and the URL is right")]
    Connect {
        /// The database.
        database: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The database cannot do what the options ask.
    #[error("{database} does not support {what}")]
    Unsupported {
        /// The database.
        database: &'static str,
        /// What it cannot do.
        what: &'static str,
    },
    /// A statement of [`SqlStore::migrate`] failed.
    #[error("migrating the sessions table on {database} failed at `{statement}`: {source}")]
    Migrate {
        /// The database.
        database: &'static str,
        /// The statement that failed.
        statement: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

/// A driver's error, as the source of a [`SqlStoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `url` with any password replaced, for error messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}
