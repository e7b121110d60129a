//! # sessio-mongodb
//!
//! A [MongoDB](https://www.mongodb.com) store for [`sessio`], on the official `mongodb`
//! driver. One document per session:
//!
//! ```text
//! { _id: <store key>, s: 1, data: <bytes>, v: <version>, exp: <expiry date>,
//!   lock_token: <lease holder or "">, lock_exp: <lease expiry, the epoch when free> }
//! ```
//!
//! `s` is 0 for a document that only holds a lock taken before its session was first saved.
//!
//! ```no_run
//! use sessio_mongodb::MongoStore;
//!
//! # async fn run() -> Result<(), sessio_mongodb::MongoStoreError> {
//! let store = MongoStore::connect("mongodb://127.0.0.1:27017/app").await?;
//! // Once, at deployment or start-up: the TTL index that lets MongoDB reap expired sessions.
//! store.setup().await?;
//! # Ok(()) }
//! ```
//!
//! ## How each operation maps to MongoDB
//!
//! | operation | command |
//! |---|---|
//! | load | `find` by `_id` |
//! | create-if-absent | `insert` (the unique `_id` makes a duplicate-key error a collision); an expired or lock-only document in the way is taken over with a conditional `update` |
//! | conditional save | `update` filtered on `_id`, the loaded `v` and `exp > now`; `v` becomes a new random version |
//! | touch | `update` of `exp`, filtered on `exp > now` (an expired session is not revived) |
//! | delete | `delete` by `_id` |
//! | lock | `findAndModify` with upsert: takes the lease if free, lapsed or ours, **and returns the session in the same command**; a lease held by another makes the upsert hit the unique `_id`: held |
//! | fenced save / delete | `update` / `delete` filtered on our `lock_token` and `lock_exp > now`, releasing in the same command |
//! | release | `update` filtered on our token, freeing the lock fields |
//!
//! A conditional save that matches nothing reports a conflict without a second read; the
//! engine reloads, and finds out then whether the session is gone.
//!
//! Expiry: [`MongoStore::setup`] creates a TTL index on `exp` (`expireAfterSeconds: 0`),
//! idempotently. MongoDB's TTL monitor runs about once a minute, so every read also checks
//! `exp` itself: an expired session is never returned, whether or not it was reaped.
//!
//! ## Replica sets
//!
//! Give every member you know and the set's name:
//! `mongodb://h1:27017,h2:27017,h3:27017/app?replicaSet=rs0`. Unless the connection string
//! says otherwise, [`MongoStore::connect`] chooses:
//!
//! - **Writes acknowledged by a majority, journaled** (`w: "majority", j: true`, 2 s
//!   `wtimeout`). A write the store reports done is on the disk of most members, so the
//!   member elected after a primary fails has it: an acknowledged login, logout or save
//!   survives a failover. With `w: 1` it could be rolled back with the old primary. On a
//!   single server, `j: true` makes an acknowledged write survive a crash of `mongod`.
//! - **Retryable writes** (the driver's default): a write interrupted by a failover is
//!   sent once more to the new primary, which applies it at most once. Every write here is
//!   one document's, conditional on what the request read, so a retry never applies a
//!   stale write.
//! - **Reads from the primary, read concern `local`** (the driver's defaults, made
//!   explicit). The primary holds every majority-acknowledged write, so a client never
//!   reads a session older than a write it was answered for, before or after a failover.
//!   `majority` reads were rejected: a newly elected primary serves its majority snapshot
//!   from its last known commit point, which can briefly lag the writes the old primary
//!   acknowledged, so a client could read back in time just after a failover. What `local`
//!   allows instead is a read of another request's write still waiting for its majority;
//!   if a failover then rolls it back, that request was answered with an error, and every
//!   write made on top of it (conditional on its version) is rolled back with it.
//!
//! A failover takes MongoDB a few seconds (the election timeout, 10 s by default); meanwhile
//! requests that need the store fail within the store's timeout (2 s) with a store error,
//! `503` at the edge, and never read "no session".
//!
//! ## What was tested against what
//!
//! A private `mongod` 6.0.5 (standalone) that the tests start: the whole conformance suite
//! with no client-side serialization (each operation relies on MongoDB's atomic write of
//! one document), the one-command lock through `findAndModify` with upsert, the TTL index
//! of [`MongoStore::setup`] with the server deleting expired documents, and the demo over
//! TCP, with two processes on one server (the lock and key-level merging across processes,
//! and the guarantee cases the other stores pass); `mongod` killed and restarted under the
//! demo. A private replica set of three `mongod` 6.0.5: the whole conformance suite, and
//! its primary killed under load from two demo processes (every increment answered `200`
//! kept).
#![warn(missing_docs)]

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, IndexOptions, ReadConcern, ReturnDocument, WriteConcern};
use mongodb::{Client, Collection, IndexModel};
use sessio::store::support::within;
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, Store, StoreError,
    StoreErrorKind, StoreResult, Version,
};

