//! The session manager: configuration plus store, shared by every request.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::Cookie;

use crate::config::{Compat, Config, ConfigError};
use crate::id::SessionId;
use crate::record::{self, Data, Format, Meta};
use crate::session::Session;
use crate::store::{Loaded, Store};
use crate::Error;

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
    pub(crate) inner: Arc<Manager>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Manager {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Config,
    cookie_name: String,
    format: Format,
    accept_hex: bool,
}

/// An id with its store key, computed once.
#[derive(Clone, Debug)]
pub(crate) struct Ident {
    pub id: SessionId,
    pub key: String,
}

/// A record read from the store and checked: live, decodable.
pub(crate) struct Fetched {
    pub loaded: Loaded,
    pub meta: Meta,
    pub data: Data,
}

pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
        let compat = config.compat == Some(Compat::SanicSession);
        Ok(Self {
            inner: Arc::new(Manager {
                store,
                cookie_name: config.cookie_name(),
                format: if compat {
                    Format::JsonOnly
                } else {
                    Format::Native
                },
                accept_hex: compat,
                config,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The session of a request, given the values of its `Cookie` headers.
    ///
    /// Nothing is read from the store yet: that happens when the session is first used.
    /// A cookie value that is not a well-formed id (garbage, oversized, non-UTF-8) is
    /// ignored and the request gets a fresh session; this never fails.
    pub fn session<'a>(&self, cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Session {
        let mut presented = false;
        let mut id = None;
        for header in cookie_headers {
            let Ok(header) = std::str::from_utf8(header) else {
                continue;
            };
            for cookie in Cookie::split_parse(header).flatten() {
                if cookie.name() == self.inner.cookie_name {
                    presented = true;
                    if id.is_none() {
                        id = SessionId::parse(cookie.value(), self.inner.accept_hex);
                    }
                }
            }
        }
        Session::new(self.inner.clone(), id, presented)
    }
}

impl Manager {
    pub(crate) fn ident(&self, id: SessionId) -> Ident {
        let key = id.store_key(&self.config.key_prefix, self.config.hashed_keys);
        Ident { id, key }
    }

    pub(crate) fn new_ident(&self) -> Result<Ident, Error> {
        Ok(self.ident(SessionId::generate()?))
    }

    /// Metadata of a session not stored yet; its creation time is set when first saved.
    pub(crate) fn new_meta(&self) -> Meta {
        Meta {
            created: 0,
            ttl_override: None,
            browser_cookie: self.config.session_cookie,
        }
    }

    /// Stamps the creation time of a session about to be stored for the first time.
    pub(crate) fn stamp_created(&self, meta: &mut Meta, now: SystemTime) {
        if meta.created == 0 && self.format == Format::Native {
            meta.created = unix_secs(now);
        }
    }

    pub(crate) fn encode(&self, meta: &Meta, data: &Data) -> Result<Vec<u8>, Error> {
        let bytes = record::encode(self.format, meta, data);
        if bytes.len() > self.config.max_size {
            return Err(Error::TooLarge {
                size: bytes.len(),
                max: self.config.max_size,
            });
        }
        Ok(bytes)
    }

    /// Checks a loaded record: unexpired (idle and absolute) and decodable.
    pub(crate) fn check(&self, loaded: Loaded, now: SystemTime) -> Option<Fetched> {
        if loaded.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        let (mut meta, data) = match record::decode(self.format, &loaded.data) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, "ignoring an unreadable session record; the client gets a fresh session");
                return None;
            }
        };
        if self.format == Format::JsonOnly {
            meta.browser_cookie = self.config.session_cookie;
        }
        if self.remaining_absolute(&meta, now) == Some(Duration::ZERO) {
            return None;
        }
        Some(Fetched { loaded, meta, data })
    }

    pub(crate) async fn fetch(&self, key: &str, now: SystemTime) -> Result<Option<Fetched>, Error> {
        Ok(self.store.load(key).await?.and_then(|l| self.check(l, now)))
    }

    fn remaining_absolute(&self, meta: &Meta, now: SystemTime) -> Option<Duration> {
        let absolute = self.config.absolute_timeout?;
        if meta.created == 0 {
            return None;
        }
        let deadline = UNIX_EPOCH + Duration::from_secs(meta.created) + absolute;
        Some(deadline.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// How long a record written now should live; `None` if its absolute lifetime is over.
    pub(crate) fn ttl(&self, meta: &Meta, now: SystemTime) -> Option<Duration> {
        let idle = meta
            .ttl_override
            .map_or(self.config.idle_timeout, |s| Duration::from_secs(s.into()));
        match self.remaining_absolute(meta, now) {
            Some(Duration::ZERO) => None,
            Some(rest) => Some(idle.min(rest)),
            None => Some(idle),
        }
    }

    /// Whether a record expiring at `expires_at` was last extended at least `touch_after`
    /// ago (or cannot tell), so that a read should extend it again.
    pub(crate) fn due_for_touch(
        &self,
        expires_at: Option<SystemTime>,
        ttl: Duration,
        now: SystemTime,
    ) -> bool {
        let throttle = self.config.touch_after.min(ttl / 2);
        match expires_at {
            None => true,
            Some(e) => e + throttle < now + ttl,
        }
    }

    fn base_cookie<'c>(&self, value: &'c str) -> cookie::CookieBuilder<'c> {
        let mut builder = Cookie::build((self.cookie_name.clone(), value))
            .path(self.config.path.clone())
            .http_only(self.config.http_only)
            .secure(self.config.secure)
            .same_site(self.config.same_site);
        if let Some(domain) = &self.config.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// The `Set-Cookie` value carrying `id`; persistent for `max_age` if given.
    pub(crate) fn cookie(&self, id: &SessionId, max_age: Option<Duration>) -> String {
        let mut builder = self.base_cookie(id.as_str());
        if let Some(age) = max_age {
            let age = time::Duration::seconds(age.as_secs().try_into().unwrap_or(i64::MAX));
            builder = builder
                .max_age(age)
                .expires(time::OffsetDateTime::now_utc().saturating_add(age));
        }
        builder.build().to_string()
    }

    /// The `Set-Cookie` value that deletes the cookie, repeating every attribute so that
    /// the browser matches it to the one it holds.
    pub(crate) fn removal_cookie(&self) -> String {
        let mut cookie = self.base_cookie("").build();
        cookie.make_removal();
        cookie.to_string()
    }
}
