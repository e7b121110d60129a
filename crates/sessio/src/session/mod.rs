//! The per-request session: the map API, loading on first use, and the commit.

mod auth;
mod commit;
mod csrf;
mod devices;
mod flash;
mod lock;
mod persist;
pub(crate) mod state;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};
use tracing::Instrument;

pub use lock::SessionLock;

use crate::carried::Carried;
use crate::cookie::Presented;
use crate::engine::{Engine, View};
use crate::error::Error;
use crate::keys::Key;
use crate::record::{self, MAX_DEPTH};
use crate::store::{AfterWrite, Store};
use state::{Origin, Phase, State};

/// One request's session: a lazily loaded map from string keys to JSON values.
///
/// Cloning is cheap and every clone is the same session. Nothing is read from the store
/// until a method needs the data; nothing is written, and no cookie is sent, for a session
/// that stays empty. At the end of the request the integration calls
/// [`commit`](Self::commit), which saves only what changed.
///
/// Writes are merged key by key: if another request changed the stored session meanwhile,
/// the commit reloads it and re-applies only this request's changes, so requests that touch
/// different keys never lose each other's writes. For read-modify-write of one key use
/// [`update`](Self::update); for a longer critical section use [`lock`](Self::lock).
///
/// ```
/// use sessio::{Config, MemoryStore, SessionManager};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
/// let session = manager.session(std::iter::empty());
///
/// session.insert("user", "ada").await?;
/// session.insert("cart", vec![3, 4]).await?;
/// assert_eq!(session.get::<String>("user").await?.as_deref(), Some("ada"));
/// assert_eq!(session.len().await?, 2);
/// assert_eq!(session.remove::<Vec<u32>>("cart").await?, Some(vec![3, 4]));
/// assert!(session.contains_key("user").await?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Inner {
    engine: Arc<Engine>,
    /// With the cookie store: the session the browser carried, in a store of the
    /// request's own (see [`Session::store`]).
    carried: Option<Arc<Carried>>,
    state: Mutex<State>,
}

impl Session {
    pub(crate) fn new(
        engine: Arc<Engine>,
        presented: Presented,
        carried: Option<Arc<Carried>>,
    ) -> Self {
        let meta = engine.new_meta();
        Self {
            inner: Arc::new(Inner {
                engine,
                carried,
                state: Mutex::new(State::new(presented, meta)),
            }),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The store this session's records are in: the manager's, or (the cookie store) the
    /// request's own.
    pub(crate) fn store(&self) -> &dyn Store {
        match &self.inner.carried {
            Some(carried) => carried.as_ref(),
            None => self.inner.engine.store.as_ref(),
        }
    }

    /// [`store`](Self::store), shared (for work that outlives the request).
    fn shared_store(&self) -> Arc<dyn Store> {
        match &self.inner.carried {
            Some(carried) => carried.clone(),
            None => self.inner.engine.store.clone(),
        }
    }

    /// Locks the state and loads the record on first use.
    async fn state(&self) -> Result<MutexGuard<'_, State>, Error> {
        let mut st = self.inner.state.lock().await;
        match st.phase {
            Phase::Unloaded => {
                self.load_presented(&mut st)
                    .instrument(tracing::debug_span!("sessio.load"))
                    .await?;
            }
            Phase::Failed => return Err(Error::Poisoned),
            Phase::New | Phase::Stored { .. } => {}
        }
        Ok(st)
    }

    /// The first use's load: the record of the presented id, if it is live.
    ///
    /// An id that a plain rotation moved away (within the rotation grace) is followed to
    /// its successor, whose id this client is never told: a request the browser sent
    /// before the rotation's answer arrived reads and writes the session it meant. An id
    /// that a *login* moved away is not followed: the session reads as empty and any write
    /// is refused (`Error::Superseded`), so a planted id never reaches the login.
    async fn load_presented(&self, st: &mut State) -> Result<(), Error> {
        let engine = self.engine();
        st.now = engine.now();
        st.start_new();
        let Some(id) = st.presented.id() else {
            return Ok(());
        };
        let mut key = engine.key(id);
        let mut view = self.fetch(st, &key, false).await?;
        if let (View::Live(fetched), Some(seen)) =
            (&view, st.presented.writes_for(|| engine.tag(&key)))
        {
            if engine.counts_writes && newer(seen, fetched.meta.writes) {
                // The client saw a write this (cached) copy lacks: ask the
                // authoritative copy.
                view = self.fetch(st, &key, true).await?;
            }
        }
        let mut origin = Origin::Client;
        for _ in 0..=persist::MAX_HOPS {
            match view {
                // An id we did not issue, or one that expired, is never adopted: the
                // session stays new and gets a fresh id when it is first saved.
                View::Gone => return Ok(()),
                View::Live(fetched) => {
                    crate::meter::loaded();
                    st.adopt(engine, fetched, key, origin);
                    return Ok(());
                }
                View::Moved(forward) if forward.login => {
                    st.superseded = true;
                    return Ok(());
                }
                View::Moved(forward) => {
                    key = forward.to;
                    origin = Origin::Followed;
                    view = self.fetch(st, &key, true).await?;
                }
            }
        }
        // More forwards than a read follows: a rotation storm, or an id so many rotations
        // old that the browser holds a newer one.
        st.fail();
        Err(Error::Superseded)
    }

    /// `key` as the engine sees it, read from the store (from the store itself, past any
    /// cache, with `fresh`). A store error leaves the session's state unknown.
    async fn fetch(&self, st: &mut State, key: &str, fresh: bool) -> Result<View, Error> {
        let loaded = if fresh {
            self.store().load_fresh(key).await
        } else {
            self.store().load(key).await
        };
        match loaded {
            Ok(loaded) => Ok(self.engine().view(loaded, st.now)),
            Err(error) => {
                st.fail();
                Err(error.into())
            }
        }
    }

    /// The value under `key` (a string, or a [`SessionKey`](crate::keys::SessionKey)),
    /// deserialized into `T`; `None` if absent.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Deserialize`] if the value is not a `T`
    /// (unless the key is [lenient](crate::keys::SessionKey::lenient): then `None`).
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &(impl Key<T> + ?Sized),
    ) -> Result<Option<T>, Error> {
        let st = self.state().await?;
        let name = key.key_name();
        match st.data.get(name) {
            Some(v) => read(key, v),
            None => Ok(None),
        }
    }

