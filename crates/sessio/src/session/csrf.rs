//! A synchronizer CSRF token kept in the session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::state::State;
use super::Session;
use crate::error::Error;
use crate::keys::CSRF_KEY;
use crate::store::AfterWrite;

impl Session {
    /// The session's CSRF token (synchronizer pattern): 256 random bits from the OS as 43
    /// base64url characters, made on first use and kept until the session ends. Put it in
    /// every form (a hidden field) or give it to scripts (a header such as
    /// `X-CSRF-Token`), and check what comes back with
    /// [`verify_csrf`](Self::verify_csrf) on every request that changes something.
    ///
    /// ```
    /// # use sessio::{Config, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
    /// # let session = manager.session(std::iter::empty());
    /// let token = session.csrf_token().await?; // into the form
    /// assert!(session.verify_csrf(&token).await?); // the form comes back
    /// assert!(!session.verify_csrf("forged").await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// Made on first use and saved at once, so that concurrent first requests agree on
    /// one token. A [login](Self::login) drops it, so that a token learnt before the login
    /// (by whoever planted the session) is worthless after it; the next call makes a new
    /// one.
    ///
    /// # Errors
    /// As [`update`](Self::update); [`Error::Random`] if the OS random generator fails.
    pub async fn csrf_token(&self) -> Result<String, Error> {
        let mut st = self.state().await?;
        if let Some(token) = stored_token(&st) {
            return Ok(token.to_owned());
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(Error::Random)?;
        let fresh = URL_SAFE_NO_PAD.encode(raw);
        let mut token = None;
        let mut make = |st: &mut State| -> Result<(), Error> {
            // After a conflict, a concurrent request may have made one: keep it.
            match stored_token(st) {
                Some(existing) => token = Some(existing.to_owned()),
                None => {
                    st.set(CSRF_KEY, Some(Value::String(fresh.clone())));
                    token = Some(fresh.clone());
                }
            }
            Ok(())
        };
        self.persist(&mut st, Some((CSRF_KEY, &mut make)), AfterWrite::KeepLease)
            .await?;
        drop(st);
        token.ok_or(Error::Poisoned)
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time. A
    /// session without a token (or with anything else under its key) accepts nothing.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn verify_csrf(&self, presented: &str) -> Result<bool, Error> {
        let st = self.state().await?;
        Ok(match stored_token(&st) {
            Some(token) => bool::from(token.as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        })
    }
}

/// The length of a token: 32 random bytes in base64url without padding.
const TOKEN_LEN: usize = 43;

/// The session's token, if what is stored under [`CSRF_KEY`] is one this module made (a
/// value put there some other way is never a token).
fn stored_token(st: &State) -> Option<&str> {
    match st.data.get(CSRF_KEY) {
        Some(Value::String(token))
            if token.len() == TOKEN_LEN
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(token)
        }
        _ => None,
    }
}