/// Why a [`MongoStore`] could not be built or set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoStoreError {
    /// The URL is not a MongoDB connection string with a database.
    #[error("invalid MongoDB URL {url:?}: {reason}. Use mongodb://HOST:PORT/DATABASE")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The driver failed (connecting, or creating the TTL index).
    #[error("MongoDB {what} failed: {source}; check that the server runs and is reachable")]
    Mongo {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: MongoError,
    },
}

/// Sessions in a MongoDB collection (default `sessions`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct MongoStore {
    sessions: Collection<Document>,
    timeout: Duration,
}

impl MongoStore {
    /// Connects to `url` (`mongodb://HOST:PORT/DATABASE`, any connection-string options
    /// allowed) and uses its database's `sessions` collection.
    ///
    /// The connection is checked with a `ping`, so a wrong address fails here.
    ///
    /// # Errors
    /// [`MongoStoreError::InvalidUrl`] without a database; [`MongoStoreError::Mongo`] if the
    /// server does not answer.
    pub async fn connect(url: &str) -> Result<Self, MongoStoreError> {
        let invalid = |reason: &str| MongoStoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let mut options = mongodb::options::ClientOptions::parse(url)
            .await
            .map_err(|e| invalid(&e.to_string()))?;
        let database = options
            .default_database
            .clone()
            .ok_or_else(|| invalid("no database name after the host"))?;
        options.server_selection_timeout = Some(Duration::from_secs(2));
        options.connect_timeout = Some(Duration::from_secs(2));
        // What a replica set needs (see "Replica sets" in the crate's docs); a connection
        // string that says otherwise (`w=`, `journal=`, `readConcernLevel=`) wins.
        options.write_concern.get_or_insert_with(|| {
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .w_timeout(Duration::from_secs(2))
                .build()
        });
        options.read_concern.get_or_insert_with(ReadConcern::local);
        let client = Client::with_options(options).map_err(|source| MongoStoreError::Mongo {
            what: "client set-up",
            source,
        })?;
        let db = client.database(&database);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|source| MongoStoreError::Mongo {
                what: "ping",
                source,
            })?;
        Ok(Self::from_collection(db.collection("sessions")))
    }

    /// A store over a collection you already have (any name, any client options).
    pub fn from_collection(sessions: Collection<Document>) -> Self {
        Self {
            sessions,
            timeout: Duration::from_secs(2),
        }
    }

    /// The longest one store operation may take (default 2 s); past it the operation fails
    /// with a `Timeout` store error (a `503` at the edge).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Creates the TTL index on `exp` (`expireAfterSeconds: 0`) so that MongoDB deletes
    /// expired sessions. Idempotent: call it at every start, or once at deployment.
    ///
    /// # Errors
    /// [`MongoStoreError::Mongo`] if the server refuses the index.
    pub async fn setup(&self) -> Result<(), MongoStoreError> {
        let index = IndexModel::builder()
            .keys(doc! { "exp": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::ZERO)
                    .name("sessio_exp_ttl".to_string())
                    .build(),
            )
            .build();
        self.sessions
            .create_index(index)
            .await
            .map(|_| ())
            .map_err(|source| MongoStoreError::Mongo {
                what: "creating the TTL index on exp",
                source,
            })
    }

    /// Runs one command within the timeout, mapping every driver error.
    async fn run<T>(
        &self,
        op: &'static str,
        work: impl std::future::IntoFuture<Output = Result<T, MongoError>>,
    ) -> StoreResult<T> {
        self.attempt(op, work)
            .await?
            .map_err(|error| store_error(error, op))
    }

    /// Runs one command within the timeout, leaving its driver error to the caller (for
    /// the errors that are answers, such as a duplicate key).
    async fn attempt<T>(
        &self,
        op: &'static str,
        work: impl std::future::IntoFuture<Output = Result<T, MongoError>>,
    ) -> StoreResult<Result<T, MongoError>> {
        within(op, "MongoDB", self.timeout, async { Ok(work.await) }).await
    }
}

