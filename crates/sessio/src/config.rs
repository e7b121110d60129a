//! Session configuration: cookie attributes, expiry, store keys, limits and locking.

use std::sync::Arc;
use std::time::Duration;

pub use cookie::SameSite;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::codec::Codec;
use crate::devices::Devices;
use crate::id::{check_generator, IdGenerator};

/// Everything a [`SessionManager`](crate::SessionManager) can be told, with safe defaults.
///
/// | option | default | meaning |
/// |---|---|---|
/// | [`with_cookie_name`](Self::with_cookie_name) | `"id"` | name of the session cookie |
/// | [`with_domain`](Self::with_domain) | none (host-only) | cookie `Domain` |
/// | [`with_path`](Self::with_path) | `"/"` | cookie `Path` |
/// | [`with_secure`](Self::with_secure) | `true` | cookie `Secure` (browsers honour it on `http://localhost` too) |
/// | [`with_http_only`](Self::with_http_only) | `true` | cookie `HttpOnly` |
/// | [`with_same_site`](Self::with_same_site) | `Lax` | cookie `SameSite` |
/// | [`with_host_prefix`](Self::with_host_prefix) | `false` | name the cookie `__Host-<name>` (forces `Secure`, `Path=/`, no `Domain`) |
/// | [`with_session_cookie`](Self::with_session_cookie) | `false` | no `Max-Age`: the cookie dies with the browser; the server still expires the session |
/// | [`with_idle_timeout`](Self::with_idle_timeout) | 30 days | a session unused this long expires (rolling) |
/// | [`with_absolute_timeout`](Self::with_absolute_timeout) | none | a session expires this long after creation, however active |
/// | [`with_touch_after`](Self::with_touch_after) | 60 s | a read extends the idle timeout only if this much of it has elapsed |
/// | [`with_key_prefix`](Self::with_key_prefix) | `"session:"` | prefix of the store key |
/// | [`with_hashed_keys`](Self::with_hashed_keys) | `true` | store key = SHA-256 of the id, not the id |
/// | [`with_max_size`](Self::with_max_size) | 64 KiB | largest encoded session accepted on save |
/// | [`with_lock_lease`](Self::with_lock_lease) | 10 s | how long a [`lock`](crate::Session::lock) holds before it lapses by itself |
/// | [`with_lock_wait`](Self::with_lock_wait) | 5 s | how long `lock()` waits for another holder before [`Error::LockTimeout`](crate::Error::LockTimeout) |
/// | [`with_max_retries`](Self::with_max_retries) | 32 | conditional-save attempts under contention before [`Error::Conflict`](crate::Error::Conflict) |
/// | [`with_rotation_grace`](Self::with_rotation_grace) | 60 s | how long a rotated-away id leads its in-flight requests to the successor |
/// | [`with_clock`](Self::with_clock) | system clock | where expiry reads the time |
/// | [`with_devices`](Self::with_devices) | off | keep an index of each user's sessions (list, revoke, cap per user) |
/// | [`with_id_generator`](Self::with_id_generator) | 256 random bits, base64url | a custom id format, checked to carry at least 128 random bits |
/// | [`with_codec`](Self::with_codec) | JSON | how the session's data is written in the store (MessagePack with the `msgpack` feature) |
///
/// ```
/// use sessio::{Config, SameSite};
/// use std::time::Duration;
///
/// let config = Config::default()
///     .with_cookie_name("sid")
///     .with_same_site(SameSite::Strict)
///     .with_idle_timeout(Duration::from_secs(30 * 60))
///     .with_absolute_timeout(Some(Duration::from_secs(12 * 3600)));
/// assert!(config.validate().is_ok());
///
/// // A `__Host-` cookie may not carry a Domain: the error says so.
/// let bad = Config::default().with_host_prefix(true).with_domain(Some("example.com"));
/// assert!(bad.validate().unwrap_err().to_string().contains("Domain"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) cookie_name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) host_prefix: bool,
    pub(crate) session_cookie: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) touch_after: Duration,
    pub(crate) key_prefix: String,
    pub(crate) hashed_keys: bool,
    pub(crate) max_size: usize,
    pub(crate) lock_lease: Duration,
    pub(crate) lock_wait: Duration,
    pub(crate) max_retries: u32,
    pub(crate) compat: Option<Compat>,
    pub(crate) clock: SharedClock,
    pub(crate) rotation_grace: Duration,
    pub(crate) devices: Option<Devices>,
    pub(crate) codec: Codec,
    pub(crate) id_generator: Option<Arc<dyn IdGenerator>>,
}

