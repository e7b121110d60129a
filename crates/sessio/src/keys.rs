//! Session keys: typed keys ([`SessionKey`]), and the keys sessio itself uses.
//!
//! A [`SessionKey<T>`] names a key and the type of its value once, so that every read and
//! write of it agrees on both; a typo in a key name becomes a compile error.
//!
//! ```
//! use sessio::keys::SessionKey;
//! use sessio::{Config, MemoryStore, SessionManager};
//!
//! const CART: SessionKey<Vec<u32>> = SessionKey::new("cart");
//! // A value stored by an older release in another shape reads as absent (with a
//! // warning in the log) instead of failing every request until the session expires.
//! const THEME: SessionKey<String> = SessionKey::new("theme").lenient();
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
//! # let session = manager.session(std::iter::empty());
//! session.insert(&CART, vec![3, 4]).await?;
//! assert_eq!(session.get(&CART).await?, Some(vec![3, 4]));
//! session.insert("theme", 42).await?; // the old shape
//! assert_eq!(session.get(&THEME).await?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The keys that start with `_` belong to sessio's helpers: [`USER_KEY`] and
//! [`LOGIN_AT_KEY`] (logins), [`HANDLE_KEY`] (the devices index), [`FLASH_KEY`] (flash messages), [`CSRF_KEY`] (the CSRF token).

use std::marker::PhantomData;

/// Whether `key` belongs to sessio's helpers (it starts with `_`). An app that lets
/// clients name session keys must refuse these: writing [`USER_KEY`] is logging in.
///
/// ```
/// assert!(sessio::keys::is_reserved(sessio::keys::USER_KEY));
/// assert!(!sessio::keys::is_reserved("cart"));
/// ```
pub fn is_reserved(key: &str) -> bool {
    key.starts_with('_')
}

/// The key that holds the logged-in user (as JSON); see
/// [`Session::login`](crate::Session::login).
pub const USER_KEY: &str = "_user";

/// The key that holds when the user logged in, in Unix seconds.
pub const LOGIN_AT_KEY: &str = "_login_at";

/// The key that holds the session's handle in the user's devices index (set by a login
/// when the index is on); see [`crate::devices`].
pub const HANDLE_KEY: &str = "_handle";

/// The key that holds the pending flash messages (a JSON array); see
/// [`Session::flash`](crate::Session::flash).
pub const FLASH_KEY: &str = "_flash";

/// The key that holds the CSRF token; see [`Session::csrf_token`](crate::Session::csrf_token).
pub const CSRF_KEY: &str = "_csrf";

/// A session key whose value is a `T`; see the [module docs](self).
pub struct SessionKey<T> {
    name: &'static str,
    lenient: bool,
    _value: PhantomData<fn() -> T>,
}

impl<T> SessionKey<T> {
    /// The key `name`, holding a `T`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            lenient: false,
            _value: PhantomData,
        }
    }

    /// Reads a stored value that is not a `T` as absent, with a warning in the log,
    /// instead of failing with [`Error::Deserialize`](crate::Error::Deserialize): for a
    /// key whose type changed between releases. The next write replaces the old value.
    pub const fn lenient(mut self) -> Self {
        self.lenient = true;
        self
    }

    /// The key's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> Clone for SessionKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SessionKey<T> {}

impl<T> std::fmt::Debug for SessionKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .field("lenient", &self.lenient)
            .finish()
    }
}

/// What names a session key whose value is a `T`: a string (any `T`, chosen by the
/// caller) or a [`SessionKey<T>`].
pub trait Key<T> {
    /// The key's name.
    fn key_name(&self) -> &str;
    /// Whether a stored value that is not a `T` reads as absent.
    fn is_lenient(&self) -> bool {
        false
    }
}

impl<T> Key<T> for str {
    fn key_name(&self) -> &str {
        self
    }
}

impl<T> Key<T> for String {
    fn key_name(&self) -> &str {
        self
    }
}

impl<T> Key<T> for SessionKey<T> {
    fn key_name(&self) -> &str {
        self.name
    }
    fn is_lenient(&self) -> bool {
        self.lenient
    }
}
