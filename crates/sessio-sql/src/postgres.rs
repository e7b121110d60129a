//! PostgreSQL, over tokio-postgres with a deadpool pool.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use sessio::store::StoreErrorKind;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use crate::backend::{BoxFuture, Dialect, Ops, Param, Placeholders, Row, Sql};
use crate::{Database, SqlStore, SqlStoreBuilder, SqlStoreError};

/// PostgreSQL (feature `postgres`), for [`SqlStore`]. Tested on PostgreSQL 15.
///
/// The driver is `tokio-postgres`, pooled by `deadpool-postgres`; each pooled connection
/// prepares a statement the first time it runs it and reuses it after. Connections are
/// plain TCP or a Unix socket; for TLS, build the pool yourself (`deadpool_postgres` with a
/// TLS connector) and pass it to [`SqlStoreBuilder::build`].
#[derive(Debug, Clone, Copy)]
pub enum Postgres {}

/// Sessions in a PostgreSQL table.
///
/// ```no_run
/// # async fn run() -> Result<(), sessio_sql::SqlStoreError> {
/// use std::time::Duration;
/// use sessio_sql::PostgresStore;
///
/// let store = PostgresStore::builder()
///     .schema("auth")
///     .table("web_sessions")
///     .pool_size(32)
///     .timeout(Duration::from_millis(500))
///     .connect("postgres://app@10.0.0.5:5432/app")
///     .await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
pub type PostgresStore = SqlStore<Postgres>;

impl Database for Postgres {}

impl Ops for Postgres {
    type Pool = Pool;
    type Error = PoolError;
    const NAME: &'static str = "PostgreSQL";
    const DIALECT: Dialect = Dialect {
        quote: '"',
        // Fixed for the whole statement, so every comparison in it sees one instant.
        now: "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT",
        placeholders: Placeholders::Dollar,
        flag: "COALESCE({x}, FALSE)",
        upsert_returning: true,
        bytes_type: "BYTEA",
        key_type: "TEXT",
        key_limit: None,
        creates_schema: true,
        // Concurrent sweepers skip each other's rows instead of waiting on them.
        sweep: "DELETE FROM {t} WHERE session_key IN \
                (SELECT session_key FROM {t} WHERE {cond} LIMIT $1 FOR UPDATE SKIP LOCKED)",
    };

    fn kind(error: &PoolError) -> StoreErrorKind {
        match error {
            PoolError::Timeout(_) => StoreErrorKind::Timeout,
            PoolError::Backend(error) => match error.code() {
                Some(code) if unavailable(code) => StoreErrorKind::Unavailable,
                Some(_) => StoreErrorKind::Protocol,
                // No answer from the server: the connection closed, failed or never opened.
                None if error.is_closed() || io_failure(error) => StoreErrorKind::Unavailable,
                None => StoreErrorKind::Protocol,
            },
            _ => StoreErrorKind::Unavailable,
        }
    }

    fn lost_create_race(error: &PoolError) -> bool {
        let PoolError::Backend(error) = error else {
            return false;
        };
        error.code().is_some_and(|code| {
            [
                SqlState::UNIQUE_VIOLATION,
                SqlState::DUPLICATE_TABLE,
                SqlState::DUPLICATE_OBJECT,
            ]
            .contains(code)
        })
    }

    fn fetch<'a>(
        pool: &'a Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Option<Row>, PoolError>> {
        Box::pin(async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_typed_cached(&sql.text, &types(params))
                .await?;
            let Some(row) = client.query_opt(&statement, &values(params)).await? else {
                return Ok(None);
            };
            Ok(Some(Row {
                data: row.try_get(0)?,
                version: row.try_get(1)?,
                expires_at: row.try_get(2)?,
                lease_token: row.try_get(3)?,
                lease_live: row.try_get(4)?,
                live: row.try_get(5)?,
            }))
        })
    }

    fn execute<'a>(
        pool: &'a Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64, PoolError>> {
        Box::pin(async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_typed_cached(&sql.text, &types(params))
                .await?;
            Ok(client.execute(&statement, &values(params)).await?)
        })
    }
}

/// The parameters' types, given to the server when a statement is prepared (so that a
/// parameter compared with a literal, as in `$6 = 1`, is still a `BIGINT`).
fn types(params: &[Param<'_>]) -> Vec<Type> {
    params
        .iter()
        .map(|param| match param {
            Param::Text(_) => Type::TEXT,
            Param::Bytes(_) => Type::BYTEA,
            Param::Int(_) => Type::INT8,
        })
        .collect()
}

fn values<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| match param {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Bytes(b) => b as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

/// Connection exceptions (08), insufficient resources such as a full disk (53), operator
/// intervention such as a shutdown (57), and a read-only transaction (25006).
fn unavailable(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57") || code == "25006"
}

/// Whether an I/O error is among `error`'s causes (refused, reset, unreachable).
fn io_failure(error: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        if error.is::<std::io::Error>() {
            return true;
        }
        cause = error.source();
    }
    false
}

impl SqlStore<Postgres> {
    /// Connects with default options (table `sessions`, 16 connections); see
    /// [`SqlStoreBuilder::connect`](SqlStoreBuilder#method.connect).
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad URL or a database that does not answer.
    pub async fn connect(url: &str) -> Result<Self, SqlStoreError> {
        Self::builder().connect(url).await
    }

    /// The pool, for the app's own queries.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }
}

impl SqlStoreBuilder<Postgres> {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`, or any form
    /// `tokio_postgres::Config` reads, such as `host=/run/postgresql user=app`) and checks
    /// one connection now, so that a typo fails at start-up rather than per request.
    ///
    /// The pool holds up to [`pool_size`](Self::pool_size) connections; a request waits
    /// for one (or for a new one to connect) at most
    /// [`acquire_timeout`](Self::acquire_timeout). A connection is not pinged before use
    /// (that would double the round trips); one the server closed is dropped when it
    /// comes back to the pool.
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad name, a bad URL or a database that does not answer.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, SqlStoreError> {
        self.check_names()?;
        let config =
            tokio_postgres::Config::from_str(url).map_err(|source| SqlStoreError::InvalidUrl {
                database: Postgres::NAME,
                url: crate::redacted(url),
                source: Box::new(source),
            })?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size as usize)
            .wait_timeout(Some(self.acquire_timeout))
            .create_timeout(Some(self.acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|source| SqlStoreError::Connect {
                database: Postgres::NAME,
                source: Box::new(source),
            })?;
        drop(pool.get().await.map_err(|source| SqlStoreError::Connect {
            database: Postgres::NAME,
            source: Box::new(source),
        })?);
        self.build(pool)
    }
}
