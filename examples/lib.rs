//! The demo application of `examples/demo.rs`, as a library so that tests and benchmarks
//! drive exactly what the demo serves.
//!
//! Routes (the contract every demo serves, and `tests/contract.rs` checks):
//!
//! ```text
//! GET  /               increment the integer "foo" atomically and return it
//! GET  /get/{key}      200 + JSON value, or 404
//! PUT  /set/{key}      body = JSON value -> 200 "ok"; invalid JSON -> 400
//! POST /clear          empty the session: record deleted, cookie expired
//! POST /rotate         new id, same data
//! GET  /locked?hold_ms=N[&then=rotate|logout]  under the session lock: read "locked",
//!                      sleep N ms, write +1 (then rotate the id or end the session, still
//!                      under the lock)
//! POST /login/{user}?remember=0|1&duration=SECONDS   log in (the id rotates);
//!                      remember=0: a browser-session cookie, 1: persistent; duration: this
//!                      login's idle timeout
//! GET  /me             200 user | 401 (the login guard; OPTIONS -> 204)
//! POST /logout         end the session
//! POST /flash          body = text: a flash message;  GET /flash -> JSON array of the
//!                      messages set since the last GET /flash, then []
//! GET  /prefs/{key}    PUT /prefs/{key}: like /get and /set, on a second session (cookie
//!                      `prefs`, persistent, same store) that /logout and /clear leave alone
//! GET  /csrf           the session's CSRF token;  POST /transfer -> 200 only with header
//!                      X-CSRF-Token: <token>, 403 otherwise
//! GET  /sessions       the logged-in user's live sessions: JSON array of {"handle",
//!                      "current", "created", "last_seen" (Unix seconds), "label" (the
//!                      login's User-Agent)}; 401 when not logged in; 501 on a store that
//!                      cannot keep the index (Memcached)
//! POST /sessions/revoke-others   end every other session of the user (200)
//! DELETE /sessions/{handle}      end one of the user's sessions: 200, or 404 for a handle
//!                      that is not one of theirs
//! ```
//!
//! The devices index is on whenever the store can keep it; `max_sessions_per_user` caps
//! each user's sessions (a login past it ends the least recently active one).
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use sessio::cookie_store::CookieStore;
use sessio::devices::Devices;
use sessio::{codec::Codec, store::Store, Compat, Config, MemoryStore, SessionManager};
use sessio_axum::{LoggedIn, NamedSession, Session, SessionError, SessionLayer};

pub mod actix;
pub mod cli;
pub mod routes;

use routes::{Hold, LoginQuery, Reply};

/// Options of the demo server that shape its sessions.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Idle timeout in seconds (the library default if `None`).
    pub ttl: Option<u64>,
    /// Absolute lifetime in seconds.
    pub absolute_ttl: Option<u64>,
    /// Share sessions with Python's sanic_session.
    pub compat: Option<Compat>,
    /// Send the cookie with `Secure`.
    pub secure: bool,
    /// How long `/locked` waits for the lock (library default if `None`).
    pub lock_wait: Option<Duration>,
    /// Most sessions the in-memory store keeps (its default if `None`).
    pub max_sessions: Option<usize>,
    /// Most sessions per user (none if `None`); needs a store that keeps the index.
    pub max_sessions_per_user: Option<usize>,
    /// How session data is written in the store.
    pub codec: Codec,
    /// The session cookie's name (the library default, `id`, if `None`).
    pub cookie_name: Option<String>,
    /// Redis: every write waits for this many replicas (`WAIT`), as
    /// `RedisStoreBuilder::replica_acks` describes (off if `None`).
    pub redis_replica_acks: Option<u32>,
    /// Redis: the near cache's budget in bytes (`RedisStoreBuilder::near_cache`; its
    /// default if `None`, 0 turns it off).
    pub redis_near_cache: Option<usize>,
    /// Redis: how long the near cache may serve an entry after Redis last confirmed it
    /// (`RedisStoreBuilder::near_cache_trust`; its default if `None`).
    pub redis_near_cache_trust: Option<Duration>,
}

