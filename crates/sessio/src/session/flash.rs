//! Flash messages: set now, read once on a later request.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::state::State;
use super::{serialize, Session};
use crate::error::Error;
use crate::keys::FLASH_KEY;
use crate::store::AfterWrite;

impl Session {
    /// Adds a flash message: a value kept in the session until a request takes it with
    /// [`take_flashes`](Self::take_flashes), typically the page after a redirect
    /// ("saved", "wrong password"). Saved at once, merged with messages that concurrent
    /// requests add (none is lost).
    ///
    /// ```
    /// # use sessio::{Config, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
    /// # let session = manager.session(std::iter::empty());
    /// session.flash("profile saved").await?;
    /// session.flash("welcome back").await?;
    /// let shown: Vec<String> = session.take_flashes().await?;
    /// assert_eq!(shown, ["profile saved", "welcome back"]);
    /// assert!(session.take_flashes::<String>().await?.is_empty(), "read once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`update`](Self::update); [`Error::Serialize`] if `message` has no JSON form.
    pub async fn flash<T: Serialize>(&self, message: T) -> Result<(), Error> {
        let message = serialize(FLASH_KEY, &message)?;
        let mut push = |st: &mut State| -> Result<(), Error> {
            let mut list = match st.data.get(FLASH_KEY) {
                Some(Value::Array(list)) => list.clone(),
                _ => Vec::new(),
            };
            list.push(message.clone());
            st.set(FLASH_KEY, Some(Value::Array(list)));
            Ok(())
        };
        let mut st = self.state().await?;
        self.persist(&mut st, Some((FLASH_KEY, &mut push)), AfterWrite::KeepLease)
            .await
    }

    /// Takes the pending flash messages, oldest first, and removes them from the session
    /// (saved at once, so two concurrent requests never both show one message). A message
    /// that is not a `T` is dropped with a warning rather than failing the page.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub async fn take_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let mut st = self.state().await?;
        if !st.data.contains_key(FLASH_KEY) {
            return Ok(Vec::new());
        }
        let mut taken = None;
        let mut take = |st: &mut State| -> Result<(), Error> {
            taken = st.data.get(FLASH_KEY).cloned();
            st.set(FLASH_KEY, None);
            Ok(())
        };
        self.persist(&mut st, Some((FLASH_KEY, &mut take)), AfterWrite::KeepLease)
            .await?;
        drop(st);
        let Some(Value::Array(list)) = taken else {
            return Ok(Vec::new());
        };
        Ok(list
            .into_iter()
            .filter_map(|message| match T::deserialize(&message) {
                Ok(message) => Some(message),
                Err(error) => {
                    tracing::warn!(%error, "a flash message of another type was dropped");
                    None
                }
            })
            .collect())
    }
}
