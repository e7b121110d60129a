//! # sessio-redis
//!
//! A [Redis](https://redis.io) store for [`sessio`]: several app processes, on several
//! machines, share sessions through one Redis (standalone, Cluster or Sentinel), with the
//! engine's guarantees intact — conditional saves, a lock shared by every process, fencing.
//!
//! ```no_run
//! use sessio_redis::RedisStore;
//!
//! # async fn run() -> Result<(), sessio_redis::RedisStoreError> {
//! // Standalone; `redis+cluster://h1:p1,h2:p2` for a Cluster,
//! // `redis+sentinel://h1:p1,h2:p2/mymaster` through Sentinel.
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let layer = sessio_axum::SessionLayer::new(store);
//! # Ok(()) }
//! ```
//!
//! ## How each operation maps to Redis
//!
//! Every store operation is **one round trip**; the multi-step ones are Lua scripts, sent
//! by `EVALSHA` (loaded once, re-sent with `EVAL` if the server lost them):
//!
//! | operation | Redis |
//! |---|---|
//! | load | script: `GET` + `PTTL` — or nothing, from the [near cache](#near-cache) |
//! | create-if-absent | `SET key value NX PX ttl` |
//! | conditional save | script: compare the stored bytes with the loaded ones, then `SET … PX` (and re-read, to stay tracked) |
//! | touch | `PEXPIRE` (never revives an expired key) |
//! | delete | `DEL` |
//! | lock | script: take `{key}:lock` (`SET … PX lease`) unless another token holds it, and return `GET` + `PTTL` of the record |
//! | fenced save / delete | script: write only while our token holds `{key}:lock`; release in the same call |
//! | release | script: compare-and-delete `{key}:lock` |
//!
//! On a server with `DELIFEQ` and `SET … IFEQ` (Valkey 9; the store asks with `COMMAND
//! INFO` when it connects) two scripts give way to one command each, with the same
//! semantics: the release is `DELIFEQ {key}:lock token`, and the conditional save of a
//! store without a near cache (Cluster, Sentinel, `near_cache(0)`) is `SET key new IFEQ
//! old GET PX ttl`, whose `GET` still tells a missing session from another's version.
//! Measured on Valkey 9.1.2 (`redis-benchmark`, 50 clients, pipelines of 16, one core),
//! the server runs `DELIFEQ` at 706 k/s against 269 k/s for the script, and `SET … IFEQ`
//! at 426 k/s against 145 k/s. With the near cache, the save stays a script: it must read
//! the key back in the same atomic step to stay tracked, which a plain `SET` does not.
//!
//! The record's value is the engine's bytes, unchanged, so in `sanic_session`
//! compatibility mode it is exactly the session's JSON object under `session:<id>`, and a
//! Python app reading the same Redis sees its own format. The lock lives beside it, under
//! `{<record key>}:lock`: the hash tag puts it in the record's Cluster slot, so the scripts
//! touch a single slot. (Key prefixes must therefore not contain `{`.)
//!
//! Conditional saves compare the stored bytes with the ones that were loaded, so they also
//! catch writes made by another implementation (a Python app in compatibility mode).
//!
//! ## Near cache
//!
//! A store connected to one Redis server keeps the sessions it read recently in this
//! process (up to 32 MiB by default, [`RedisStoreBuilder::near_cache`]) and serves them again
//! without a round trip, so a request that only reads its session costs no Redis command and
//! one that changes it costs one (the conditional save). The cache stays coherent through
//! Redis's server-assisted client-side caching: the store's connection speaks RESP3 with
//! `CLIENT TRACKING ON OPTOUT NOLOOP`, Redis remembers the keys this process read (but for
//! reads sent right after `CLIENT CACHING NO`, in the same write), and pushes an
//! `invalidate` message on that connection as soon as another client (another app process,
//! a Python app in compatibility mode, `redis-cli`) changes or deletes one of them.
//!
//! What that guarantees, and what it does not:
//!
//! - **No lost updates.** A save is still conditional on the bytes it was based on, so a
//!   save from a stale cached copy conflicts, and the engine reloads from Redis (a conflict
//!   or an unknown outcome drops the key from the cache) and merges as usual.
//! - **Read-your-writes across processes.** An invalidation can arrive after the client's
//!   next request (on a busy machine, a read can trail the write by that much). So the
//!   store tells the engine it serves from a cache
//!   ([`Store::serves_from_cache`](sessio::store::Store::serves_from_cache)), the engine
//!   keeps a write count in each record and in a cookie of its own (`<name>.w`), and a
//!   request whose cookie shows a newer write than the cached copy reads Redis
//!   ([`Store::load_fresh`](sessio::store::Store::load_fresh)). Another client's writes may
//!   still be seen up to the push's flight time late, as with any cache or replica. Locked
//!   sessions ([`Session::lock`](sessio::Session::lock)) always read from Redis. In the
//!   `sanic_session` compatibility mode the cookie must be the bare id, so this does not
//!   apply; turn the cache off there if it matters (`near_cache(0)`).
//! - **No stale reads when Redis is unreachable.** A dropped connection empties the cache
//!   at once; if the connection goes silent without breaking, the cache stops answering
//!   once Redis has not replied for [`RedisStoreBuilder::near_cache_trust`] (1 s by
//!   default), and reads fail like every other request.
//! - Our own writes keep the cache current: each write script ends with a read of the key,
//!   so Redis goes on tracking it after the write (a write ends tracking).
//! - **Forged ids cost Redis nothing that stays.** A session not in the cache is first read
//!   untracked (`CLIENT CACHING NO`); only one that exists is read again, tracked (one more
//!   round trip on a cache miss), and locks read untracked, so a flood of made-up ids grows
//!   no tracking table. Redis tracks only the keys
//!   this process caches, so other writes to the database cost it nothing.
//!
//! The same connection pipelines automatically: the commands that concurrent requests
//! issue in one turn of the Tokio scheduler are written to Redis together, as one pipeline,
//! and each request gets its own reply. Under load that saves a `write` here and a `read` in
//! Redis per request; at rest a command waits one scheduler turn.
//!
//! Cluster and Sentinel stores, stores over connections passed in
//! ([`from_connection_manager`](RedisStore::from_connection_manager),
//! [`from_cluster`](RedisStore::from_cluster)), and servers that refuse RESP3 or
//! `CLIENT TRACKING` (Redis before 6.0) read from Redis on every load, one command per
//! write.
//!
//! ## Failures
//!
//! Every command is bounded by a timeout (default 500 ms,
//! [`RedisStoreBuilder::command_timeout`]); a Redis that is down or slow yields a
//! [`StoreError`](sessio::store::StoreError) of kind `Unavailable` or `Timeout`, which the axum layer answers with
//! `503`. Connections re-establish by themselves when Redis returns.
//!
//! ## Failover
//!
//! Redis Cluster and Sentinel replicate asynchronously: a master answers a write before its
//! replicas have it, so when it fails, the replica promoted in its place may lack the last
//! writes it acknowledged — a login undone, a logout forgotten, increments gone.
//! [`RedisStoreBuilder::replica_acks`] makes every write wait (`WAIT`) until that many
//! replicas have it, and fail with a store error otherwise; with it on, every write the
//! store reports done survives the failover of its master. The tests partition a replica
//! from its master, kill the master and let the replica take over, ten times under load
//! from two app processes: without the option a client lost about 70 increments it had
//! been answered for; with `replica_acks(1, 250 ms)`, none in ten runs. Its cost (one more
//! round trip per write, and the replication delay) is in the benchmark's Redis Cluster
//! rows. `WAITAOF` (fsync on replicas, Redis 7.2) is not offered: the servers tested have no
//! append-only file to wait for.
#![warn(missing_docs)]

mod batch;
mod builder;
mod connection;
mod near;
mod scripts;
mod store;

pub use builder::RedisStoreBuilder;
pub use connection::RedisStoreError;
pub use store::RedisStore;
