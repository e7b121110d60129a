//! The store contract over SQL, written once for every database.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use sessio::store::support::{ttl_millis, within};
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreResult, Version,
};

use crate::backend::{Param, Row, Sql, Statements};
use crate::name::Ident;
use crate::{Database, SqlStoreError};

/// Sessions in a SQL table. Cheap to clone; clones share the pool.
///
/// Built with [`SqlStore::builder`] (or `connect`, on each database's alias:
/// [`PostgresStore`](crate::PostgresStore), [`SqliteStore`](crate::SqliteStore)). Call
/// [`migrate`](Self::migrate) once at start, and keep a [`spawn_sweeper`](Self::spawn_sweeper)
/// running (in one process or in all: batches never collide).
pub struct SqlStore<D: Database> {
    pub(crate) inner: Arc<Inner<D>>,
}

impl<D: Database> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: Database> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &D::NAME)
            .field("table", &self.inner.table)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<D: Database> {
    pub(crate) pool: D::Pool,
    pub(crate) sql: Statements,
    pub(crate) table: String,
    pub(crate) timeout: Duration,
    pub(crate) sweep_every: Duration,
    pub(crate) sweep_batch: i64,
    _database: PhantomData<fn() -> D>,
}

/// Options of a [`SqlStore`]: table, schema, pool, timeouts, sweeper.
#[derive(Debug, Clone)]
pub struct SqlStoreBuilder<D: Database> {
    pub(crate) table: String,
    pub(crate) schema: Option<String>,
    pub(crate) pool_size: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) sweep_every: Duration,
    pub(crate) sweep_batch: u32,
    pub(crate) busy_timeout: Duration,
    _database: PhantomData<fn() -> D>,
}

impl<D: Database> Default for SqlStoreBuilder<D> {
    fn default() -> Self {
        Self {
            table: "sessions".into(),
            schema: None,
            pool_size: 16,
            acquire_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            sweep_every: Duration::from_secs(60),
            sweep_batch: 1000,
            busy_timeout: Duration::from_secs(1),
            _database: PhantomData,
        }
    }
}

impl<D: Database> SqlStoreBuilder<D> {
    /// The table's name (default `sessions`): ASCII letters, digits and `_`.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// The schema (PostgreSQL) or attached database (SQLite) the table lives in; default:
    /// the connection's own.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// Connections in the pool (default 16). SQLite: the reader connections, beside its
    /// one writer (4 are plenty).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a request waits for a free pooled connection (default 2 s) before it
    /// fails with a store error.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The longest one store operation may take, waiting for a connection included
    /// (default 2 s); past it the operation fails with a `Timeout` store error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often [`SqlStore::spawn_sweeper`] deletes expired rows (default 60 s).
    pub fn sweep_every(mut self, every: Duration) -> Self {
        self.sweep_every = every.max(Duration::from_millis(10));
        self
    }

    /// The most rows one sweep statement deletes (default 1000); a sweep runs batches
    /// until one comes back short.
    pub fn sweep_batch(mut self, rows: u32) -> Self {
        self.sweep_batch = rows.max(1);
        self
    }

    /// SQLite only: how long a statement waits for another connection's (or process's)
    /// write lock before failing with a store error (default 1 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Builds the store over an existing pool.
    ///
    /// # Errors
    /// [`SqlStoreError::InvalidName`] for a table or schema name that is not plain.
    pub fn build(self, pool: D::Pool) -> Result<SqlStore<D>, SqlStoreError> {
        let table = Ident::parse("table", &self.table)?;
        let schema = self
            .schema
            .as_deref()
            .map(|s| Ident::parse("schema", s))
            .transpose()?;
        let sql = D::DIALECT.statements(schema.as_ref(), &table);
        let name = match &schema {
            Some(schema) => format!("{}.{}", schema.as_str(), table.as_str()),
            None => table.as_str().to_owned(),
        };
        Ok(SqlStore {
            inner: Arc::new(Inner {
                pool,
                sql,
                table: name,
                timeout: self.timeout,
                sweep_every: self.sweep_every,
                sweep_batch: i64::from(self.sweep_batch),
                _database: PhantomData,
            }),
        })
    }

    /// The names, checked now so that a bad one fails before any connection is made.
    pub(crate) fn check_names(&self) -> Result<(), SqlStoreError> {
        Ident::parse("table", &self.table)?;
        if let Some(schema) = &self.schema {
            Ident::parse("schema", schema)?;
        }
        Ok(())
    }
}

/// Refuses a key longer than the key column holds (MySQL's `INSERT IGNORE` would cut it).
fn check_key<D: Database>(key: &str) -> StoreResult<()> {
    match D::DIALECT.key_limit {
        Some(limit) if key.len() > limit => Err(StoreError::protocol(format!(
            "a store key of {} bytes is longer than the {limit} the {} table's key column holds; \
             use a shorter key prefix",
            key.len(),
            D::NAME
        ))),
        _ => Ok(()),
    }
}