    /// The raw JSON value under `key`.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.state().await?.data.get(key).cloned())
    }

    /// Stores `value` (as JSON) under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Serialize`] if `value` has no JSON form;
    /// [`Error::TooDeep`] if it nests more than 100 levels (it could not be read back).
    pub async fn insert<T: Serialize>(
        &self,
        key: &(impl Key<T> + ?Sized),
        value: T,
    ) -> Result<(), Error> {
        let key = key.key_name();
        let value = serialize(key, &value)?;
        let mut st = self.state().await?;
        if !st.data.get(key).is_some_and(|old| identical(old, &value)) {
            st.set(key, Some(value));
        }
        Ok(())
    }

    /// Removes `key` and returns its value, deserialized into `T`.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Deserialize`] if the value is not a `T`
    /// (the key is removed all the same; a lenient key gives `None`).
    pub async fn remove<T: DeserializeOwned>(
        &self,
        key: &(impl Key<T> + ?Sized),
    ) -> Result<Option<T>, Error> {
        let mut st = self.state().await?;
        let name = key.key_name();
        let Some(old) = st.data.get(name).cloned() else {
            return Ok(None);
        };
        st.set(name, None);
        read(key, &old)
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn contains_key(&self, key: &str) -> Result<bool, Error> {
        Ok(self.state().await?.data.contains_key(key))
    }

    /// The keys, in sorted order.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.state().await?.data.keys().cloned().collect())
    }

    /// The number of keys.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.state().await?.data.len())
    }

    /// Whether the session holds no key. An empty session is not stored: at the end of the
    /// request its record is deleted and its cookie expired.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.state().await?.data.is_empty())
    }

    /// Removes every key. At the end of the request the record is deleted and the cookie
    /// expired, unless the handler stores something again.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn clear(&self) -> Result<(), Error> {
        let mut st = self.state().await?;
        st.data.clear();
        st.edits.keys.clear();
        st.edits.cleared = true;
        Ok(())
    }

    /// Atomically replaces the value under `key` with `f(old)` and saves it now, before
    /// returning the new value. If a concurrent request changed the session in between,
    /// `f` runs again on the fresh value, so concurrent updates never lose each other (with
    /// [`Config::with_max_retries`](crate::Config::with_max_retries) attempts at most).
    ///
    /// Other changes this request made so far are saved with it.
    ///
    /// ```
    /// # use sessio::{Config, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
    /// # let session = manager.session(std::iter::empty());
    /// let visits = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    /// assert_eq!(visits, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`], [`Error::Conflict`], [`Error::Deserialize`] if the old value is
    /// not a `T`, [`Error::Serialize`], [`Error::TooLarge`], [`Error::LockLost`] under a lock.
    pub async fn update<T, F>(
        &self,
        key: &(impl Key<T> + Sync + ?Sized),
        mut f: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(Option<T>) -> T + Send,
    {
        let name = key.key_name();
        let mut result = None;
        let mut recompute = |st: &mut State| -> Result<(), Error> {
            let old = match st.data.get(name) {
                Some(v) => read(key, v)?,
                None => None,
            };
            let new = f(old);
            st.set(name, Some(serialize(name, &new)?));
            result = Some(new);
            Ok(())
        };
        let mut st = self.state().await?;
        self.persist(&mut st, Some((name, &mut recompute)), AfterWrite::KeepLease)
            .await?;
        drop(st);
        result.ok_or(Error::Poisoned)
    }

    /// Gives the session a new id, keeping its data: the new record is written before the
    /// old one is retired, and the absolute lifetime is not extended. Applied when the
    /// request commits.
    ///
    /// The browser's other requests may still be on their way with the old id. For the
    /// rotation grace ([`Config::with_rotation_grace`](crate::Config::with_rotation_grace))
    /// they follow the rotation: they read and write the new session, are never told its
    /// id, and send no cookie, so whatever order the answers arrive in, the browser ends
    /// with the new id and every write. After the grace the old id is dead.
    ///
    /// A login rotates too ([`login`](Self::login)), and its old id is dead at once: a
    /// request carrying it is refused with [`Error::Superseded`], so an id planted before
    /// the login never reaches the logged-in session. For a privilege change within a
    /// login (a second factor, a "sudo" mode), log the user in again: that rotation has the
    /// login's strictness.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    #[tracing::instrument(name = "sessio.rotate", level = "debug", skip_all)]
    pub async fn cycle_id(&self) -> Result<(), Error> {
        let mut st = self.state().await?;
        if matches!(st.phase, Phase::Stored { .. }) {
            st.edits.rotate = true;
        }
        if st.superseded {
            return Err(Error::Superseded);
        }
        Ok(())
    }

    /// Ends the session: its record is deleted and its cookie expired when the request
    /// commits (or at the next write). Data stored after this call goes into a brand-new
    /// session with a new id. Under the lock, destroying also ends the lock.
    ///
    /// # Errors
    /// None today; the signature leaves room for stores that must be asked first.
    #[tracing::instrument(name = "sessio.destroy", level = "debug", skip_all)]
    pub async fn destroy(&self) -> Result<(), Error> {
        let engine = self.engine();
        let mut st = self.inner.state.lock().await;
        let key = match (&st.phase, st.presented.id()) {
            (Phase::Stored { key, .. }, _) => Some(key.clone()),
            // Not read yet: delete by the client's id without reading it first. A
            // superseded id ends the chain it leads to, as an unread one would.
            (Phase::Unloaded | Phase::Failed, Some(id)) => Some(engine.key(id)),
            (Phase::New, Some(id)) if st.superseded => Some(engine.key(id)),
            _ => None,
        };
        if matches!(st.phase, Phase::Unloaded | Phase::Failed) {
            st.now = engine.now();
        }
        if key.is_some() {
            st.doomed = key;
        }
        st.gone(engine);
        Ok(())
    }

    /// Overrides the idle timeout for this session only (e.g. a longer one after a
    /// "remember me" login); `None` returns to the configured one. Kept with the session.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn set_expiry(&self, idle: Option<Duration>) -> Result<(), Error> {
        let mut st = self.state().await?;
        st.meta.ttl_override = idle.map(|d| u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX));
        st.edits.meta = true;
        Ok(())
    }

    /// "Remember me": `true` sends a persistent cookie (with `Max-Age`), `false` a cookie
    /// that dies with the browser. Overrides
    /// [`Config::with_session_cookie`](crate::Config::with_session_cookie) for this session.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn set_remember(&self, remember: bool) -> Result<(), Error> {
        let mut st = self.state().await?;
        if st.meta.browser_cookie == remember {
            st.meta.browser_cookie = !remember;
            st.edits.meta = true;
        }
        Ok(())
    }
}