/// Compatibility modes, for sharing sessions with another implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compat {
    /// Share sessions with Python's `sanic_session` (0.8) on the same Redis or Memcached:
    /// cookie `session`, store key `session:<id>` (not hashed), the stored value is exactly
    /// the session's JSON object, and `uuid4().hex` ids are accepted.
    ///
    /// The stored value has no room for metadata, so in this mode the absolute timeout,
    /// the per-session expiry override and the per-session "remember me" choice are not
    /// kept across requests; the idle timeout is the store's TTL.
    SanicSession,
    /// Share sessions with Python's sanic-cookies (0.4) `InCookieEncrypted` interface, on
    /// the encrypted cookie store built with
    /// `sessio::cookie_store::CookieStore::fernet` (feature
    /// `cookie-store`): cookie `session`, whose value is a Fernet token of exactly the
    /// session's JSON object; the token's age is checked against the idle timeout (set it
    /// to the Python app's `expiry`).
    ///
    /// As with `SanicSession`, the absolute timeout, the per-session expiry override and
    /// the per-session "remember me" choice are not kept across requests.
    SanicCookies,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cookie_name: "id".into(),
            domain: None,
            path: "/".into(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            host_prefix: false,
            session_cookie: false,
            idle_timeout: Duration::from_secs(30 * 24 * 3600),
            absolute_timeout: None,
            touch_after: Duration::from_secs(60),
            key_prefix: "session:".into(),
            hashed_keys: true,
            max_size: 64 * 1024,
            lock_lease: Duration::from_secs(10),
            lock_wait: Duration::from_secs(5),
            max_retries: 32,
            compat: None,
            clock: Arc::new(SystemClock),
            rotation_grace: Duration::from_secs(60),
            devices: None,
            codec: Codec::Json,
            id_generator: None,
        }
    }
}

