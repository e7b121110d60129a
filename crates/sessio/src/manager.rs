//! The session manager: configuration plus store, shared by every request.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::cookie;
use crate::engine::Engine;
use crate::session::Session;
use crate::store::Store;

/// Owns the store and the configuration, and makes a [`Session`] for each request.
///
/// Web-framework integrations (such as `sessio-axum`) hold one and call
/// [`session`](Self::session) before the handler and [`Session::commit`] after it. It is
/// cheap to clone.
///
/// ```
/// use sessio::{Config, MemoryStore, SessionManager};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
///
/// // First request: no cookie.
/// let session = manager.session(std::iter::empty());
/// session.insert("foo", 1).await?;
/// let set_cookie = session.commit().await?.expect("a new session sends its cookie");
///
/// // Second request: the browser sends the cookie back.
/// let cookie = set_cookie.split(';').next().unwrap();
/// let session = manager.session([cookie.as_bytes()]);
/// assert_eq!(session.get::<i32>("foo").await?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SessionManager {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.engine.config)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager over `store` with `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] if the options do not fit together (see [`Config::validate`]).
    pub fn new(store: impl Store, config: Config) -> Result<Self, ConfigError> {
        Self::from_arc(Arc::new(store), config)
    }

    /// Like [`new`](Self::new), for a store already behind an `Arc` (shared with other
    /// code, or chosen at run time).
    ///
    /// # Errors
    /// A [`ConfigError`] if the options do not fit together.
    pub fn from_arc(store: Arc<dyn Store>, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        if config.index.is_some() && !store.keeps_live_records() {
            return Err(ConfigError::new(
                "the sessions index (Config::with_session_index) needs a store that keeps records until they expire, and this one may evict them (a cache such as Memcached). Use the memory store, Redis (standalone, Cluster or Sentinel), PostgreSQL, MySQL, SQLite or MongoDB, or turn the index off",
            ));
        }
        Ok(Self {
            engine: Arc::new(Engine::new(store, config)),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.engine.store
    }

    /// The session of a request, given the values of its `Cookie` headers.
    ///
    /// Nothing is read from the store yet: that happens when the session is first used.
    /// A cookie value that is not a well-formed id (garbage, oversized, non-UTF-8) is
    /// ignored and the request gets a fresh session; other cookies in the headers, whatever
    /// they hold, do not matter. This never fails.
    pub fn session<'a>(&self, cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Session {
        let presented = cookie::find(cookie_headers, &self.engine.jar.name, &self.engine.ids);
        Session::new(self.engine.clone(), presented)
    }
}
