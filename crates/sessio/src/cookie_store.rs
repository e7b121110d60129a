//! The encrypted cookie store: the whole session sealed in the browser's cookies, no
//! server state (feature `cookie-store`).
//!
//! [`CookieStore`] seals each session with AES-256-GCM-SIV (RFC 8452) under a 256-bit key,
//! with a random 96-bit nonce per seal: GCM-SIV stays sound when random nonces collide
//! (a collision shows at most that two sealed sessions were equal), so a key may seal far
//! more cookies than plain AES-GCM's 2^32. Give it
//! several keys to rotate them: the first seals, every one opens, and a cookie opened with
//! an older key is sealed again with the first at its next write. The idle and absolute
//! expiry travel inside the seal and are checked when it is opened; the browser's
//! `Max-Age` is never trusted. A cookie that does not open (tampered, truncated, garbage,
//! sealed with a key no longer listed, sealed for another cookie name) is a fresh session,
//! never an error.
//!
//! A session too large for one cookie (about 4 KB, attributes included) is split over
//! `name.0`, `name.1`, … with `name=chunks-<n>`, up to
//! [`with_max_chunks`](CookieStore::with_max_chunks); beyond that the commit fails with
//! [`Error::CookieTooLarge`](crate::Error::CookieTooLarge) (413) and the browser keeps its
//! previous cookies. Chunks left over when a session shrinks are expired in the same
//! response. Browsers send every cookie in one `Cookie` header: many proxies refuse
//! headers over 8 KiB (nginx's and Apache's defaults), so keep sessions small, or raise
//! those limits with the maximum.
//!
//! ```
//! use sessio::cookie_store::CookieStore;
//! use sessio::{Config, SessionManager};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = CookieStore::new([7; 32]); // in production: CookieStore::from_base64_keys
//! let manager = SessionManager::with_cookie_store(store, Config::default())?;
//!
//! let session = manager.session(std::iter::empty());
//! session.insert("cart", vec![1, 2]).await?;
//! let cookies = session.commit_cookies().await?;
//! let cookie = cookies[0].split(';').next().unwrap().to_owned();
//!
//! // The next request brings the session back in its cookie.
//! let session = manager.session([cookie.as_bytes()]);
//! assert_eq!(session.get::<Vec<u32>>("cart").await?, Some(vec![1, 2]));
//! // What the server cannot do without server state says so.
//! assert!(matches!(session.lock().await, Err(sessio::Error::LockUnsupported)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # What holds, and what cannot
//!
//! The session lives in the browser, so the guarantees of the crate root hold only within
//! one request and one browser:
//!
//! - **Concurrent requests of one browser are last-write-wins.** Two tabs writing at once
//!   each send back a whole session; the browser keeps whichever response came last (I1
//!   holds within a request: `update`, merges and rotations inside it are kept).
//! - **A logout cannot revoke a copy.** [`Session::destroy`](crate::Session::destroy)
//!   expires the browser's cookies, but anyone who kept a copy of them holds a session
//!   that opens until its sealed expiry (I2 does not hold). Keep the idle and absolute
//!   timeouts short, or rotate the keys to end every session at once.
//! - **No lock.** [`Session::lock`](crate::Session::lock) answers
//!   [`Error::LockUnsupported`](crate::Error::LockUnsupported) (I3 does not hold); the
//!   user's devices index is refused at start (nothing on the server lists the sessions).
//! - **What holds:** I4 (no panics), I5 (the browser holds the one copy), I6 (a cookie
//!   that does not open is replaced only by a request that writes), I7 (nothing grows on
//!   the server), the sealed expiry, and fixation safety (a session's content cannot be
//!   chosen by anyone without the key).
//!
//! The data is encrypted and authenticated, not hidden from its size: the cookie's length
//! follows the session's.
//!
//! # The sanic-cookies compatibility mode
//!
//! [`CookieStore::fernet`] with
//! [`Compat::SanicCookies`](crate::Compat::SanicCookies): the cookie `session` holds a Fernet
//! token of exactly the session's JSON object, whose age is checked against the idle
//! timeout, as `sanic_cookies.InCookieEncrypted` reads and writes it. A Python service and
//! this one, given the same key, continue each other's sessions.

use std::fmt;

use aes_gcm_siv::KeyInit;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::carried::{Sealing, MAX_CHUNKS};
use crate::config::ConfigError;
use crate::seal::Sealer;

/// The encrypted cookie store's keys and limits; see the [module docs](self).
///
/// Give it to [`SessionManager::with_cookie_store`](crate::SessionManager::with_cookie_store).
/// Cloning is cheap enough for a few managers (each named session gets its own).
#[derive(Clone)]
pub struct CookieStore {
    sealer: Sealer,
    max_chunks: usize,
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (format, keys) = match &self.sealer {
            Sealer::Aead(keys) => ("aes256gcmsiv", keys.len()),
            Sealer::Fernet(keys) => ("fernet", keys.len()),
        };
        f.debug_struct("CookieStore")
            .field("format", &format)
            .field("keys", &keys)
            .field("max_chunks", &self.max_chunks)
            .finish()
    }
}