fn store_error(error: MongoError, op: &str) -> StoreError {
    let kind = match &*error.kind {
        // The majority did not acknowledge in time (a member down, a slow secondary).
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) if e.code == 64 => {
            StoreErrorKind::Timeout
        }
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => StoreErrorKind::Unavailable,
        // A primary stepping down, an election under way, a write concern that cannot be
        // met now: the server says a later attempt may succeed.
        _ if error.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
            || error.contains_label(mongodb::error::RETRYABLE_ERROR)
            || matches!(
                &*error.kind,
                ErrorKind::Write(WriteFailure::WriteConcernError(_))
            ) =>
        {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Protocol,
    };
    StoreError::new(
        kind,
        format!("MongoDB {op} failed; check that the server runs and is reachable"),
    )
    .with_source(error)
}

/// The server's error code, for a command or write error.
fn server_code(error: &MongoError) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

/// A first insert that lost the race to create its collection: code 48 (NamespaceExists).
fn lost_collection_race(error: &MongoError) -> bool {
    server_code(error) == Some(48)
}

/// Duplicate `_id`: code 11000 (DuplicateKey).
fn is_duplicate_key(error: &MongoError) -> bool {
    server_code(error) == Some(11000)
}

/// Whether an update matched a document (every update here changes the one it matches).
fn matched(result: &mongodb::results::UpdateResult) -> bool {
    result.matched_count >= 1
}

/// The `_id` index, as a hint: a filter on `_id` and other fields would otherwise make the
/// query planner race the `exp` index against it.
fn by_id() -> mongodb::options::Hint {
    mongodb::options::Hint::Keys(doc! { "_id": 1 })
}

/// A filter on one session's document: `_id` equality and `conditions`, as a `$and`.
fn on(key: &str, conditions: impl IntoIterator<Item = Document>) -> Document {
    let mut all = vec![Bson::Document(doc! { "_id": key })];
    all.extend(conditions.into_iter().map(Bson::Document));
    doc! { "$and": all }
}

/// Conditions: `token` holds a live lease.
fn held_by(token: &LeaseToken) -> [Document; 2] {
    [
        doc! { "lock_token": token.to_hex() },
        doc! { "lock_exp": { "$gt": now() } },
    ]
}

/// Conditions: a live session document at `expected`'s version.
fn live_version(expected: &Loaded) -> [Document; 3] {
    [
        doc! { "s": 1 },
        doc! { "v": expected.version.0 as i64 },
        doc! { "exp": { "$gt": now() } },
    ]
}

