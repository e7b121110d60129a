//! SQLite, over rusqlite on worker threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sessio::store::StoreErrorKind;
use tokio::sync::oneshot;

use crate::backend::{BoxFuture, Dialect, Ops, Param, Placeholders, Row, Sql};
use crate::{Database, SqlStore, SqlStoreBuilder, SqlStoreError};

/// SQLite (feature `sqlite`), for [`SqlStore`]: sessions that survive a restart with no
/// server at all.
///
/// The database runs in WAL mode (readers never wait for the writer) with a busy timeout
/// ([`SqlStoreBuilder::busy_timeout`], default 1 s), so several processes can share one
/// database file; a write lock held past the busy timeout is a store error (`503`), not a
/// hang. Each statement is its own transaction.
///
/// SQLite's C library is built into the crate (rusqlite's `bundled` feature). Its calls
/// block, so each pooled connection lives on its own thread and takes statements from one
/// queue shared by all: under load a thread runs statement after statement without
/// sleeping, and a statement whose caller has given up (its timeout passed) is skipped
/// rather than run late. The writes of one process take turns on a lock of their own, so
/// that they never fall back on SQLite's sleeping busy handler against each other; against
/// other processes, the busy timeout applies.
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

/// The connections of a [`SqliteStore`]: one thread per connection, fed by one queue.
/// Cheap to clone; the threads end when the last clone is dropped. Two stores (two
/// tables) can share one pool: `SqliteStore::builder().table("other").build(pool)`.
#[derive(Clone)]
pub struct SqlitePool {
    jobs: flume::Sender<Job>,
    size: usize,
}

impl std::fmt::Debug for SqlitePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePool")
            .field("connections", &self.size)
            .field("queued", &self.jobs.len())
            .finish()
    }
}

/// A statement to run: on a connection, with the process's write turn to take if it writes.
type Job = Box<dyn FnOnce(&Connection, &Mutex<()>) + Send>;

/// Why a SQLite statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// SQLite's own error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The connection threads are gone (one panicked, or the pool was dropped).
    #[error("the SQLite connection threads have stopped")]
    Stopped,
}

