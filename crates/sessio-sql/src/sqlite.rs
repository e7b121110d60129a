//! SQLite.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::backend::{sqlx_ops, Dialect, Placeholders};
use crate::{Database, SqlStore, SqlStoreBuilder, SqlStoreError};

/// SQLite (feature `sqlite`), for [`SqlStore`]: sessions that survive a restart with no
/// server at all.
///
/// The database runs in WAL mode (readers never wait for the writer) with a busy timeout
/// ([`SqlStoreBuilder::busy_timeout`], default 1 s), so several processes can share one
/// database file; a write lock held past the busy timeout is a store error (`503`), not a
/// hang. Each statement is its own transaction.
#[derive(Debug, Clone, Copy)]
pub enum Sqlite {}

/// Sessions in a SQLite table.
///
/// ```no_run
/// # async fn run() -> Result<(), sessio_sql::SqlStoreError> {
/// use sessio_sql::SqliteStore;
///
/// let store = SqliteStore::connect("sqlite:///var/lib/app/sessions.db").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
pub type SqliteStore = SqlStore<Sqlite>;

impl Database for Sqlite {}

sqlx_ops!(
    Sqlite,
    sqlx::Sqlite,
    "SQLite",
    Dialect {
        quote: '"',
        // Fixed for the whole statement (SQLite's 'now' is per statement step).
        now: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        placeholders: Placeholders::NumberedQuestion,
        flag: "COALESCE({x}, FALSE)",
        upsert_returning: true,
        bytes_type: "BLOB",
        key_type: "TEXT",
        key_limit: None,
        creates_schema: false,
        sweep: "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE {cond} LIMIT $1)",
    },
    bool,
    unavailable
);

/// BUSY (5), LOCKED (6), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14), with their
/// extended codes.
fn unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

impl SqlStore<Sqlite> {
    /// Opens (creating it if missing) the database at `url` with default options; see
    /// [`SqlStoreBuilder::connect`](SqlStoreBuilder#method.connect-1).
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad URL or a file that cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, SqlStoreError> {
        Self::builder().pool_size(4).connect(url).await
    }
}

impl SqlStoreBuilder<Sqlite> {
    /// Opens `url` (`sqlite://RELATIVE/PATH`, `sqlite:///ABSOLUTE/PATH`), creating the
    /// file if it is missing, in WAL mode with the busy timeout.
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad name, a schema (SQLite has none: use another file), a
    /// bad URL or a file that cannot be opened.
    pub async fn connect(self, url: &str) -> Result<SqliteStore, SqlStoreError> {
        if self.schema.is_some() {
            return Err(SqlStoreError::Unsupported {
                database: "SQLite",
                what:
                    "a schema (SQLite has none: give the table another name, or use another file)",
            });
        }
        let busy = self.busy_timeout;
        self.open(url, |options: SqliteConnectOptions| {
            options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy)
        })
        .await
    }
}
