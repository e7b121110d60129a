//! The login API of a session (see [`crate::auth`]).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::state::{NewLogin, Phase};
use super::{deserialize, serialize, Session};
use crate::auth::Login;
use crate::error::Error;
use crate::keys::{CSRF_KEY, HANDLE_KEY, LOGIN_AT_KEY, USER_KEY};

impl Session {
    /// Logs `user` in with the default [`Login`]: see [`login_with`](Self::login_with).
    ///
    /// # Errors
    /// As [`login_with`](Self::login_with).
    pub async fn login<U: Serialize + ?Sized>(&self, user: &U) -> Result<(), Error> {
        self.login_with(user, Login::default()).await
    }

    /// Logs `user` in: the id is rotated when the request commits (an id planted before the
    /// login is worthless after it), the user is stored under [`USER_KEY`] and the login
    /// time (Unix seconds) under [`LOGIN_AT_KEY`], the CSRF token (if any) is dropped for
    /// a new one, and `login`'s choices apply: remember-me and this login's idle timeout
    /// (what it leaves unset is the configured default, never an earlier login's), and
    /// whether the anonymous data stays. Logging in again (another user, or the same)
    /// replaces the user and rotates again.
    ///
    /// With the [devices index](crate::devices) on, the session gets an entry in the user's
    /// index (kept when the same user logs in again on it), labelled by
    /// [`Login::label`].
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Serialize`] if `user` has no JSON form.
    #[tracing::instrument(name = "sessio.login", level = "debug", skip_all)]
    pub async fn login_with<U: Serialize + ?Sized>(
        &self,
        user: &U,
        login: Login,
    ) -> Result<(), Error> {
        let user = serialize(USER_KEY, user)?;
        let mut st = self.state().await?;
        if login.reset {
            st.data.clear();
            st.edits.keys.clear();
            st.edits.cleared = true;
        }
        if st.superseded {
            // The id was rotated away by another login: this one cannot be placed.
            return Err(Error::Superseded);
        }
        if matches!(st.phase, Phase::Stored { .. }) {
            st.edits.rotate = true;
            st.edits.login = true;
        }
        let at = st
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.engine().config.devices.is_some() {
            // The user's devices index: the same user logging in again on this session
            // keeps its entry (the same device); anyone else gets a new one.
            let same = st.data.get(USER_KEY) == Some(&user)
                && st.data.get(HANDLE_KEY).is_some_and(Value::is_string);
            if !same {
                st.set(HANDLE_KEY, Some(Value::from(crate::devices::new_handle()?)));
            }
            st.new_login = Some(NewLogin { label: login.label });
        }
        st.set(USER_KEY, Some(user));
        st.set(LOGIN_AT_KEY, Some(Value::from(at)));
        // A CSRF token known before the login (to whoever planted the session) must not
        // outlive it.
        if st.data.contains_key(CSRF_KEY) {
            st.set(CSRF_KEY, None);
        }
        // This login's choices, or the configured ones: never an earlier login's.
        let configured = self.engine().new_meta();
        let browser_cookie = login
            .remember
            .map_or(configured.browser_cookie, |remember| !remember);
        let ttl_override = login
            .idle
            .map(|idle| u32::try_from(idle.as_secs().max(1)).unwrap_or(u32::MAX));
        if (st.meta.browser_cookie, st.meta.ttl_override) != (browser_cookie, ttl_override) {
            st.meta.browser_cookie = browser_cookie;
            st.meta.ttl_override = ttl_override;
            st.edits.meta = true;
        }
        Ok(())
    }

    /// Logs out: the whole session ends (see [`destroy`](Self::destroy)); data stored
    /// after this goes into a new, anonymous session.
    ///
    /// # Errors
    /// As [`destroy`](Self::destroy).
    #[tracing::instrument(name = "sessio.logout", level = "debug", skip_all)]
    pub async fn logout(&self) -> Result<(), Error> {
        self.destroy().await
    }

    /// The logged-in user, if any.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Deserialize`] if the stored user is not
    /// a `U`.
    pub async fn current_user<U: DeserializeOwned>(&self) -> Result<Option<U>, Error> {
        let st = self.state().await?;
        st.data
            .get(USER_KEY)
            .map(|v| deserialize(USER_KEY, v))
            .transpose()
    }

    /// When the user logged in, in Unix seconds; `None` if nobody is logged in.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn logged_in_at(&self) -> Result<Option<u64>, Error> {
        let st = self.state().await?;
        Ok(st
            .data
            .contains_key(USER_KEY)
            .then(|| st.data.get(LOGIN_AT_KEY).and_then(Value::as_u64))
            .flatten())
    }
}