impl DemoOptions {
    /// The session configuration these options describe.
    pub fn config(&self) -> Config {
        let mut config = Config::default()
            .with_codec(self.codec)
            .with_compat(self.compat)
            .with_secure(self.secure)
            .with_absolute_timeout(self.absolute_ttl.map(Duration::from_secs));
        if let Some(wait) = self.lock_wait {
            config = config.with_lock_wait(wait);
        }
        if let Some(name) = &self.cookie_name {
            config = config.with_cookie_name(name.clone());
        }
        if let Some(ttl) = self.ttl {
            config = config.with_idle_timeout(Duration::from_secs(ttl));
        }
        config
    }
}

/// Why a `--store` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreUrlError {
    /// The scheme names no store this build knows.
    #[error("unknown store {0:?}; expected memory, redis://HOST:PORT, rediss://…, redis+cluster://H1:P1,H2:P2, redis+sentinel://H1:P1/MASTER, memcached://HOST:PORT[,HOST:PORT...], mongodb://HOST:PORT/DB, postgres://USER@HOST:PORT/DB, sqlite://PATH or mysql://USER@HOST:PORT/DB")]
    Unknown(String),
    /// The Redis store could not be opened.
    #[error(transparent)]
    Redis(#[from] sessio_redis::RedisStoreError),
    /// The Memcached store could not be opened.
    #[error(transparent)]
    Memcached(#[from] sessio_memcached::MemcachedStoreError),
    /// The MongoDB store could not be opened.
    #[error(transparent)]
    Mongo(#[from] sessio_mongodb::MongoStoreError),
    /// A SQL store could not be opened or migrated.
    #[error(transparent)]
    Sql(#[from] sessio_sql::SqlStoreError),
}

/// Opens the store named by a `--store` value.
///
/// # Errors
/// [`StoreUrlError`] for a store this build does not know.
pub async fn open_store(
    spec: &str,
    options: &DemoOptions,
) -> Result<Arc<dyn Store>, StoreUrlError> {
    match spec {
        "memory" => {
            let mut builder = MemoryStore::builder();
            if let Some(max) = options.max_sessions {
                builder = builder.max_sessions(max);
            }
            Ok(Arc::new(builder.build()))
        }
        url if url.starts_with("redis") => {
            let mut builder = sessio_redis::RedisStore::builder();
            if let Some(replicas) = options.redis_replica_acks {
                builder = builder.replica_acks(replicas, Duration::from_millis(250));
            }
            if let Some(bytes) = options.redis_near_cache {
                builder = builder.near_cache(bytes);
            }
            if let Some(window) = options.redis_near_cache_trust {
                builder = builder.near_cache_trust(window);
            }
            Ok(Arc::new(builder.connect(url).await?))
        }
        url if url.starts_with("memcached://") => Ok(Arc::new(
            sessio_memcached::MemcachedStore::connect(url).await?,
        )),
        url if url.starts_with("mongodb://") => {
            let store = sessio_mongodb::MongoStore::connect(url).await?;
            // The TTL index is a clean-up aid; a server without index support still works,
            // since every read checks expiry.
            if let Err(error) = store.setup().await {
                tracing::warn!(%error, "no TTL index; expired sessions are ignored but not reaped");
            }
            Ok(Arc::new(store))
        }
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = sessio_sql::PostgresStore::connect(url).await?;
            Ok(Arc::new(with_sweeper(store).await?))
        }
        url if url.starts_with("sqlite:") => {
            let store = sessio_sql::SqliteStore::connect(url).await?;
            Ok(Arc::new(with_sweeper(store).await?))
        }
        url if url.starts_with("mysql://") || url.starts_with("mariadb://") => {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let store = sessio_sql::MySqlStore::connect(&url).await?;
            Ok(Arc::new(with_sweeper(store).await?))
        }
        other => Err(StoreUrlError::Unknown(other.to_string())),
    }
}

/// Migrates a SQL store's table and keeps its sweeper running for the life of the process.
async fn with_sweeper<D: sessio_sql::Database>(
    store: sessio_sql::SqlStore<D>,
) -> Result<sessio_sql::SqlStore<D>, sessio_sql::SqlStoreError> {
    store.migrate().await?;
    store.spawn_sweeper().detach();
    Ok(store)
}

/// The demo's two sessions: the main one, and the preferences (a second session under
/// its own persistent cookie, which a logout of the main session leaves alone).
#[derive(Debug, Clone)]
pub struct Managers {
    /// The main session.
    pub session: SessionManager,
    /// The preferences.
    pub prefs: SessionManager,
}

impl Managers {
    /// The demo's sessions on a server-side `store`.
    ///
    /// # Errors
    /// A configuration error from the options.
    pub fn new(store: Arc<dyn Store>, options: &DemoOptions) -> Result<Self, sessio::ConfigError> {
        let mut config = options.config();
        // The user's sessions: on whenever the store can keep them (a maximum asks for it
        // explicitly, and is refused on a store that cannot).
        if store.keeps_live_records() || options.max_sessions_per_user.is_some() {
            let mut index = Devices::new();
            if let Some(max) = options.max_sessions_per_user {
                index = index.max_per_user(max);
            }
            config = config.with_devices(index);
        }
        Ok(Self {
            session: SessionManager::from_arc(Arc::clone(&store), config)?,
            prefs: SessionManager::from_arc(store, prefs_config(options))?,
        })
    }

    /// The demo's sessions on the encrypted cookie store (`--store cookie`): the session
    /// and the preferences sealed in the browser's cookies (the preferences in
    /// `prefs_store`, under their own cookie). `/locked` and the devices index answer
    /// `501`.
    ///
    /// # Errors
    /// A [`sessio::ConfigError`] if the options do not fit a cookie store.
    pub fn cookie(
        store: CookieStore,
        prefs_store: CookieStore,
        options: &DemoOptions,
    ) -> Result<Self, sessio::ConfigError> {
        Ok(Self {
            session: SessionManager::with_cookie_store(store, options.config())?,
            prefs: SessionManager::with_cookie_store(prefs_store, prefs_config(options))?,
        })
    }
}

/// The demo's router over `store`.
///
/// # Errors
/// A configuration error from the options.
pub fn app(store: Arc<dyn Store>, options: &DemoOptions) -> Result<Router, sessio::ConfigError> {
    Managers::new(store, options).map(routes)
}

/// The demo's router on the encrypted cookie store (see [`Managers::cookie`]).
///
/// # Errors
/// A [`sessio::ConfigError`] if the options do not fit a cookie store.
pub fn cookie_app(
    store: CookieStore,
    prefs_store: CookieStore,
    options: &DemoOptions,
) -> Result<Router, sessio::ConfigError> {
    Managers::cookie(store, prefs_store, options).map(routes)
}

fn prefs_config(options: &DemoOptions) -> Config {
    Config::default()
        .with_cookie_name("prefs")
        // Its own store keys: a prefs cookie must not open a main session, nor the
        // main cookie a prefs session.
        .with_key_prefix("prefs:")
        .with_secure(options.secure)
        .with_idle_timeout(Duration::from_secs(365 * 86_400))
}

/// The demo's axum router over its two sessions.
pub fn routes(managers: Managers) -> Router {
    Router::new()
        .route("/", get(increment))
        .route("/get/{key}", get(get_key))
        .route("/set/{key}", put(set_key))
        .route("/clear", post(clear))
        .route("/rotate", post(rotate))
        .route("/locked", get(locked))
        .route("/login/{user}", post(login))
        // OPTIONS reaches the guard, which exempts it (a CORS preflight carries no cookie).
        .route("/me", get(me).options(me))
        .route("/logout", post(logout))
        .route("/flash", post(add_flash).get(take_flashes))
        .route("/csrf", get(csrf_token))
        .route("/transfer", post(transfer))
        .route("/prefs/{key}", get(get_pref).put(set_pref))
        .route("/sessions", get(list_sessions))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/sessions/{handle}", delete(revoke_session))
        .layer(SessionLayer::from_manager(managers.session))
        .layer(SessionLayer::from_manager(managers.prefs).named::<Prefs>())
}

/// The marker of the demo's second session, the preferences.
pub struct Prefs;

/// A reply as an axum response.
struct Answer(Reply);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::OK);
        (status, [(CONTENT_TYPE, self.0.content_type)], self.0.body).into_response()
    }
}

