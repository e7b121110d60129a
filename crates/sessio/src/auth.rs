//! Logging users in and out on a session: [`Session::login`](crate::Session::login),
//! [`Session::logout`](crate::Session::logout),
//! [`Session::current_user`](crate::Session::current_user), and the options of a login
//! ([`Login`]).
//!
//! A login rotates the session id (so an id planted before the login is worthless after
//! it), stores the user and the login time under the reserved keys
//! [`USER_KEY`](crate::keys::USER_KEY) and [`LOGIN_AT_KEY`](crate::keys::LOGIN_AT_KEY), and
//! can choose "remember me" (a persistent cookie or one that dies with
//! the browser), a per-login idle timeout, and whether the anonymous data (a cart, say)
//! stays. A logout ends the whole session: record deleted, cookie expired.
//!
//! ```
//! use std::time::Duration;
//! use sessio::auth::Login;
//! use sessio::{Config, MemoryStore, SessionManager};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
//! let session = manager.session(std::iter::empty());
//! session.insert("cart", vec![7]).await?; // before the login: kept by default
//!
//! session
//!     .login_with(&"ada", Login::new().remember(false).idle(Duration::from_secs(900)))
//!     .await?;
//! assert_eq!(session.current_user::<String>().await?.as_deref(), Some("ada"));
//! assert_eq!(session.get::<Vec<u32>>("cart").await?, Some(vec![7]));
//! let set_cookie = session.commit().await?.unwrap();
//! assert!(!set_cookie.contains("Max-Age"), "remember(false): a browser-session cookie");
//!
//! session.logout().await?;
//! assert_eq!(session.current_user::<String>().await?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::time::Duration;

/// How a login shapes the session; see [`Session::login_with`](crate::Session::login_with).
/// The default keeps the anonymous data, the configured cookie kind and the configured idle
/// timeout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Login {
    pub(crate) remember: Option<bool>,
    pub(crate) idle: Option<Duration>,
    pub(crate) reset: bool,
    pub(crate) label: Option<String>,
}

impl Login {
    /// The default login: see [`Login`].
    pub fn new() -> Self {
        Self::default()
    }

    /// "Remember me": `true` gives a persistent cookie (with `Max-Age`), `false` a cookie
    /// that the browser drops when it closes.
    pub fn remember(mut self, remember: bool) -> Self {
        self.remember = Some(remember);
        self
    }

    /// This login's idle timeout, instead of the configured one (e.g. 30 days for a
    /// "remember me" login, 15 minutes for an admin). At least one second.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// A label for this session in the user's devices index (e.g. the user agent, or
    /// "Firefox on Linux"), shown by [`Session::devices`](crate::Session::devices).
    /// Kept up to 256 bytes. Ignored when the index is off.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(crate::devices::clip_label(label.into()));
        self
    }

    /// Drops what the session held before the login, instead of keeping it.
    pub fn reset_data(mut self) -> Self {
        self.reset = true;
        self
    }
}
