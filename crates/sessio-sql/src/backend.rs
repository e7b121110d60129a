//! What differs between databases: the SQL text, and how one statement is run.
//!
//! The store logic ([`crate::SqlStore`]) is written once over [`Ops`]; each database
//! supplies its statements ([`Statements`]) and two ways to run one: fetch at most one row,
//! or execute and count the rows it changed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sessio::store::StoreErrorKind;

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

/// The columns every read selects, in [`Row`]'s order; `{now}` is the dialect's clock,
/// `{lease_live}` and `{live}` its truth values.
const ROW_COLUMNS: &str = "data, version, expires_at, lease_token, {lease_live}, {live_flag}";

/// One statement: its text, and for a dialect with positional `?` parameters, which of
/// the statement's numbered parameters each `?` takes (0-based).
#[derive(Debug, Clone)]
pub struct Sql {
    pub(crate) text: Arc<str>,
    pub(crate) order: Option<Vec<usize>>,
}

/// How a dialect writes parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1`, `$2`, ... (PostgreSQL).
    Dollar,
    /// `?1`, `?2`, ... (SQLite).
    NumberedQuestion,
    /// `?` in order of appearance (MySQL): a parameter used twice is bound twice.
    Question,
}

/// Every statement a store runs, with the table name in place.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) migrate: Vec<Sql>,
    pub(crate) load: Sql,
    pub(crate) create: Sql,
    pub(crate) save: Sql,
    pub(crate) delete_if: Sql,
    pub(crate) delete: Sql,
    pub(crate) touch: Sql,
    pub(crate) acquire: Sql,
    pub(crate) save_locked: Sql,
    pub(crate) create_locked: Sql,
    pub(crate) delete_locked: Sql,
    pub(crate) release: Sql,
    pub(crate) sweep: Sql,
    /// Without `RETURNING` on upserts (MySQL): the two-step create and lock.
    pub(crate) two_step: Option<TwoStep>,
}

/// The statements of the create and the lock on a database whose upsert cannot say what
/// it did (MySQL: no `RETURNING`, and `ON DUPLICATE KEY UPDATE` counts a no-op as a write).
#[derive(Debug, Clone)]
pub(crate) struct TwoStep {
    /// Insert a record unless the key has a row: $1 key, $2 data, $3 version, $4 ttl ms.
    pub(crate) insert: Sql,
    /// Delete the key's row if it holds no live record and no live lease: $1 key.
    pub(crate) reclaim: Sql,
    /// Take the lease on an existing row if it is free or ours: $1 key, $2 token, $3 lease ms.
    pub(crate) take: Sql,
    /// Insert a lease alone unless the key has a row: $1 key, $2 token, $3 lease ms,
    /// $4 version.
    pub(crate) insert_lease: Sql,
}

/// How a dialect writes what the statements need.
pub struct Dialect {
    /// The identifier quote.
    pub(crate) quote: char,
    /// The database's clock in Unix milliseconds, as an SQL expression.
    pub(crate) now: &'static str,
    /// How parameters are written.
    pub(crate) placeholders: Placeholders,
    /// A truth value as the driver reads it back (`{x}` is the condition).
    pub(crate) flag: &'static str,
    /// Whether upserts can say what they did (`ON CONFLICT … WHERE … RETURNING`).
    pub(crate) upsert_returning: bool,
    /// The type of the record column.
    pub(crate) bytes_type: &'static str,
    /// The key column's type.
    pub(crate) key_type: &'static str,
    /// The longest key the key column holds, if it has a limit.
    pub(crate) key_limit: Option<usize>,
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
        let cols = ROW_COLUMNS
            .replace(
                "{lease_live}",
                &self.flag.replace("{x}", "lease_until > {now}"),
            )
            .replace(
                "{live_flag}",
                &self
                    .flag
                    .replace("{x}", "data IS NOT NULL AND expires_at > {now}"),
            );
        let fill = |sql: &str| -> Sql {
            let sql = sql
                .replace("{t}", &t)
                .replace("{cols}", &cols)
                .replace("{live}", "data IS NOT NULL AND expires_at > {now}")
                .replace(
                    "{expired}",
                    "expires_at <= {now} AND (lease_until IS NULL OR lease_until <= {now})",
                )
                .replace("{now}", self.now);
            self.placeholders.apply(&sql)
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
        let migrate = migrate
            .into_iter()
            .map(|text| Sql {
                text: text.into(),
                order: None,
            })
            .collect();
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
            two_step: (!self.upsert_returning).then(|| TwoStep {
                insert: fill(
                    "INSERT IGNORE INTO {t} (session_key, data, version, expires_at) \
                     VALUES ($1, $2, $3, {now} + $4)",
                ),
                reclaim: fill(
                    "DELETE FROM {t} WHERE session_key = $1 AND NOT ({live}) \
                     AND (lease_until IS NULL OR lease_until <= {now})",
                ),
                take: fill(
                    "UPDATE {t} SET lease_token = $2, lease_until = {now} + $3 \
                     WHERE session_key = $1 AND (lease_until IS NULL \
                     OR lease_until <= {now} OR lease_token = $2)",
                ),
                insert_lease: fill(
                    "INSERT IGNORE INTO {t} \
                     (session_key, data, version, expires_at, lease_token, lease_until) \
                     VALUES ($1, NULL, $4, {now}, $2, {now} + $3)",
                ),
            }),
        }
    }
}

impl Placeholders {
    /// Rewrites the `$N` parameters of `sql` for this dialect.
    fn apply(self, sql: &str) -> Sql {
        match self {
            Placeholders::Dollar => Sql {
                text: sql.into(),
                order: None,
            },
            Placeholders::NumberedQuestion => Sql {
                text: sql.replace('$', "?").into(),
                order: None,
            },
            Placeholders::Question => {
                let mut text = String::with_capacity(sql.len());
                let mut order = Vec::new();
                let mut rest = sql;
                while let Some(at) = rest.find('$') {
                    text.push_str(&rest[..at]);
                    let digits = rest[at + 1..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(rest.len() - at - 1, |n| n);
                    let n: usize = rest[at + 1..at + 1 + digits]
                        .parse()
                        .expect("statements number their parameters from $1");
                    order.push(n - 1);
                    text.push('?');
                    rest = &rest[at + 1 + digits..];
                }
                text.push_str(rest);
                Sql {
                    text: text.into(),
                    order: Some(order),
                }
            }
        }
    }
}

/// What a database gives the store: its statements and a way to run them.
pub trait Ops: Send + Sync + 'static {
    /// The pool of connections.
    type Pool: Clone + Send + Sync + std::fmt::Debug + 'static;
    /// The driver's error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The database's name for messages ("PostgreSQL").
    const NAME: &'static str;
    /// The dialect.
    const DIALECT: Dialect;

    /// What a driver error means for the caller: the database is unavailable (down, full,
    /// read-only, locked: the request may be retried), the wait ran out, or a bug.
    fn kind(error: &Self::Error) -> StoreErrorKind;

    /// Whether `error` is the loser's answer when two sessions run one `CREATE … IF NOT
    /// EXISTS` at once (the object exists then).
    fn lost_create_race(error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// Runs `sql` and returns its first row, if any.
    fn fetch<'a>(
        pool: &'a Self::Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Option<Row>, Self::Error>>;

    /// Runs `sql` and returns how many rows it changed (or matched: MySQL).
    fn execute<'a>(
        pool: &'a Self::Pool,
        sql: &'a Sql,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64, Self::Error>>;
}