type Handled = Result<Answer, SessionError>;

async fn increment(session: Session) -> Handled {
    Ok(Answer(routes::increment(&session).await?))
}

async fn get_key(session: Session, Path(key): Path<String>) -> Handled {
    Ok(Answer(routes::get_key(&session, &key).await?))
}

/// The request body, or the contract's answer to one that cannot be read.
fn body_or_reply(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Answer> {
    body.map_err(|rejection| Answer(routes::unreadable_body(rejection.status().as_u16())))
}

async fn set_key(
    session: Session,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(reply),
    };
    Ok(Answer(routes::set_key(&session, &key, &body).await?))
}

async fn get_pref(prefs: NamedSession<Prefs>, Path(key): Path<String>) -> Handled {
    Ok(Answer(routes::get_key(&prefs, &key).await?))
}

async fn set_pref(
    prefs: NamedSession<Prefs>,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(reply),
    };
    Ok(Answer(routes::set_key(&prefs, &key, &body).await?))
}

async fn clear(session: Session) -> Handled {
    Ok(Answer(routes::clear(&session).await?))
}

async fn rotate(session: Session) -> Handled {
    Ok(Answer(routes::rotate(&session).await?))
}

async fn locked(session: Session, Query(hold): Query<Hold>) -> Handled {
    Ok(Answer(routes::locked(&session, &hold).await?))
}

