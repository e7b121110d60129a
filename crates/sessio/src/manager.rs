//! The session manager: configuration plus store, shared by every request.

use std::sync::Arc;

use crate::carried::{Carried, Sealing};
use crate::config::{Compat, Config, ConfigError};
use crate::cookie::{self, Presented};
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
        if config.devices.is_some() && !store.keeps_live_records() {
            return Err(ConfigError::new(
                "the devices index (Config::with_devices) needs a store that keeps records until they expire, and this one may evict them (a cache such as Memcached). Use the memory store, Redis (standalone, Cluster or Sentinel), PostgreSQL, MySQL, SQLite or MongoDB, or turn the index off",
            ));
        }
        if config.compat == Some(Compat::SanicCookies) {
            return Err(ConfigError::new(
                "Compat::SanicCookies is the format of the encrypted cookie store: use SessionManager::with_cookie_store with CookieStore::fernet (feature cookie-store)",
            ));
        }
        Self::build(store, config, None)
    }

    /// A manager whose sessions travel sealed in the browser's cookies (see
    /// [`cookie_store`](crate::cookie_store)); nothing is kept on the server. Integrations
    /// must send every value of [`Session::commit_cookies`].
    ///
    /// # Errors
    /// A [`ConfigError`] if the options do not fit together, or do not fit a cookie store:
    /// the devices index needs server state; `Compat::SanicSession` is a server-side
    /// format; a Fernet store ([`CookieStore::fernet`](crate::cookie_store::CookieStore::fernet))
    /// goes with `Compat::SanicCookies` and only with it.
    #[cfg(feature = "cookie-store")]
    pub fn with_cookie_store(
        store: crate::cookie_store::CookieStore,
        config: Config,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if config.devices.is_some() {
            return Err(ConfigError::new(
                "the devices index needs a server-side store: with the cookie store nothing on the server lists a user's sessions; turn the index off or use a server-side store",
            ));
        }
        match (config.compat, store.is_fernet()) {
            (Some(Compat::SanicSession), _) => {
                return Err(ConfigError::new(
                    "Compat::SanicSession shares a server-side store (Redis, Memcached) with the Python app; for sanic-cookies' InCookieEncrypted use Compat::SanicCookies",
                ))
            }
            (Some(Compat::SanicCookies), false) => {
                return Err(ConfigError::new(
                    "Compat::SanicCookies reads Fernet tokens: build the store with CookieStore::fernet and the Python app's key",
                ))
            }
            (None, true) => {
                return Err(ConfigError::new(
                    "a Fernet cookie store is the sanic-cookies format: add Config::with_compat(Some(Compat::SanicCookies)), or use CookieStore::new for the native format",
                ))
            }
            _ => {}
        }
        let sealing = Arc::new(store.into_sealing()?);
        let nothing = Carried::empty(sealing.clone(), &config);
        Self::build(Arc::new(nothing), config, Some(sealing))
    }

    fn build(
        store: Arc<dyn Store>,
        config: Config,
        sealing: Option<Arc<Sealing>>,
    ) -> Result<Self, ConfigError> {
        let engine = Engine::new(store, config, sealing).map_err(|error| {
            ConfigError::new(format!("could not set the session engine up: {error}"))
        })?;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The store. With the cookie store it holds nothing: each request's session lives in
    /// its own cookies.
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
        let engine = &self.engine;
        match (&engine.sealing, &engine.carried_key) {
            (Some(sealing), Some((id, key))) => {
                let (carried, sent) = Carried::from_headers(
                    cookie_headers,
                    &engine.jar.name,
                    key.clone(),
                    sealing.clone(),
                    engine.config.clock.clone(),
                    engine.config.idle_timeout,
                );
                let presented = if sent {
                    Presented::Id(id.clone(), None)
                } else {
                    Presented::Absent
                };
                Session::new(engine.clone(), presented, Some(Arc::new(carried)))
            }
            _ => {
                let presented = cookie::find(
                    cookie_headers,
                    &engine.jar.name,
                    &engine.ids,
                    engine
                        .counts_writes
                        .then_some(engine.jar.stamp_name.as_str()),
                );
                Session::new(engine.clone(), presented, None)
            }
        }
    }
}
