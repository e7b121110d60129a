//! What differs between databases: the SQL text, and how one statement is run.
//!
//! The store logic ([`crate::SqlStore`]) is written once over [`Ops`]; each database
//! supplies its statements ([`Statements`]) and two ways to run one: fetch at most one row,
//! or execute and count the rows it changed.

use std::future::Future;
use std::pin::Pin;

use crate::name::Ident;

/// A boxed, sendable future (the driver calls are async, the trait is object-free).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
    Int(i64),
}

/// One session row as every read and `RETURNING` clause gives it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The record (`NULL` for a lease alone or a deleted record waiting for the sweeper).
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) version: i64,
    /// When the record expires, Unix milliseconds by the database's clock.
    pub(crate) expires_at: i64,
    pub(crate) lease_token: Option<Vec<u8>>,
    /// Whether the lease is live by the database's clock.
    pub(crate) lease_live: bool,
    /// Whether the record is there and live by the database's clock.
    pub(crate) live: bool,
}

/// The columns every read selects, in [`Row`]'s order; `{now}` is the dialect's clock.
pub(crate) const ROW_COLUMNS: &str = "data, version, expires_at, lease_token, \
     COALESCE(lease_until > {now}, FALSE), (data IS NOT NULL AND expires_at > {now})";

/// Every statement a store runs, with the table name in place.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) migrate: Vec<String>,
    pub(crate) load: String,
    pub(crate) create: String,
    pub(crate) save: String,
    pub(crate) delete_if: String,
    pub(crate) delete: String,
    pub(crate) touch: String,
    pub(crate) acquire: String,
    pub(crate) save_locked: String,
    pub(crate) create_locked: String,
    pub(crate) delete_locked: String,
    pub(crate) release: String,
    pub(crate) sweep: String,
}

/// How a dialect writes what the statements need.
pub struct Dialect {
    /// The identifier quote.
    pub(crate) quote: char,
    /// The database's clock in Unix milliseconds, as an SQL expression.
    pub(crate) now: &'static str,
    /// The placeholder prefix (`$` for `$1`, `?` for `?1`).
    pub(crate) placeholder: char,
    /// The type of the record column.
    pub(crate) bytes_type: &'static str,
    /// The key column's type.
    pub(crate) key_type: &'static str,
    /// Whether `CREATE SCHEMA` exists.
    pub(crate) creates_schema: bool,
    /// The sweeper's batch: `{t}` the table, `{cond}` what is expired, `$1` the limit.
    pub(crate) sweep: &'static str,
}

impl Dialect {
    /// The statements for `table` (in `schema`, if given).
    pub(crate) fn statements(&self, schema: Option<&Ident>, table: &Ident) -> Statements {
        let q = self.quote;
        let t = match schema {
            Some(schema) => format!("{}.{}", schema.quoted(q), table.quoted(q)),
            None => table.quoted(q),
        };
        let index = Ident::parse("index", &format!("{}_expiry", table.as_str()))
            .map(|i| i.quoted(q))
            .unwrap_or_else(|_| format!("{q}sessio_expiry{q}"));
        // A lease held by the holder whose token is parameter `token`.
        let held = |token: &str| format!("lease_token = {token} AND lease_until > {{now}}");
        // Keep the lease if parameter `flag` is 1, else drop it.
        let keep = |flag: &str| {
            format!(
                "lease_token = CASE WHEN {flag} = 1 THEN lease_token END, \
                 lease_until = CASE WHEN {flag} = 1 THEN lease_until END"
            )
        };
        let fill = |sql: &str| -> String {
            let sql = sql
                .replace("{t}", &t)
                .replace("{cols}", ROW_COLUMNS)
                .replace("{live}", "data IS NOT NULL AND expires_at > {now}")
                .replace(
                    "{expired}",
                    "expires_at <= {now} AND (lease_until IS NULL OR lease_until <= {now})",
                )
                .replace("{now}", self.now);
            if self.placeholder == '$' {
                sql
            } else {
                sql.replace('$', &self.placeholder.to_string())
            }
        };
        let mut migrate = Vec::new();
        if let Some(schema) = schema.filter(|_| self.creates_schema) {
            migrate.push(format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted(q)));
        }
        migrate.push(format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             session_key {key} NOT NULL PRIMARY KEY, \
             data {bytes}, \
             version BIGINT NOT NULL, \
             expires_at BIGINT NOT NULL, \
             lease_token {bytes}, \
             lease_until BIGINT)",
            key = self.key_type,
            bytes = self.bytes_type,
        ));
        // The index name stays unqualified: PostgreSQL puts it in its table's schema.
        migrate.push(format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"
        ));
        Statements {
            migrate,
            load: fill("SELECT {cols} FROM {t} WHERE session_key = $1"),
            // $1 key, $2 data, $3 version, $4 ttl ms
            create: fill(
                "INSERT INTO {t} AS cur (session_key, data, version, expires_at) \
                 VALUES ($1, $2, $3, {now} + $4) \
                 ON CONFLICT (session_key) DO UPDATE SET data = excluded.data, \
                 version = excluded.version, expires_at = excluded.expires_at \
                 WHERE cur.data IS NULL OR cur.expires_at <= {now}",
            ),
            // $1 key, $2 data, $3 ttl ms, $4 expected version
            save: fill(
                "UPDATE {t} SET data = $2, version = version + 1, expires_at = {now} + $3 \
                 WHERE session_key = $1 AND version = $4 AND {live}",
            ),
            // $1 key, $2 expected version
            delete_if: fill(
                "UPDATE {t} SET data = NULL, version = version + 1, expires_at = {now} \
                 WHERE session_key = $1 AND version = $2 AND {live}",
            ),
            // $1 key
            delete: fill(
                "UPDATE {t} SET data = NULL, version = version + 1, expires_at = {now} \
                 WHERE session_key = $1 AND data IS NOT NULL",
            ),
            // $1 key, $2 ttl ms
            touch: fill("UPDATE {t} SET expires_at = {now} + $2 WHERE session_key = $1 AND {live}"),
            // $1 key, $2 token, $3 lease ms, $4 version of a new row
            acquire: fill(
                "INSERT INTO {t} AS cur \
                 (session_key, data, version, expires_at, lease_token, lease_until) \
                 VALUES ($1, NULL, $4, {now}, $2, {now} + $3) \
                 ON CONFLICT (session_key) DO UPDATE SET lease_token = excluded.lease_token, \
                 lease_until = excluded.lease_until \
                 WHERE cur.lease_until IS NULL OR cur.lease_until <= {now} \
                 OR cur.lease_token = excluded.lease_token \
                 RETURNING {cols}",
            ),
            // $1 key, $2 data, $3 ttl ms, $4 expected version, $5 token, $6 keep (1/0)
            save_locked: fill(&format!(
                "UPDATE {{t}} SET data = $2, version = version + 1, \
                 expires_at = {{now}} + $3, {} \
                 WHERE session_key = $1 AND version = $4 AND {{live}} AND {}",
                keep("$6"),
                held("$5"),
            )),
            // $1 key, $2 data, $3 ttl ms, $4 new version, $5 token, $6 keep (1/0)
            create_locked: fill(&format!(
                "UPDATE {{t}} SET data = $2, version = $4, expires_at = {{now}} + $3, {} \
                 WHERE session_key = $1 AND NOT ({{live}}) AND {}",
                keep("$6"),
                held("$5"),
            )),
            // $1 key, $2 expected version, $3 token, $4 keep (1/0)
            delete_locked: fill(&format!(
                "UPDATE {{t}} SET data = NULL, version = version + 1, expires_at = {{now}}, {} \
                 WHERE session_key = $1 AND version = $2 AND {{live}} AND {}",
                keep("$4"),
                held("$3"),
            )),
            // $1 key, $2 token
            release: fill(&format!(
                "UPDATE {{t}} SET lease_token = NULL, lease_until = NULL \
                 WHERE session_key = $1 AND {}",
                held("$2"),
            )),
            // $1 batch size
            sweep: fill(&self.sweep.replace("{cond}", "{expired}")),
        }
    }
}