/// A fresh random version for a row's first record (later writes add one), so that a
/// record written again under a key that was deleted never repeats an old version.
fn fresh_version() -> StoreResult<i64> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw)
        .map_err(|e| StoreError::unavailable(format!("the OS random generator failed: {e}")))?;
    Ok(i64::from_le_bytes(raw) & i64::MAX)
}

fn ms(ttl: Duration) -> i64 {
    i64::try_from(ttl_millis(ttl)).unwrap_or(i64::MAX)
}

fn keep(then: AfterWrite) -> i64 {
    i64::from(then == AfterWrite::KeepLease)
}

fn version(v: &Loaded) -> i64 {
    // Versions come from this store, so they fit an i64.
    v.version.0 as i64
}

fn loaded(row: Row) -> Option<Loaded> {
    if !row.live {
        return None;
    }
    let at = u64::try_from(row.expires_at).unwrap_or(0);
    Some(Loaded {
        data: row.data?,
        version: Version(row.version as u64),
        expires_at: Some(UNIX_EPOCH + Duration::from_millis(at)),
    })
}

impl<D: Database> SqlStore<D> {
    /// Options: table, schema, pool size, timeouts, sweeper.
    pub fn builder() -> SqlStoreBuilder<D> {
        SqlStoreBuilder::default()
    }