async fn login(
    session: Session,
    Path(user): Path<String>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Handled {
    let agent = headers.get(USER_AGENT).map(|v| v.as_bytes());
    Ok(Answer(routes::login(&session, &user, &query, agent).await?))
}

async fn me(LoggedIn(user): LoggedIn<String>) -> String {
    user
}

async fn logout(session: Session) -> Handled {
    Ok(Answer(routes::logout(&session).await?))
}

async fn add_flash(session: Session, body: Result<Bytes, BytesRejection>) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(reply),
    };
    Ok(Answer(routes::add_flash(&session, &body).await?))
}

async fn take_flashes(session: Session) -> Handled {
    Ok(Answer(routes::take_flashes(&session).await?))
}

async fn csrf_token(session: Session) -> Handled {
    Ok(Answer(routes::csrf_token(&session).await?))
}

async fn transfer(session: Session, headers: HeaderMap) -> Handled {
    let presented = headers.get("x-csrf-token").map(|v| v.as_bytes());
    Ok(Answer(routes::transfer(&session, presented).await?))
}

async fn list_sessions(LoggedIn(_): LoggedIn<String>, session: Session) -> Handled {
    Ok(Answer(routes::list_sessions(&session).await?))
}

async fn revoke_others(LoggedIn(_): LoggedIn<String>, session: Session) -> Handled {
    Ok(Answer(routes::revoke_others(&session).await?))
}

async fn revoke_session(
    LoggedIn(_): LoggedIn<String>,
    session: Session,
    Path(handle): Path<String>,
) -> Handled {
    Ok(Answer(routes::revoke_session(&session, &handle).await?))
}