/// What a database gives the store: its statements and a way to run them.
pub trait Ops: Send + Sync + 'static {
    /// The pool of connections.
    type Pool: Clone + Send + Sync + std::fmt::Debug + 'static;
    /// The database's name for messages ("PostgreSQL").
    const NAME: &'static str;
    /// The dialect.
    const DIALECT: Dialect;

    /// Runs `sql` and returns its first row, if any.
    fn fetch<'a>(
        pool: &'a Self::Pool,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Option<Row>, sqlx::Error>>;

    /// Runs `sql` and returns how many rows it changed.
    fn execute<'a>(
        pool: &'a Self::Pool,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
}

/// Implements [`Ops`] for a marker type over an sqlx driver: binding the parameters in
/// order and reading a [`Row`] are the same for every driver, so they are written once.
macro_rules! sqlx_ops {
    ($marker:ty, $db:ty, $name:expr, $dialect:expr) => {
        fn bind_all<'q>(
            sql: &'q str,
            params: &'q [$crate::backend::Param<'q>],
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            params
                .iter()
                .fold(sqlx::query::<$db>(sql), |query, param| match *param {
                    $crate::backend::Param::Text(s) => query.bind(s),
                    $crate::backend::Param::Bytes(b) => query.bind(b),
                    $crate::backend::Param::Int(i) => query.bind(i),
                })
        }

        impl $crate::backend::Ops for $marker {
            type Pool = sqlx::Pool<$db>;
            const NAME: &'static str = $name;
            const DIALECT: $crate::backend::Dialect = $dialect;

            fn fetch<'a>(
                pool: &'a Self::Pool,
                sql: &'a str,
                params: &'a [$crate::backend::Param<'a>],
            ) -> $crate::backend::BoxFuture<'a, Result<Option<$crate::backend::Row>, sqlx::Error>>
            {
                Box::pin(async move {
                    use sqlx::Row as _;
                    let Some(row) = bind_all(sql, params).fetch_optional(pool).await? else {
                        return Ok(None);
                    };
                    Ok(Some($crate::backend::Row {
                        data: row.try_get(0)?,
                        version: row.try_get(1)?,
                        expires_at: row.try_get(2)?,
                        lease_token: row.try_get(3)?,
                        lease_live: row.try_get::<bool, _>(4)?,
                        live: row.try_get::<bool, _>(5)?,
                    }))
                })
            }

            fn execute<'a>(
                pool: &'a Self::Pool,
                sql: &'a str,
                params: &'a [$crate::backend::Param<'a>],
            ) -> $crate::backend::BoxFuture<'a, Result<u64, sqlx::Error>> {
                Box::pin(
                    async move { Ok(bind_all(sql, params).execute(pool).await?.rows_affected()) },
                )
            }
        }
    };
}
pub(crate) use sqlx_ops;