impl MongoStore {
    /// Removes the session matching `conditions`: the document goes, unless it holds a
    /// live lease (another request's lock), which stays as a placeholder (a plain delete
    /// leaves the lease to its holder, as the contract says). Whether a session matched.
    async fn remove(
        &self,
        key: &str,
        conditions: impl IntoIterator<Item = Document> + Clone,
    ) -> StoreResult<bool> {
        let mut unlocked: Vec<Document> = conditions.clone().into_iter().collect();
        unlocked.push(doc! { "lock_exp": { "$lte": now() } });
        let deleted = self
            .run(
                "delete",
                self.sessions.delete_one(on(key, unlocked)).hint(by_id()),
            )
            .await?;
        if deleted.deleted_count == 1 {
            return Ok(true);
        }
        let mut locked: Vec<Document> = conditions.into_iter().collect();
        locked.push(doc! { "s": 1 });
        locked.push(doc! { "lock_exp": { "$gt": now() } });
        let placeholder = doc! { "$set": { "s": 0, "v": 0_i64 }, "$unset": { "data": "" } };
        let kept = self
            .run(
                "delete",
                self.sessions
                    .update_one(on(key, locked), placeholder)
                    .hint(by_id()),
            )
            .await?;
        Ok(matched(&kept))
    }

    /// Why a conditional write under a lease matched nothing: the lease, or the record.
    async fn refused(&self, key: &str, token: &LeaseToken) -> StoreResult<Outcome<Version>> {
        let holds = self
            .run(
                "lock check",
                self.sessions
                    .find_one(on(key, held_by(token)))
                    .hint(by_id()),
            )
            .await?;
        Ok(if holds.is_none() {
            Outcome::LeaseLost
        } else {
            Outcome::Conflict
        })
    }
}

/// The lock fields of a free lock.
fn free_lock() -> Document {
    doc! { "lock_token": "", "lock_exp": DateTime::from_millis(0) }
}

fn now() -> DateTime {
    DateTime::now()
}

fn at(ttl: Duration) -> DateTime {
    DateTime::from_system_time(SystemTime::now() + ttl)
}

fn binary(data: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: data.to_vec(),
    }
}

/// A fresh random version, so that a deleted and re-created session never repeats one.
fn new_version() -> i64 {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).expect("OS random number generator");
    (u64::from_le_bytes(raw) >> 1) as i64
}

/// The live session in a document: one with data whose `exp` is still ahead.
fn record(doc: &Document) -> Option<Loaded> {
    let data = match doc.get("data")? {
        Bson::Binary(b) => b.bytes.clone(),
        _ => return None,
    };
    let exp = doc.get_datetime("exp").ok()?;
    if *exp <= now() {
        return None;
    }
    Some(Loaded {
        data,
        version: Version(doc.get_i64("v").unwrap_or(0) as u64),
        expires_at: Some(exp.to_system_time()),
    })
}

#[async_trait]
impl Store for MongoStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let doc = self
            .run("load", self.sessions.find_one(doc! { "_id": key }))
            .await?;
        Ok(doc.as_ref().and_then(record))
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let v = new_version();
        let mut fresh = doc! { "_id": key, "s": 1, "data": binary(data), "v": v, "exp": at(ttl) };
        fresh.extend(free_lock());
        let mut first = self
            .attempt("create", self.sessions.insert_one(fresh.clone()))
            .await?;
        if first.as_ref().is_err_and(lost_collection_race) {
            // The collection was being created by a concurrent first insert (servers that
            // create collections lazily may refuse the loser): it exists now.
            first = self
                .attempt("create", self.sessions.insert_one(fresh))
                .await?;
        }
        match first {
            Ok(_) => return Ok(Outcome::Done(Version(v as u64))),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(store_error(e, "create")),
        }
        // A document is in the way: take it over only if it holds no live session (expired
        // but not reaped yet, or only a lock taken before the session was first saved).
        let filter = on(
            key,
            [doc! { "$or": [ { "s": 0 }, { "exp": { "$lte": now() } } ] }],
        );
        let update = doc! { "$set": { "s": 1, "data": binary(data), "v": v, "exp": at(ttl) } };
        let taken = self
            .run(
                "create",
                self.sessions.update_one(filter, update).hint(by_id()),
            )
            .await?;
        Ok(if matched(&taken) {
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
        let v = new_version();
        let filter = on(key, live_version(expected));
        let update = doc! { "$set": { "data": binary(data), "v": v, "exp": at(ttl) } };
        let result = self
            .run(
                "save",
                self.sessions.update_one(filter, update).hint(by_id()),
            )
            .await?;
        Ok(if matched(&result) {
            Outcome::Done(Version(v as u64))
        } else {
            Outcome::Conflict
        })
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        Ok(if self.remove(key, live_version(expected)).await? {
            Outcome::Done(())
        } else {
            Outcome::Conflict
        })
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let filter = on(key, [doc! { "s": 1 }, doc! { "exp": { "$gt": now() } }]);
        let update = doc! { "$set": { "exp": at(ttl) } };
        let result = self
            .run(
                "touch",
                self.sessions.update_one(filter, update).hint(by_id()),
            )
            .await?;
        Ok(matched(&result))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.remove(key, []).await.map(|_| ())
    }

    fn locking(&self) -> Option<&dyn LockingStore> {
        Some(self)
    }
}

