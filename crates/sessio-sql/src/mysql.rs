//! MySQL and MariaDB.

use sqlx::mysql::MySqlDatabaseError;

use sessio::store::StoreErrorKind;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

use crate::backend::{BoxFuture, Dialect, Ops, Param, Placeholders, Row, Sql};
use crate::{Database, SqlStore, SqlStoreBuilder, SqlStoreError};

/// MySQL and MariaDB (feature `mysql`), for [`SqlStore`]. Tested on MariaDB 10.11;
/// `migrate()` uses `CREATE INDEX IF NOT EXISTS`, which MariaDB has and MySQL 8 lacks
/// (on MySQL, create the index `<table>_expiry` on `expires_at` yourself).
///
/// Two operations take two statements here, because MySQL has no `RETURNING` and its
/// `ON DUPLICATE KEY UPDATE` reports a no-op as a write: **lock** (take the lease on the
/// row, then read it; or add a row holding the lease alone) and **create over a dead
/// row** (a plain insert first, which is all a new session needs: one statement; only when
/// a row is already there, a delete of that row if nothing in it is live, and the insert
/// again). Every other operation is one statement, as on the other databases.
#[derive(Debug, Clone, Copy)]
pub enum MySql {}

/// Sessions in a MySQL or MariaDB table.
///
/// ```no_run
/// # async fn run() -> Result<(), sessio_sql::SqlStoreError> {
/// use sessio_sql::MySqlStore;
///
/// let store = MySqlStore::connect("mysql://app:secret@10.0.0.5:3306/app").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
pub type MySqlStore = SqlStore<MySql>;

impl Database for MySql {}

impl Ops for MySql {
    type Pool = sqlx::MySqlPool;
    type Error = sqlx::Error;
    const NAME: &'static str = "MySQL";
    const DIALECT: Dialect = Dialect {
        quote: '`',
        // NOW() is fixed for the whole statement.
        now: "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
        placeholders: Placeholders::Question,
        flag: "CAST(COALESCE({x}, 0) AS SIGNED)",
        upsert_returning: false,
        bytes_type: "LONGBLOB",
        // Binary, so keys compare byte for byte whatever the table's collation.
        key_type: "VARBINARY(767)",
        key_limit: Some(767),
        creates_schema: true,
        sweep: "DELETE FROM {t} WHERE {cond} ORDER BY expires_at LIMIT $1",
    };

    fn kind(error: &sqlx::Error) -> StoreErrorKind {
        use sqlx::Error as E;
        match error {
            E::PoolTimedOut => StoreErrorKind::Timeout,
            E::Io(_) | E::Tls(_) | E::PoolClosed | E::WorkerCrashed => StoreErrorKind::Unavailable,
            E::Database(db) if unavailable(db.as_ref()) => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Protocol,
        }
    }

    fn fetch<'a>(
        pool: &'a Self::Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Option<Row>, sqlx::Error>> {
        Box::pin(async move {
            use sqlx::Row as _;
            let Some(row) = bind_all(sql, params).fetch_optional(pool).await? else {
                return Ok(None);
            };
            Ok(Some(Row {
                data: row.try_get(0)?,
                version: row.try_get(1)?,
                expires_at: row.try_get(2)?,
                lease_token: row.try_get(3)?,
                lease_live: row.try_get::<i64, _>(4)? != 0,
                live: row.try_get::<i64, _>(5)? != 0,
            }))
        })
    }

    fn execute<'a>(
        pool: &'a Self::Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(async move { Ok(bind_all(sql, params).execute(pool).await?.rows_affected()) })
    }
}

/// Read-only (1290, 1792, 1836), disk or table full (1021, 1114), lock wait timeout
/// (1205), too many connections (1040), shutting down (1053), connection killed (1927,
/// 4031), or a connection-class SQLSTATE (08).
fn unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    let number = error
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number);
    matches!(
        number,
        Some(1290 | 1792 | 1836 | 1021 | 1114 | 1205 | 1040 | 1053 | 1927 | 4031)
    ) || error.code().is_some_and(|code| code.starts_with("08"))
}

/// The statement with its parameters bound in the order its `?`s take them (a parameter
/// used twice is bound twice).
fn bind_all<'q>(
    sql: &'q Sql,
    params: &'q [Param<'q>],
) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    let bind = |query: sqlx::query::Query<'q, sqlx::MySql, _>, param: &Param<'q>| match *param {
        Param::Text(s) => query.bind(s),
        Param::Bytes(b) => query.bind(b),
        Param::Int(i) => query.bind(i),
    };
    let query = sqlx::query::<sqlx::MySql>(&sql.text);
    match &sql.order {
        None => params.iter().fold(query, bind),
        Some(order) => order.iter().map(|&i| &params[i]).fold(query, bind),
    }
}

impl SqlStore<MySql> {
    /// The pool, for the app's own queries.
    pub fn pool(&self) -> &sqlx::MySqlPool {
        &self.inner.pool
    }

    /// Connects with default options (table `sessions`, 16 connections); see
    /// [`SqlStoreBuilder::connect`](SqlStoreBuilder#method.connect-2).
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad URL or a database that does not answer.
    pub async fn connect(url: &str) -> Result<Self, SqlStoreError> {
        Self::builder().connect(url).await
    }
}

impl SqlStoreBuilder<MySql> {
    /// Connects to `url` (`mysql://USER[:PASSWORD]@HOST:PORT/DATABASE`, or any form
    /// sqlx's `MySqlConnectOptions` reads) and checks the connection now.
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad name, a bad URL or a database that does not answer.
    pub async fn connect(self, url: &str) -> Result<MySqlStore, SqlStoreError> {
        self.check_names()?;
        let options: MySqlConnectOptions =
            url.parse().map_err(|source| SqlStoreError::InvalidUrl {
                database: MySql::NAME,
                url: crate::redacted(url),
                source: Box::new(source),
            })?;
        let pool = MySqlPoolOptions::new()
            .max_connections(self.pool_size)
            .acquire_timeout(self.acquire_timeout)
            // No ping before every use: it doubled the round trips (a broken connection
            // fails its statement instead, and the pool replaces it).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|source| SqlStoreError::Connect {
                database: MySql::NAME,
                source: Box::new(source),
            })?;
        self.build(pool)
    }
}
