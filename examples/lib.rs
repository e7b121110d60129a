//! The demo application of `examples/demo.rs`, as a library so that tests and benchmarks
//! drive exactly what the demo serves.
//!
//! Routes (the contract in DESIGN.md):
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
//! The sessions index is on whenever the store can keep it; `max_sessions_per_user` caps
//! each user's sessions (a login past it ends the least recently active one).
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use sessio::auth::Login;
use sessio::cookie_store::CookieStore;
use sessio::index::SessionIndex;
use sessio::{Codec, Compat, Config, MemoryStore, Store};
use sessio_axum::{LoggedIn, NamedSession, Session, SessionError, SessionLayer};

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
            Ok(Arc::new(sessio_redis::RedisStore::connect(url).await?))
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

/// The demo's router over `store`.
///
/// # Errors
/// A configuration error from the options.
pub fn app(store: Arc<dyn Store>, options: &DemoOptions) -> Result<Router, sessio::ConfigError> {
    let mut config = options.config();
    // The user's sessions: on whenever the store can keep them (a maximum asks for it
    // explicitly, and is refused on a store that cannot).
    if store.keeps_live_records() || options.max_sessions_per_user.is_some() {
        let mut index = SessionIndex::new();
        if let Some(max) = options.max_sessions_per_user {
            index = index.max_per_user(max);
        }
        config = config.with_session_index(index);
    }
    let manager = sessio::SessionManager::from_arc(Arc::clone(&store), config)?;
    // The preferences: a second session on the same store, under its own persistent
    // cookie, which a logout of the main session leaves alone.
    let prefs = sessio::SessionManager::from_arc(store, prefs_config(options))?;
    Ok(routes(manager, prefs))
}

/// The demo on the encrypted cookie store (`--store cookie`): every route, with the
/// session and the preferences sealed in the browser's cookies (the preferences in
/// `prefs_store`, under their own cookie). `/locked` and the sessions index answer `501`.
///
/// # Errors
/// A [`sessio::ConfigError`] if the options do not fit a cookie store.
pub fn cookie_app(
    store: CookieStore,
    prefs_store: CookieStore,
    options: &DemoOptions,
) -> Result<Router, sessio::ConfigError> {
    let manager = sessio::SessionManager::with_cookie_store(store, options.config())?;
    let prefs = sessio::SessionManager::with_cookie_store(prefs_store, prefs_config(options))?;
    Ok(routes(manager, prefs))
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

fn routes(manager: sessio::SessionManager, prefs: sessio::SessionManager) -> Router {
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
        .layer(SessionLayer::from_manager(manager))
        .layer(SessionLayer::from_manager(prefs).named::<Prefs>())
}

/// The marker of the demo's second session, the preferences.
struct Prefs;

async fn get_pref(
    prefs: NamedSession<Prefs>,
    Path(key): Path<String>,
) -> Result<Response, SessionError> {
    if let Some(refused) = reserved(&key) {
        return Ok(refused);
    }
    Ok(match prefs.get_value(&key).await? {
        Some(value) => Json(value).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

async fn set_pref(
    prefs: NamedSession<Prefs>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, SessionError> {
    if let Some(refused) = reserved(&key) {
        return Ok(refused);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok((StatusCode::BAD_REQUEST, "invalid JSON\n").into_response());
    };
    prefs.insert(&key, value).await?;
    Ok("ok".into_response())
}

async fn increment(session: Session) -> Result<String, SessionError> {
    // A `foo` of another type (written through `/set/foo`) is a handler error (500): the
    // demo shows how such errors are answered and logged.
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0).saturating_add(1))
        .await?;
    Ok(n.to_string())
}

/// `/get`, `/set` and `/prefs` name keys from the URL: the keys of sessio's helpers are
/// not theirs to touch (writing `_user` would be logging in as anyone).
fn reserved(key: &str) -> Option<Response> {
    sessio::keys::is_reserved(key).then(|| {
        (
            StatusCode::FORBIDDEN,
            "keys starting with '_' belong to sessio's helpers\n",
        )
            .into_response()
    })
}

async fn get_key(session: Session, Path(key): Path<String>) -> Result<Response, SessionError> {
    if let Some(refused) = reserved(&key) {
        return Ok(refused);
    }
    Ok(match session.get_value(&key).await? {
        Some(value) => Json(value).into_response(),
        None => (StatusCode::NOT_FOUND, "no such key\n").into_response(),
    })
}

async fn set_key(
    session: Session,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, SessionError> {
    if let Some(refused) = reserved(&key) {
        return Ok(refused);
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return Ok(
                (StatusCode::BAD_REQUEST, format!("invalid JSON: {error}\n")).into_response(),
            )
        }
    };
    session.insert(&key, &value).await?;
    Ok("ok".into_response())
}

async fn clear(session: Session) -> Result<&'static str, SessionError> {
    session.clear().await?;
    Ok("ok")
}

async fn rotate(session: Session) -> Result<&'static str, SessionError> {
    session.cycle_id().await?;
    Ok("ok")
}

/// Query of `/locked`.
#[derive(Debug, Deserialize)]
struct Hold {
    #[serde(default)]
    hold_ms: u64,
    /// What to do inside the locked section after the increment: `rotate` (a login inside
    /// the lock) or `logout`.
    #[serde(default)]
    then: Option<String>,
}

async fn locked(session: Session, Query(hold): Query<Hold>) -> Result<String, SessionError> {
    let guard = session.lock().await?;
    let n = guard
        .get::<i64>("locked")
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    tokio::time::sleep(Duration::from_millis(hold.hold_ms.min(60_000))).await;
    guard.insert("locked", &n).await?;
    match hold.then.as_deref() {
        Some("rotate") => guard.cycle_id().await?,
        Some("logout") => guard.destroy().await?,
        _ => {}
    }
    guard.unlock().await?;
    Ok(n.to_string())
}

/// The query of `POST /login/{user}`.
#[derive(Debug, Deserialize)]
struct LoginQuery {
    /// `1`: a persistent cookie; `0`: one that dies with the browser.
    remember: Option<u8>,
    /// This login's idle timeout, in seconds.
    duration: Option<u64>,
}

async fn login(
    session: Session,
    Path(user): Path<String>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<&'static str, SessionError> {
    let mut login = Login::new();
    if let Some(agent) = headers.get(USER_AGENT) {
        // Not every User-Agent is ASCII; keep what it says.
        login = login.label(String::from_utf8_lossy(agent.as_bytes()));
    }
    if let Some(remember) = query.remember {
        login = login.remember(remember != 0);
    }
    if let Some(seconds) = query.duration {
        login = login.idle(Duration::from_secs(seconds.max(1)));
    }
    session.login_with(&user, login).await?;
    Ok("ok")
}

async fn me(LoggedIn(user): LoggedIn<String>) -> String {
    user
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.logout().await?;
    Ok("ok")
}

async fn add_flash(session: Session, body: String) -> Result<&'static str, SessionError> {
    session.flash(body).await?;
    Ok("ok")
}