/// Whether `a` and `b` are the same JSON, number for number: `-0.0` and `0.0` compare
/// equal as numbers, yet a client that wrote one must read it back.
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| identical(v, w))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| identical(v, w)))
        }
        _ => a == b,
    }
}

/// Whether write count `a` is after `b` (counts wrap).
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn serialize<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value, Error> {
    let value = serde_json::to_value(value).map_err(|source| Error::Serialize {
        key: key.to_owned(),
        source,
    })?;
    // Scalars (most values) nest nothing: no walk, no allocation on the hot path.
    if matches!(value, Value::Array(_) | Value::Object(_)) && record::depth(&value) > MAX_DEPTH {
        return Err(Error::TooDeep {
            key: key.to_owned(),
            max: MAX_DEPTH,
        });
    }
    Ok(value)
}

/// `value` as the `T` of `key`; a lenient key reads a value of another type as absent.
fn read<T: DeserializeOwned>(
    key: &(impl Key<T> + ?Sized),
    value: &Value,
) -> Result<Option<T>, Error> {
    match deserialize(key.key_name(), value) {
        Ok(value) => Ok(Some(value)),
        Err(error) if key.is_lenient() => {
            tracing::warn!(%error, "a stored value of another type reads as absent (lenient key)");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

fn deserialize<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|source| Error::Deserialize {
        key: key.to_owned(),
        source,
    })
}
