//! PostgreSQL.

use crate::backend::{sqlx_ops, Dialect, Placeholders};
use crate::{Database, SqlStore, SqlStoreBuilder, SqlStoreError};

/// PostgreSQL (feature `postgres`), for [`SqlStore`]. Tested on PostgreSQL 15.
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

sqlx_ops!(
    Postgres,
    sqlx::Postgres,
    "PostgreSQL",
    Dialect {
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
    },
    bool,
    unavailable
);

/// Connection exceptions (08), insufficient resources such as a full disk (53), operator
/// intervention such as a shutdown (57), and a read-only transaction (25006).
fn unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| {
        code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || code == "25006"
    })
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
}

impl SqlStoreBuilder<Postgres> {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`, or any form
    /// sqlx's `PgConnectOptions` reads) and checks the connection now, so that a typo
    /// fails at start-up rather than per request.
    ///
    /// # Errors
    /// [`SqlStoreError`] for a bad name, a bad URL or a database that does not answer.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, SqlStoreError> {
        self.open(url, |options| options).await
    }
}