/// The default of [`CookieStore::with_max_chunks`].
pub const DEFAULT_MAX_CHUNKS: usize = 4;

impl CookieStore {
    /// A store sealing with `key` (256 bits from a CSPRNG; keep it secret, and the same on
    /// every process).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            sealer: Sealer::Aead(vec![aes_gcm_siv::Aes256GcmSiv::new(&key.into())]),
            max_chunks: DEFAULT_MAX_CHUNKS,
        }
    }

    /// Adds an older key, which opens cookies but never seals: the cookies it opens are
    /// sealed again with the first key at their next write. Drop it once every session
    /// sealed with it has expired (or to end them all).
    ///
    /// Ignored by a Fernet store (give [`fernet`](Self::fernet) every key instead).
    pub fn with_old_key(mut self, key: [u8; 32]) -> Self {
        if let Sealer::Aead(keys) = &mut self.sealer {
            keys.push(aes_gcm_siv::Aes256GcmSiv::new(&key.into()));
        }
        self
    }

    /// A store from keys in base64url (32 bytes each, padding optional), the first sealing
    /// and the others only opening.
    ///
    /// ```
    /// use sessio::cookie_store::CookieStore;
    ///
    /// let key = CookieStore::generate_key()?;
    /// assert_eq!(key.len(), 43);
    /// assert!(CookieStore::from_base64_keys([key.as_str()]).is_ok());
    /// let err = CookieStore::from_base64_keys(["c2hvcnQ"]).unwrap_err();
    /// assert!(err.to_string().contains("32 bytes"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] if there is no key or one is not 32 bytes of base64url.
    pub fn from_base64_keys<I, S>(keys: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut store: Option<Self> = None;
        for (i, key) in keys.into_iter().enumerate() {
            let raw = URL_SAFE_NO_PAD
                .decode(key.as_ref().trim().trim_end_matches('='))
                .ok()
                .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "cookie key {} is not 32 bytes in base64url; make one with CookieStore::generate_key (or: head -c 32 /dev/urandom | basenc --base64url)",
                        i + 1
                    ))
                })?;
            store = Some(match store {
                None => Self::new(raw),
                Some(store) => store.with_old_key(raw),
            });
        }
        store.ok_or_else(|| ConfigError::new("the cookie store needs at least one key"))
    }

    /// A store for the sanic-cookies compatibility mode: Fernet keys in their url-safe
    /// base64 form (as `cryptography.fernet.Fernet.generate_key()` prints them), the first
    /// sealing, every one opening. Use it with
    /// [`Compat::SanicCookies`](crate::Compat::SanicCookies).
    ///
    /// The session is one cookie (sanic-cookies reads no chunks): a session too large for
    /// it fails with [`Error::CookieTooLarge`](crate::Error::CookieTooLarge). A Fernet token
    /// names no cookie, so a token of one cookie opens under another sealed with the same
    /// key: give every cookie of the app its own key (the native format binds the name).
    ///
    /// # Errors
    /// A [`ConfigError`] if there is no key or one is not a Fernet key.
    pub fn fernet<I, S>(keys: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                fernet::Fernet::new(key.as_ref().trim()).ok_or_else(|| {
                    ConfigError::new(format!(
                        "Fernet key {} is not 32 bytes in url-safe base64 (make one with Python's cryptography.fernet.Fernet.generate_key())",
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ConfigError::new("the cookie store needs at least one key"));
        }
        Ok(Self {
            sealer: Sealer::Fernet(keys),
            max_chunks: 1,
        })
    }

    /// The most cookies one session may be split over (default
    /// [`DEFAULT_MAX_CHUNKS`], at most 32; a Fernet store keeps one). A larger session fails to commit with
    /// [`Error::CookieTooLarge`](crate::Error::CookieTooLarge).
    pub fn with_max_chunks(mut self, max_chunks: usize) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    /// A new random key in base64url, for [`from_base64_keys`](Self::from_base64_keys).
    ///
    /// # Errors
    /// [`Error::Random`](crate::error::Error::Random) if the OS generator fails.
    pub fn generate_key() -> Result<String, crate::error::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(crate::error::Error::Random)?;
        Ok(URL_SAFE_NO_PAD.encode(key))
    }

    /// Whether this store seals Fernet tokens (the sanic-cookies format).
    pub fn is_fernet(&self) -> bool {
        self.sealer.is_fernet()
    }

    pub(crate) fn into_sealing(self) -> Result<Sealing, ConfigError> {
        if self.is_fernet() && self.max_chunks != 1 {
            return Err(ConfigError::new(
                "sanic-cookies reads its session from one cookie, so a Fernet store cannot split it into chunks; remove CookieStore::with_max_chunks",
            ));
        }
        if !(1..=MAX_CHUNKS).contains(&self.max_chunks) {
            return Err(ConfigError::new(format!(
                "CookieStore::with_max_chunks must be between 1 and {MAX_CHUNKS}"
            )));
        }
        Ok(Sealing {
            sealer: self.sealer,
            max_chunks: self.max_chunks,
        })
    }
}