    /// The table, as `schema.table` when a schema was given.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// Creates the table and its expiry index if they do not exist. Idempotent: run it at
    /// every start, from any number of processes.
    ///
    /// # Errors
    /// [`SqlStoreError::Migrate`] naming the statement that failed.
    pub async fn migrate(&self) -> Result<(), SqlStoreError> {
        for statement in &self.inner.sql.migrate {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match D::execute(&self.inner.pool, statement, &[]).await {
                    Ok(_) => break,
                    // PostgreSQL's `IF NOT EXISTS` is not safe against a concurrent create
                    // of the same object: the loser fails on a catalog unique index. The
                    // object exists then, and running the statement again sees it.
                    Err(error) if attempts < 3 && D::lost_create_race(&error) => {}
                    Err(source) => {
                        return Err(SqlStoreError::Migrate {
                            database: D::NAME,
                            statement: statement.text.to_string(),
                            source: Box::new(source),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes expired rows (records past their expiry with no live lease), in batches of
    /// the configured size until one comes back short; returns how many it deleted.
    ///
    /// # Errors
    /// A store error if the database fails.
    pub async fn sweep(&self) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let deleted = self
                .execute(
                    "sweep",
                    &self.inner.sql.sweep,
                    &[Param::Int(self.inner.sweep_batch)],
                )
                .await?;
            total += deleted;
            if deleted < self.inner.sweep_batch as u64 {
                return Ok(total);
            }
        }
    }

    pub(crate) fn sweep_every(&self) -> Duration {
        self.inner.sweep_every
    }

    fn error(&self, op: &str, error: D::Error) -> StoreError {
        // The drivers put the telling part in the causes ("error connecting to server",
        // caused by "Connection refused"), so the message carries them too.
        let mut message = format!("{} {op} failed: {error}", D::NAME);
        let mut cause = std::error::Error::source(&error);
        while let Some(next) = cause {
            let text = next.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = next.source();
        }
        StoreError::new(D::kind(&error), message).with_source(error)
    }

    async fn fetch(&self, op: &str, sql: &Sql, params: &[Param<'_>]) -> StoreResult<Option<Row>> {
        within(op, D::NAME, self.inner.timeout, async {
            D::fetch(&self.inner.pool, sql, params)
                .await
                .map_err(|e| self.error(op, e))
        })
        .await
    }

    async fn execute(&self, op: &str, sql: &Sql, params: &[Param<'_>]) -> StoreResult<u64> {
        within(op, D::NAME, self.inner.timeout, async {
            D::execute(&self.inner.pool, sql, params)
                .await
                .map_err(|e| self.error(op, e))
        })
        .await
    }

    async fn row(&self, op: &str, key: &str) -> StoreResult<Option<Row>> {
        self.fetch(op, &self.inner.sql.load, &[Param::Text(key)])
            .await
    }

    /// Why a conditional write changed nothing: the record is gone, or it changed.
    async fn why_not(&self, op: &str, key: &str) -> StoreResult<Outcome<()>> {
        Ok(match self.row(op, key).await? {
            Some(row) if row.live => Outcome::Conflict,
            _ => Outcome::Missing,
        })
    }

    /// Why a write under `token`'s lease changed nothing.
    async fn why_not_locked(
        &self,
        op: &str,
        key: &str,
        token: &LeaseToken,
        expected: bool,
    ) -> StoreResult<Outcome<()>> {
        let row = self.row(op, key).await?;
        let ours = row.as_ref().is_some_and(|r| {
            r.lease_live && r.lease_token.as_deref() == Some(&token.as_bytes()[..])
        });
        Ok(match (ours, row.is_some_and(|r| r.live), expected) {
            (false, _, _) => Outcome::LeaseLost,
            (true, true, _) => Outcome::Conflict,
            (true, false, true) => Outcome::Missing,
            // Creating under the lease and there is no record: it was just the race.
            (true, false, false) => Outcome::Conflict,
        })
    }
}

#[async_trait]
impl<D: Database> Store for SqlStore<D> {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        Ok(self.row("load", key).await?.and_then(loaded))
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        check_key::<D>(key)?;
        let v = fresh_version()?;
        let params = [
            Param::Text(key),
            Param::Bytes(data),
            Param::Int(v),
            Param::Int(ms(ttl)),
        ];
        let created = match &self.inner.sql.two_step {
            None => {
                self.execute("create", &self.inner.sql.create, &params)
                    .await?
                    > 0
            }
            Some(two) => {
                self.execute("create", &two.insert, &params).await? > 0 || {
                    // A row is there: remove it if nothing in it is live, and insert again.
                    self.execute("create", &two.reclaim, &[Param::Text(key)])
                        .await?;
                    self.execute("create", &two.insert, &params).await? > 0
                }
            }
        };
        Ok(if created {
            Outcome::Done(Version(v as u64))
        } else {
            Outcome::Conflict
        })
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let v = version(expected);
        let params = [
            Param::Text(key),
            Param::Bytes(data),
            Param::Int(ms(ttl)),
            Param::Int(v),
        ];
        if self.execute("save", &self.inner.sql.save, &params).await? > 0 {
            return Ok(Outcome::Done(Version(v.wrapping_add(1) as u64)));
        }
        Ok(self.why_not("save", key).await?.map(|()| Version(0)))
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        let params = [Param::Text(key), Param::Int(version(expected))];
        if self
            .execute("delete", &self.inner.sql.delete_if, &params)
            .await?
            > 0
        {
            return Ok(Outcome::Done(()));
        }
        self.why_not("delete", key).await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.execute("delete", &self.inner.sql.delete, &[Param::Text(key)])
            .await?;
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let params = [Param::Text(key), Param::Int(ms(ttl))];
        Ok(self
            .execute("touch", &self.inner.sql.touch, &params)
            .await?
            > 0)
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

#[async_trait]
impl<D: Database> LockingStore for SqlStore<D> {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        check_key::<D>(key)?;
        let params = [
            Param::Text(key),
            Param::Bytes(token.as_bytes()),
            Param::Int(ms(lease)),
            Param::Int(fresh_version()?),
        ];
        let Some(two) = &self.inner.sql.two_step else {
            return Ok(
                match self.fetch("lock", &self.inner.sql.acquire, &params).await? {
                    Some(row) => Acquired::Granted(loaded(row)),
                    None => Acquired::Held,
                },
            );
        };
        let ours =
            |r: &Row| r.lease_live && r.lease_token.as_deref() == Some(&token.as_bytes()[..]);
        for _ in 0..8 {
            let took = self.execute("lock", &two.take, &params[..3]).await? > 0;
            match self.row("lock", key).await? {
                Some(row) if ours(&row) => return Ok(Acquired::Granted(loaded(row))),
                Some(row) if row.lease_live && !took => return Ok(Acquired::Held),
                // Taken and lost again at once, or freed meanwhile: try again.
                Some(_) => {}
                None => {
                    if self.execute("lock", &two.insert_lease, &params).await? > 0 {
                        return Ok(Acquired::Granted(None));
                    }
                }
            }
        }
        Err(StoreError::protocol(
            "the session's row kept changing while its lock was taken; retry",
        ))
    }

    async fn save_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: Option<&Loaded>,
        data: &[u8],
        ttl: Duration,
        then: AfterWrite,
    ) -> StoreResult<Outcome<Version>> {
        let op = "save under lock";
        let (sql, v, new) = match expected {
            Some(e) => (
                &self.inner.sql.save_locked,
                version(e),
                version(e).wrapping_add(1),
            ),
            None => {
                let v = fresh_version()?;
                (&self.inner.sql.create_locked, v, v)
            }
        };
        let params = [
            Param::Text(key),
            Param::Bytes(data),
            Param::Int(ms(ttl)),
            Param::Int(v),
            Param::Bytes(token.as_bytes()),
            Param::Int(keep(then)),
        ];
        if self.execute(op, sql, &params).await? > 0 {
            return Ok(Outcome::Done(Version(new as u64)));
        }
        Ok(self
            .why_not_locked(op, key, token, expected.is_some())
            .await?
            .map(|()| Version(0)))
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let op = "delete under lock";
        let params = [
            Param::Text(key),
            Param::Int(version(expected)),
            Param::Bytes(token.as_bytes()),
            Param::Int(keep(then)),
        ];
        if self
            .execute(op, &self.inner.sql.delete_locked, &params)
            .await?
            > 0
        {
            return Ok(Outcome::Done(()));
        }
        self.why_not_locked(op, key, token, true).await
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let params = [Param::Text(key), Param::Bytes(token.as_bytes())];
        Ok(self
            .execute("unlock", &self.inner.sql.release, &params)
            .await?
            > 0)
    }
}