impl SqlitePool {
    /// Opens `size` connections to `uri` (a SQLite `file:` URI) and starts their threads.
    fn open(uri: &str, size: usize, busy: Duration) -> Result<Self, SqliteError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connections = (0..size)
            .map(|_| {
                let connection = Connection::open_with_flags(uri, flags)?;
                connection.busy_timeout(busy)?;
                connection.set_prepared_statement_cache_capacity(32);
                // Persistent in the file; a read-only connection keeps the file's mode.
                let _mode: String =
                    connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                Ok(connection)
            })
            .collect::<Result<Vec<_>, SqliteError>>()?;
        let (jobs, queue) = flume::unbounded::<Job>();
        let writes = Arc::new(Mutex::new(()));
        for (i, connection) in connections.into_iter().enumerate() {
            let queue = queue.clone();
            let writes = Arc::clone(&writes);
            std::thread::Builder::new()
                .name(format!("sessio-sqlite-{i}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job(&connection, &writes);
                    }
                })
                .map_err(|_| SqliteError::Stopped)?;
        }
        Ok(Self { jobs, size })
    }

    /// Prepares `sql` (or takes it from the connection's cache) on one of the connections
    /// and runs `f` on it with `params`, holding the write turn if the statement writes.
    async fn run<T: Send + 'static>(
        &self,
        sql: &Sql,
        params: &[Param<'_>],
        f: impl FnOnce(&mut rusqlite::CachedStatement<'_>, &[Value]) -> rusqlite::Result<T>
            + Send
            + 'static,
    ) -> Result<T, SqliteError> {
        let text = Arc::clone(&sql.text);
        let params: Vec<Value> = params
            .iter()
            .map(|param| match *param {
                Param::Text(s) => Value::Text(s.to_owned()),
                Param::Bytes(b) => Value::Blob(b.to_vec()),
                Param::Int(i) => Value::Integer(i),
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection, writes| {
            // The caller gave up (its timeout passed): do not run a write it was told failed.
            if reply.is_closed() {
                return;
            }
            let result = connection.prepare_cached(&text).and_then(|mut statement| {
                let _turn = (!statement.readonly())
                    .then(|| writes.lock().unwrap_or_else(|e| e.into_inner()));
                f(&mut statement, &params)
            });
            let _ = reply.send(result);
        });
        self.jobs.send(job).map_err(|_| SqliteError::Stopped)?;
        Ok(answer.await.map_err(|_| SqliteError::Stopped)??)
    }
}

impl Ops for Sqlite {
    type Pool = SqlitePool;
    type Error = SqliteError;
    const NAME: &'static str = "SQLite";
    const DIALECT: Dialect = Dialect {
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
    };

    /// BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN (with their extended codes) are
    /// unavailable; so are stopped threads.
    fn kind(error: &SqliteError) -> StoreErrorKind {
        use rusqlite::ErrorCode as C;
        match error {
            SqliteError::Stopped => StoreErrorKind::Unavailable,
            SqliteError::Sqlite(error) => match error.sqlite_error_code() {
                Some(
                    C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::ReadOnly
                    | C::SystemIoFailure
                    | C::DiskFull
                    | C::CannotOpen,
                ) => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Protocol,
            },
        }
    }

    fn fetch<'a>(
        pool: &'a SqlitePool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Option<Row>, SqliteError>> {
        Box::pin(pool.run(sql, params, |statement, params| {
            let mut rows = statement.query(rusqlite::params_from_iter(params))?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            Ok(Some(Row {
                data: row.get(0)?,
                version: row.get(1)?,
                expires_at: row.get(2)?,
                lease_token: row.get(3)?,
                lease_live: row.get::<_, i64>(4)? != 0,
                live: row.get::<_, i64>(5)? != 0,
            }))
        }))
    }

    fn execute<'a>(
        pool: &'a SqlitePool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64, SqliteError>> {
        Box::pin(pool.run(sql, params, |statement, params| {
            Ok(statement.execute(rusqlite::params_from_iter(params))? as u64)
        }))
    }
}

/// The SQLite `file:` URI of a `sqlite://PATH[?QUERY]` or `sqlite:PATH[?QUERY]` URL (its
/// query, such as `mode=ro`, passed on to SQLite).
fn file_uri(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or("a SQLite URL starts with `sqlite://` (sqlite://RELATIVE/PATH or sqlite:///ABSOLUTE/PATH)")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(
            "a SQLite URL names a database file: an in-memory database is private to \
                    one connection (use sessio's MemoryStore for sessions in memory)"
                .into(),
        );
    }
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    Ok(uri)
}

impl SqlStore<Sqlite> {
    /// Opens (creating it if missing) the database at `url` with default options and 4
    /// connections; see [`SqlStoreBuilder::connect`](SqlStoreBuilder#method.connect-1).
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad URL or a file that cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, SqlStoreError> {
        Self::builder().pool_size(4).connect(url).await
    }

    /// The connections, to share with a store of another table.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }
}

impl SqlStoreBuilder<Sqlite> {
    /// Opens `url` (`sqlite://RELATIVE/PATH`, `sqlite:///ABSOLUTE/PATH`, optionally with
    /// SQLite URI parameters such as `?mode=ro`), creating the file if it is missing, in
    /// WAL mode with the busy timeout, with [`pool_size`](Self::pool_size) connections
    /// (each on its own thread). A statement waits for a free connection within the
    /// store's [`timeout`](Self::timeout).
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
        self.check_names()?;
        let uri = file_uri(url).map_err(|message| SqlStoreError::InvalidUrl {
            database: Sqlite::NAME,
            url: url.to_owned(),
            source: message.into(),
        })?;
        let (size, busy) = (self.pool_size as usize, self.busy_timeout);
        let pool = tokio::task::spawn_blocking(move || SqlitePool::open(&uri, size, busy))
            .await
            .map_err(|_| SqliteError::Stopped)
            .and_then(|opened| opened)
            .map_err(|source| SqlStoreError::Connect {
                database: Sqlite::NAME,
                source: Box::new(source),
            })?;
        self.build(pool)
    }
}