async fn take_flashes(session: Session) -> Result<Json<Vec<String>>, SessionError> {
    Ok(Json(session.take_flashes().await?))
}

async fn csrf_token(session: Session) -> Result<String, SessionError> {
    Ok(session.csrf_token().await?)
}

async fn transfer(session: Session, headers: HeaderMap) -> Result<Response, SessionError> {
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(if session.verify_csrf(presented).await? {
        "ok".into_response()
    } else {
        (StatusCode::FORBIDDEN, "missing or wrong X-CSRF-Token\n").into_response()
    })
}

/// One of the user's sessions, as `GET /sessions` shows it.
#[derive(Debug, serde::Serialize)]
struct Device {
    handle: String,
    current: bool,
    created: u64,
    last_seen: u64,
    label: Option<String>,
}

fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn list_sessions(
    LoggedIn(_): LoggedIn<String>,
    session: Session,
) -> Result<Json<Vec<Device>>, SessionError> {
    let devices = session
        .sessions()
        .await?
        .into_iter()
        .map(|s| Device {
            created: unix_seconds(s.created),
            last_seen: unix_seconds(s.last_seen),
            handle: s.handle,
            current: s.current,
            label: s.label,
        })
        .collect();
    Ok(Json(devices))
}

async fn revoke_others(
    LoggedIn(_): LoggedIn<String>,
    session: Session,
) -> Result<String, SessionError> {
    Ok(format!("{}\n", session.revoke_others().await?))
}

async fn revoke_session(
    LoggedIn(_): LoggedIn<String>,
    session: Session,
    Path(handle): Path<String>,
) -> Result<Response, SessionError> {
    Ok(if session.revoke(&handle).await? {
        "ok".into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such session of yours\n").into_response()
    })
}