#[async_trait]
impl LockingStore for MongoStore {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        let token = token.to_hex();
        let free_or_ours = on(
            key,
            [doc! { "$or": [ { "lock_exp": { "$lte": now() } }, { "lock_token": &token } ] }],
        );
        let until = at(lease);
        let take = doc! { "$set": { "lock_token": &token, "lock_exp": until } };
        // One command: take the lease and read the session. A lock taken before the session
        // exists leaves a document whose expiry is the lease's, so the TTL index reaps it if
        // the session is never saved.
        let mut upsert = take;
        upsert.insert("$setOnInsert", doc! { "exp": until, "s": 0, "v": 0_i64 });
        let attempt = self
            .sessions
            .find_one_and_update(free_or_ours, upsert)
            .hint(by_id())
            .upsert(true)
            .return_document(ReturnDocument::After);
        match self.attempt("lock", attempt).await? {
            Ok(doc) => Ok(Acquired::Granted(doc.as_ref().and_then(record))),
            Err(e) if is_duplicate_key(&e) => Ok(Acquired::Held),
            Err(e) => Err(store_error(e, "lock")),
        }
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
        let v = new_version();
        let mut conditions = held_by(token).to_vec();
        match expected {
            Some(expected) => conditions.extend(live_version(expected)),
            // Only if no live session is there: a placeholder, or an expired one.
            None => conditions.push(doc! { "$or": [ { "s": 0 }, { "exp": { "$lte": now() } } ] }),
        }
        let mut update = doc! { "$set": { "s": 1, "data": binary(data), "v": v, "exp": at(ttl) } };
        if then == AfterWrite::Release {
            update
                .get_document_mut("$set")
                .expect("just built")
                .extend(free_lock());
        }
        let result = self
            .run(
                "save under lock",
                self.sessions
                    .update_one(on(key, conditions), update)
                    .hint(by_id()),
            )
            .await?;
        if matched(&result) {
            return Ok(Outcome::Done(Version(v as u64)));
        }
        self.refused(key, token).await
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        let mut conditions = held_by(token).to_vec();
        conditions.extend(live_version(expected));
        let filter = on(key, conditions);
        let done = match then {
            AfterWrite::Release => {
                let result = self
                    .run(
                        "delete under lock",
                        self.sessions.delete_one(filter).hint(by_id()),
                    )
                    .await?;
                result.deleted_count == 1
            }
            AfterWrite::KeepLease => {
                // The lease lives in the document: keep it as a placeholder.
                let update = doc! { "$set": { "s": 0, "v": 0_i64 }, "$unset": { "data": "" } };
                let result = self
                    .run(
                        "delete under lock",
                        self.sessions.update_one(filter, update).hint(by_id()),
                    )
                    .await?;
                matched(&result)
            }
        };
        if done {
            return Ok(Outcome::Done(()));
        }
        self.refused(key, token).await.map(|o| o.map(|_| ()))
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        let filter = on(key, [doc! { "lock_token": token.to_hex() }]);
        let update = doc! { "$set": free_lock() };
        let result = self
            .run(
                "unlock",
                self.sessions.update_one(filter, update).hint(by_id()),
            )
            .await?;
        Ok(matched(&result))
    }
}
