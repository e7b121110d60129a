//! SQLite, over rusqlite on worker threads.

use std::sync::Arc;
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
/// block, so each connection lives on a thread of its own: one writer, which runs every
/// statement that writes, in turn (SQLite has one writer at a time anyway), and
/// [`pool_size`](SqlStoreBuilder::pool_size) readers, which share the loads. Each kind takes
/// statements from its own queue, so a write waiting for another process's lock never holds
/// up a read (WAL readers do not wait for writers), and under load a thread runs one queued
/// statement after another without being woken for each. A statement whose caller has
/// given up (its timeout passed while it was queued) is skipped rather than run late.
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

/// The connections of a [`SqliteStore`]: a writer and readers, each on its own thread,
/// fed by a queue per kind. Cheap to clone; the threads end when the last clone is dropped.
/// Two stores (two tables) can share one pool:
/// `SqliteStore::builder().table("other").build(pool)`.
#[derive(Clone)]
pub struct SqlitePool {
    reads: flume::Sender<Job>,
    writes: flume::Sender<Job>,
    readers: usize,
}

impl std::fmt::Debug for SqlitePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePool")
            .field("readers", &self.readers)
            .field("queued_reads", &self.reads.len())
            .field("queued_writes", &self.writes.len())
            .finish()
    }
}

/// A statement to run on a connection.
type Job = Box<dyn FnOnce(&Connection) + Send>;

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
    /// Opens a writer and `readers` reader connections to `uri` (a SQLite `file:` URI)
    /// and starts their threads.
    fn open(uri: &str, readers: usize, busy: Duration) -> Result<Self, SqliteError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = || -> Result<Connection, SqliteError> {
            let connection = Connection::open_with_flags(uri, flags)?;
            connection.busy_timeout(busy)?;
            connection.set_prepared_statement_cache_capacity(32);
            // Persistent in the file; a read-only connection keeps the file's mode. SQLite
            // does not always call the busy handler for this pragma (another process
            // opening or migrating the file at the same moment answers "database is locked"
            // at once), so it is retried within the busy timeout.
            let started = std::time::Instant::now();
            loop {
                match connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
                    row.get::<_, String>(0)
                }) {
                    Ok(_) => break,
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy
                            && started.elapsed() < busy =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(connection)
        };
        // The writer first: it creates the file and sets WAL mode before any reader opens.
        let writer = open()?;
        let readers_connections = (0..readers)
            .map(|_| open())
            .collect::<Result<Vec<_>, _>>()?;
        let (writes, write_queue) = flume::unbounded::<Job>();
        let (reads, read_queue) = flume::unbounded::<Job>();
        let threads = std::iter::once(("sessio-sqlite-writer".to_owned(), writer, write_queue))
            .chain(
                readers_connections
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (format!("sessio-sqlite-reader-{i}"), c, read_queue.clone())),
            );
        for (name, connection, queue) in threads {
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job(&connection);
                    }
                })
                .map_err(|_| SqliteError::Stopped)?;
        }
        Ok(Self {
            reads,
            writes,
            readers,
        })
    }

    /// Prepares `sql` (or takes it from the connection's cache) on the writer, or on a
    /// reader if it only reads, and runs `f` on it with `params`.
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
        // Every statement but a plain `SELECT` writes (`INSERT … RETURNING` included).
        let queue = if text.starts_with("SELECT") {
            &self.reads
        } else {
            &self.writes
        };
        let job: Job = Box::new(move |connection| {
            // The caller gave up (its timeout passed): do not run a write it was told failed.
            if reply.is_closed() {
                return;
            }
            let result = connection
                .prepare_cached(&text)
                .and_then(|mut statement| f(&mut statement, &params));
            let _ = reply.send(result);
        });
        queue.send(job).map_err(|_| SqliteError::Stopped)?;
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
    /// Opens (creating it if missing) the database at `url` with default options (a
    /// writer and 4 readers); see [`SqlStoreBuilder::connect`](SqlStoreBuilder#method.connect-1).
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
    /// WAL mode with the busy timeout, with one writer connection and
    /// [`pool_size`](Self::pool_size) readers (each on its own thread). A statement waits
    /// for its connection within the store's [`timeout`](Self::timeout).
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