/// A configuration that cannot work; the message says which option to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl Config {
    /// The configuration of the `sanic_session` compatibility mode (see
    /// [`Compat::SanicSession`]): the defaults, with cookie `session`, key prefix
    /// `session:`, plain keys, and the JSON-only record format.
    pub fn sanic_session() -> Self {
        Self::default().with_compat(Some(Compat::SanicSession))
    }

    /// Sets a compatibility mode; `Compat::SanicSession` also sets the cookie name to
    /// `session`, the key prefix to `session:` and turns key hashing off;
    /// `Compat::SanicCookies` sets the cookie name to `session`.
    pub fn with_compat(mut self, compat: Option<Compat>) -> Self {
        self.compat = compat;
        match compat {
            Some(Compat::SanicSession) => {
                self.cookie_name = "session".into();
                self.key_prefix = "session:".into();
                self.hashed_keys = false;
            }
            Some(Compat::SanicCookies) => self.cookie_name = "session".into(),
            None => {}
        }
        self
    }

    /// Name of the session cookie (default `"id"`).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Cookie `Domain` attribute; `None` (the default) makes a host-only cookie.
    ///
    /// ```
    /// use sessio::Config;
    ///
    /// let shared = Config::default().with_domain(Some("example.com")); // and its subdomains
    /// let host_only = Config::default().with_domain(None);
    /// let from_env: Option<String> = std::env::var("COOKIE_DOMAIN").ok();
    /// let configured = Config::default().with_domain(from_env.as_deref());
    /// # let _ = (shared, host_only, configured);
    /// ```
    pub fn with_domain(mut self, domain: Option<&str>) -> Self {
        self.domain = domain.map(str::to_owned);
        self
    }

    /// Cookie `Path` attribute (default `"/"`).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie `Secure` attribute (default `true`). Browsers accept `Secure` cookies from
    /// `http://localhost`; turn it off only to serve plain HTTP on another host.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Cookie `HttpOnly` attribute (default `true`): scripts cannot read the cookie.
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Cookie `SameSite` attribute (default `Lax`). `None` requires `Secure`.
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Prefix the cookie name with `__Host-`, which browsers accept only with `Secure`,
    /// `Path=/` and no `Domain` — so no subdomain can plant or overwrite it.
    pub fn with_host_prefix(mut self, host_prefix: bool) -> Self {
        self.host_prefix = host_prefix;
        self
    }

    /// Send cookies without `Max-Age`/`Expires`, so they die with the browser. The server
    /// still expires the session after the idle (and absolute) timeout. A session can
    /// choose otherwise with [`Session::set_remember`](crate::Session::set_remember).
    pub fn with_session_cookie(mut self, session_cookie: bool) -> Self {
        self.session_cookie = session_cookie;
        self
    }

    /// Idle timeout: a session not used for this long expires. Every use extends it
    /// (throttled by [`with_touch_after`](Self::with_touch_after)). Default 30 days.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Absolute timeout: a session expires this long after it was created, however
    /// active it is, and rotating its id does not extend it. Default: none.
    pub fn with_absolute_timeout(mut self, absolute: Option<Duration>) -> Self {
        self.absolute_timeout = absolute;
        self
    }

    /// A request that only reads the session extends its idle timeout (one `touch`, and a
    /// renewed cookie) only if at least this much of the timeout has elapsed since the last
    /// extension. Capped at half the idle timeout. Default 60 s.
    pub fn with_touch_after(mut self, touch_after: Duration) -> Self {
        self.touch_after = touch_after;
        self
    }

    /// Prefix of every store key (default `"session:"`), so that several apps can share a
    /// store.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Key the store by the SHA-256 of the id (the default) instead of the id itself, so
    /// that whoever reads the store's keys cannot use them as cookies.
    pub fn with_hashed_keys(mut self, hashed: bool) -> Self {
        self.hashed_keys = hashed;
        self
    }

    /// Largest encoded session, in bytes, that a save accepts (default 64 KiB); a larger
    /// one fails with [`Error::TooLarge`](crate::Error::TooLarge) instead of being stored.
    pub fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// How long a [`lock`](crate::Session::lock) is held at most: if its holder dies, the
    /// lease lapses after this long and its late saves are refused. Default 10 s.
    pub fn with_lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self
    }

    /// How long [`lock`](crate::Session::lock) waits for another holder before failing
    /// with [`Error::LockTimeout`](crate::Error::LockTimeout). Default 5 s.
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How many conditional saves one commit tries under contention before failing with
    /// [`Error::Conflict`](crate::Error::Conflict). Default 32.
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Where the engine reads the time (default: the system clock). Tests pass a clock they
    /// move by hand, so that expiry is tested without sleeping.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long an id that [`Session::cycle_id`](crate::Session::cycle_id) moved away
    /// keeps leading to its successor (default 60 s): the browser's requests that were
    /// already on their way with it read and write the new session, unseen and without a
    /// cookie. After the grace the old id is dead. A login's old id is dead at once
    /// (requests carrying it are refused); the grace only bounds how long they are told so
    /// rather than given a fresh session.
    pub fn with_rotation_grace(mut self, grace: Duration) -> Self {
        self.rotation_grace = grace;
        self
    }

    /// Keeps an index of each user's sessions, so that a user can see their devices and
    /// end them ([`Session::devices`](crate::Session::devices),
    /// [`Session::revoke`](crate::Session::revoke),
    /// [`Session::revoke_others`](crate::Session::revoke_others)); see
    /// [`sessio::devices`](crate::devices). The store must keep records until they expire
    /// (not Memcached). Default: off.
    pub fn with_devices(mut self, devices: Devices) -> Self {
        self.devices = Some(devices);
        self
    }

    /// How the session's data is written in the store: JSON (the default) or, with the
    /// `msgpack` feature, MessagePack. Records are read in whichever codec wrote them, so
    /// the codec can change while sessions live. The `sanic_session` compatibility mode
    /// writes JSON only.
    ///
    /// ```
    /// # #[cfg(feature = "msgpack")] {
    /// use sessio::{codec::Codec, Config};
    ///
    /// assert!(Config::default().with_codec(Codec::MessagePack).validate().is_ok());
    /// let compat = Config::sanic_session().with_codec(Codec::MessagePack);
    /// assert!(compat.validate().unwrap_err().to_string().contains("with_codec"));
    /// # }
    /// ```
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Makes session ids in a format of the app's own (see [`IdGenerator`]); sessio still
    /// draws their randomness from the OS and checks every cookie against the format
    /// before any store lookup. Refused by [`validate`](Self::validate) if the generator
    /// cannot show that its ids keep at least 128 random bits, and in the `sanic_session`
    /// compatibility mode (whose ids are the Python app's).
    pub fn with_id_generator(mut self, generator: impl IdGenerator) -> Self {
        self.id_generator = Some(Arc::new(generator));
        self
    }

    /// The codec records are written in.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The devices index options, if the index is on.
    pub fn devices(&self) -> Option<&Devices> {
        self.devices.as_ref()
    }

    /// The full cookie name, with the `__Host-` prefix if configured.
    pub fn cookie_name(&self) -> String {
        if self.host_prefix {
            format!("__Host-{}", self.cookie_name)
        } else {
            self.cookie_name.clone()
        }
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The compatibility mode, if any.
    pub fn compat(&self) -> Option<Compat> {
        self.compat
    }

    /// Checks that the options fit together.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the option to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_string()));
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if self.cookie_name.is_empty() || !self.cookie_name.chars().all(token_char) {
            return err("the cookie name must be a non-empty HTTP token (letters, digits, and !#$%&'*+-.^_`|~)");
        }
        if !self.path.starts_with('/') || self.path.contains(';') {
            return err("the cookie path must start with '/' and contain no ';'");
        }
        if let Some(domain) = &self.domain {
            if domain.is_empty() || domain.contains(';') || domain.contains(' ') {
                return err("the cookie domain must be a host name");
            }
        }
        if self.host_prefix {
            if self.domain.is_some() {
                return err(
                    "a __Host- cookie must not set a Domain; remove with_domain or the host prefix",
                );
            }
            if self.path != "/" {
                return err("a __Host- cookie must have Path=/");
            }
            if !self.secure {
                return err(
                    "a __Host- cookie must be Secure; remove with_secure(false) or the host prefix",
                );
            }
        }
        if self.same_site == SameSite::None && !self.secure {
            return err("SameSite=None requires Secure; browsers drop such cookies");
        }
        if self.idle_timeout < Duration::from_secs(1) {
            return err("the idle timeout must be at least one second");
        }
        // Far enough for any session, near enough that no expiry overflows the clock.
        let century = Duration::from_secs(100 * 366 * 86_400);
        if self.idle_timeout > century || self.absolute_timeout.is_some_and(|a| a > century) {
            return err("the idle and absolute timeouts must be at most 100 years");
        }
        if self.compat.is_some() && self.absolute_timeout.is_some() {
            return err("the compatibility modes keep the bare JSON object, with no creation time, so an absolute timeout cannot be enforced; remove with_absolute_timeout");
        }
        if self
            .absolute_timeout
            .is_some_and(|a| a < Duration::from_secs(1))
        {
            return err("the absolute timeout must be at least one second");
        }
        if self.lock_lease < Duration::from_millis(10) {
            return err("the lock lease must be at least 10 ms");
        }
        if self.max_retries == 0 {
            return err("max_retries must be at least 1");
        }
        if let Some(generator) = &self.id_generator {
            if self.compat.is_some() {
                return err("the compatibility modes use the Python app's ids (uuid4 hex) or none (the cookie store); remove with_id_generator");
            }
            if let Some(why) = check_generator(generator.as_ref()) {
                return Err(ConfigError(why));
            }
        }
        if self.compat.is_some() && self.codec != Codec::Json {
            return err(
                "the compatibility modes store JSON, which the Python app reads; remove with_codec",
            );
        }
        if self.devices.as_ref().and_then(Devices::max) == Some(0) {
            return err("Devices::max_per_user must be at least 1");
        }
        if self.max_size < 16 {
            return err("max_size must be at least 16 bytes");
        }
        Ok(())
    }
}
