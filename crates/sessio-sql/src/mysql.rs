//! MySQL and MariaDB.

use sqlx::mysql::MySqlDatabaseError;

use crate::backend::{sqlx_ops, Dialect, Placeholders};
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

sqlx_ops!(
    MySql,
    sqlx::MySql,
    "MySQL",
    Dialect {
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
    },
    i64,
    unavailable
);

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

impl SqlStore<MySql> {
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
        self.open(url, |options| options).await
    }
}
