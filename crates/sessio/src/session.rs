//! The per-request session.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::id::SessionId;
use crate::manager::{now, Fetched, Ident, Manager};
use crate::record::{Data, Meta};
use crate::store::{Acquired, Fenced, LeaseToken, Loaded, Saved};
use crate::Error;

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
    mgr: Arc<Manager>,
    state: Mutex<State>,
}

/// The keys this request changed; their new values are in the data (absent = removed).
type Changes = HashSet<String>;

struct State {
    /// A well-formed id the client sent, not yet known to exist.
    cookie_id: Option<SessionId>,
    /// The client sent a cookie of our name (whatever its value).
    presented: bool,
    loaded: bool,
    /// The id and key of this session's record (existing, or about to be created).
    ident: Option<Ident>,
    /// The record as last read or written; `None` when it is not in the store.
    base: Option<Loaded>,
    meta: Meta,
    data: Data,
    changes: Changes,
    cleared: bool,
    meta_dirty: bool,
    /// A record to delete after the commit's write (rotated or destroyed id).
    stale_key: Option<String>,
    lock: Option<LeaseToken>,
    /// A store error left the state unknown: the commit writes nothing.
    failed: bool,
    /// The request's clock, read once when the session is first used (and again after
    /// waiting for a lock): expiry needs no finer time, and clock reads are not free.
    now: SystemTime,
}

impl State {
    fn dirty(&self) -> bool {
        !self.changes.is_empty() || self.cleared || self.meta_dirty
    }

    fn set(&mut self, key: &str, value: Option<Value>) {
        match (value, self.data.get_mut(key)) {
            (Some(v), Some(slot)) => *slot = v,
            (Some(v), None) => {
                self.data.insert(key.to_owned(), v);
            }
            (None, _) => {
                self.data.remove(key);
            }
        }
        if !self.changes.contains(key) {
            self.changes.insert(key.to_owned());
        }
    }

    /// Replaces the view with a fresh record and re-applies this request's changes.
    fn rebase(&mut self, fetched: Fetched, skip: Option<&str>) {
        if let Some(key) = skip {
            self.changes.remove(key);
        }
        let mut mine = std::mem::replace(&mut self.data, fetched.data);
        self.base = Some(fetched.loaded);
        if !self.meta_dirty {
            self.meta = fetched.meta;
        } else {
            // Never extend the absolute lifetime with our own copy of the metadata.
            self.meta.created = fetched.meta.created;
        }
        if self.cleared {
            self.data.clear();
        }
        for key in &self.changes {
            match mine.remove(key) {
                Some(v) => self.data.insert(key.clone(), v),
                None => self.data.remove(key),
            };
        }
    }

    /// The record vanished (destroyed by a concurrent request, or expired): start over as
    /// a new, empty session and drop this request's changes, so nothing resurrects it.
    fn reset_gone(&mut self, mgr: &Manager) {
        self.ident = None;
        self.base = None;
        self.data.clear();
        self.changes.clear();
        self.cleared = false;
        self.meta_dirty = false;
        self.meta = mgr.new_meta();
    }

    fn mark_saved(&mut self, loaded: Option<Loaded>) {
        self.base = loaded;
        self.changes.clear();
        self.cleared = false;
        self.meta_dirty = false;
    }
}

/// Recomputes one key after a conflict: `update`'s closure, type-erased.
type Hook<'a> = (
    &'a str,
    &'a mut (dyn FnMut(&mut State) -> Result<(), Error> + Send),
);

impl Session {
    pub(crate) fn new(mgr: Arc<Manager>, cookie_id: Option<SessionId>, presented: bool) -> Self {
        let meta = mgr.new_meta();
        Self {
            inner: Arc::new(Inner {
                mgr,
                state: Mutex::new(State {
                    cookie_id,
                    presented,
                    loaded: false,
                    ident: None,
                    base: None,
                    meta,
                    data: Data::new(),
                    changes: Changes::new(),
                    cleared: false,
                    meta_dirty: false,
                    stale_key: None,
                    lock: None,
                    failed: false,
                    now: UNIX_EPOCH,
                }),
            }),
        }
    }

    fn mgr(&self) -> &Manager {
        &self.inner.mgr
    }

    /// Locks the state and loads the record on first use.
    async fn state(&self) -> Result<MutexGuard<'_, State>, Error> {
        let mut st = self.inner.state.lock().await;
        if !st.loaded {
            st.now = now();
            if let Some(id) = st.cookie_id.clone() {
                let ident = self.mgr().ident(id);
                let fetched = self
                    .mgr()
                    .fetch(&ident.key, st.now)
                    .await
                    .inspect_err(|_| {
                        st.failed = true;
                    })?;
                if let Some(f) = fetched {
                    st.ident = Some(ident);
                    st.base = Some(f.loaded);
                    st.meta = f.meta;
                    st.data = f.data;
                }
                // An id we did not issue, or that expired, is never adopted: the session
                // stays new and gets a fresh id when it is first saved.
            }
            st.loaded = true;
        }
        Ok(st)
    }

    /// The value under `key`, deserialized into `T`; `None` if absent.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Deserialize`] if the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let st = self.state().await?;
        st.data.get(key).map(|v| deserialize(key, v)).transpose()
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
    /// [`Error::Store`] if the store fails; [`Error::Serialize`] if `value` has no JSON form.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        let value = serialize(key, &value)?;
        let mut st = self.state().await?;
        if st.data.get(key) != Some(&value) {
            st.set(key, Some(value));
        }
        Ok(())
    }

    /// Removes `key` and returns its value, deserialized into `T`.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails; [`Error::Deserialize`] if the value is not a `T`
    /// (the key is removed all the same).
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut st = self.state().await?;
        let Some(old) = st.data.get(key).cloned() else {
            return Ok(None);
        };
        st.set(key, None);
        deserialize(key, &old).map(Some)
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
        st.changes.clear();
        st.cleared = true;
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
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(Option<T>) -> T + Send,
    {
        let mut result = None;
        let mut recompute = |st: &mut State| -> Result<(), Error> {
            let old = st.data.get(key).map(|v| deserialize(key, v)).transpose()?;
            let new = f(old);
            st.set(key, Some(serialize(key, &new)?));
            result = Some(new);
            Ok(())
        };
        let mut st = self.state().await?;
        self.persist(&mut st, Some((key, &mut recompute))).await?;
        drop(st);
        Ok(result.expect("the update closure ran at least once"))
    }

    /// Gives the session a new id, keeping its data: the new record is written before the
    /// old one is deleted, and the absolute lifetime is not extended. Do this on login and
    /// on any privilege change, against session fixation. Applied when the request commits.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn cycle_id(&self) -> Result<(), Error> {
        let mut st = self.state().await?;
        if st.base.is_some() {
            st.stale_key = st.ident.take().map(|i| i.key);
            st.base = None;
            st.meta_dirty = true;
        }
        Ok(())
    }

    /// Ends the session: its record is deleted and its cookie expired when the request
    /// commits. Data stored after this call goes into a brand-new session with a new id.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn destroy(&self) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        if !st.loaded {
            st.now = now();
        }
        let key = match (&st.ident, &st.cookie_id) {
            (Some(ident), _) => Some(ident.key.clone()),
            (None, Some(id)) if !st.loaded => Some(self.mgr().ident(id.clone()).key),
            _ => None,
        };
        if key.is_some() {
            st.stale_key = key;
        }
        let mgr = self.inner.mgr.clone();
        st.reset_gone(&mgr);
        st.loaded = true;
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
        st.meta_dirty = true;
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
            st.meta_dirty = true;
        }
        Ok(())
    }

    /// Takes the session's exclusive lock, shared by every process on the same store, and
    /// reloads the session under it.
    ///
    /// Until the guard is released, no other request can `lock()` this session: they wait
    /// up to [`Config::with_lock_wait`](crate::Config::with_lock_wait) and then fail with
    /// [`Error::LockTimeout`]. Call [`SessionLock::unlock`] to save the changes made under
    /// the lock and release it in one step. A guard that is dropped instead (early return,
    /// error, panic) releases the lock in the background, and its changes are saved with the
    /// rest of the request. A holder that dies loses the lock after the lease
    /// ([`Config::with_lock_lease`](crate::Config::with_lock_lease)), and its late saves are
    /// refused.
    ///
    /// The lock excludes other `lock()` holders; plain writes stay safe through conditional
    /// saves.
    ///
    /// ```
    /// # use sessio::{Config, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
    /// # let session = manager.session(std::iter::empty());
    /// let guard = session.lock().await?;
    /// let balance: i64 = guard.get("balance").await?.unwrap_or(100);
    /// guard.insert("balance", balance - 30).await?;
    /// guard.unlock().await?;
    /// assert_eq!(session.get::<i64>("balance").await?, Some(70));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::LockTimeout`], [`Error::LockUnsupported`], [`Error::AlreadyLocked`],
    /// [`Error::Store`].
    pub async fn lock(&self) -> Result<SessionLock, Error> {
        let mgr = self.inner.mgr.clone();
        let locking = mgr.store.locking().ok_or(Error::LockUnsupported)?;
        let mut st = self.inner.state.lock().await;
        if st.lock.is_some() {
            return Err(Error::AlreadyLocked);
        }
        let token = LeaseToken::generate()?;
        let (mut ident, mut fresh) = match (&st.ident, &st.cookie_id) {
            (Some(ident), _) => (ident.clone(), false),
            (None, Some(id)) if !st.loaded => (mgr.ident(id.clone()), false),
            _ => (mgr.new_ident()?, true),
        };
        let started = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            let acquired = locking
                .acquire(&ident.key, &token, mgr.config.lock_lease)
                .await
                .inspect_err(|_| st.failed = true)?;
            let record = match acquired {
                Acquired::Granted(record) => {
                    st.now = now();
                    record
                }
                Acquired::Held => {
                    let waited = started.elapsed();
                    if waited >= mgr.config.lock_wait {
                        return Err(Error::LockTimeout { waited });
                    }
                    let rest = mgr.config.lock_wait - waited;
                    tokio::time::sleep(backoff.min(rest)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                    continue;
                }
            };
            match record.and_then(|l| mgr.check(l, st.now)) {
                Some(fetched) => {
                    if st.loaded {
                        st.rebase(fetched, None);
                    } else {
                        st.base = Some(fetched.loaded);
                        st.meta = fetched.meta;
                        st.data = fetched.data;
                    }
                }
                None if !fresh => {
                    // Unknown id (never adopted), or destroyed meanwhile: lock a new one.
                    locking.release(&ident.key, &token).await?;
                    if st.base.is_some() {
                        st.reset_gone(&mgr);
                    }
                    ident = mgr.new_ident()?;
                    fresh = true;
                    continue;
                }
                None => {}
            }
            st.ident = Some(ident);
            st.loaded = true;
            st.lock = Some(token);
            return Ok(SessionLock {
                session: self.clone(),
                armed: true,
            });
        }
    }

    /// Saves pending changes under the lease and releases it (or only releases it).
    async fn release_lock(&self, save: bool) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        self.release_locked(&mut st, save).await
    }

    async fn release_locked(&self, st: &mut State, save: bool) -> Result<(), Error> {
        let Some(token) = st.lock else {
            return Ok(());
        };
        let mgr = self.inner.mgr.clone();
        let locking = mgr.store.locking().ok_or(Error::LockUnsupported)?;
        let key = st
            .ident
            .as_ref()
            .expect("a held lock has a key")
            .key
            .clone();
        if !(save && st.dirty() && st.stale_key.is_none()) {
            st.lock = None;
            locking.release(&key, &token).await?;
            return Ok(());
        }
        let result = if st.data.is_empty() {
            locking.delete_locked(&key, &token).await.map(|f| (f, None))
        } else {
            match mgr.ttl(&st.meta, st.now) {
                Some(ttl) => {
                    let now = st.now;
                    mgr.stamp_created(&mut st.meta, now);
                    let bytes = match mgr.encode(&st.meta, &st.data) {
                        Ok(bytes) => bytes,
                        Err(error) => {
                            // Nothing can be saved; the lock must not outlive the error.
                            st.lock = None;
                            locking.release(&key, &token).await?;
                            return Err(error);
                        }
                    };
                    locking
                        .save_locked(&key, &token, &bytes, ttl, true)
                        .await
                        .map(|f| (f, Some((bytes, ttl))))
                }
                None => locking.delete_locked(&key, &token).await.map(|f| (f, None)),
            }
        };
        st.lock = None;
        match result {
            Ok((Fenced::Done(version), written)) => {
                let loaded = written.map(|(data, ttl)| Loaded {
                    data,
                    version: version.unwrap_or(crate::Version(0)),
                    expires_at: Some(st.now + ttl),
                });
                st.mark_saved(loaded);
                Ok(())
            }
            Ok((Fenced::LeaseLost, _)) => {
                st.failed = true;
                Err(Error::LockLost)
            }
            Err(e) => {
                st.failed = true;
                Err(e.into())
            }
        }
    }

    /// Writes the state now, merging with concurrent changes (see the type's docs).
    async fn persist(&self, st: &mut State, mut hook: Option<Hook<'_>>) -> Result<(), Error> {
        let result = self.persist_inner(st, &mut hook).await;
        if matches!(result, Err(Error::Store(_) | Error::LockLost)) {
            st.failed = true;
        }
        result
    }

    async fn persist_inner(
        &self,
        st: &mut State,
        hook: &mut Option<Hook<'_>>,
    ) -> Result<(), Error> {
        let mgr = self.inner.mgr.clone();
        if let Some((_, recompute)) = hook {
            recompute(st)?;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ttl = mgr.ttl(&st.meta, st.now);
            if st.data.is_empty() || ttl.is_none() {
                // Nothing to keep (or past its absolute lifetime): the record goes.
                if st.base.is_some() {
                    let key = st
                        .ident
                        .as_ref()
                        .expect("a stored session has a key")
                        .key
                        .clone();
                    match (st.lock, mgr.store.locking()) {
                        (Some(token), Some(locking)) => {
                            if locking.delete_locked(&key, &token).await? == Fenced::LeaseLost {
                                return Err(Error::LockLost);
                            }
                        }
                        _ => mgr.store.delete(&key).await?,
                    }
                }
                st.reset_gone(&mgr);
                return Ok(());
            }
            let ttl = ttl.expect("checked above");
            let now = st.now;
            mgr.stamp_created(&mut st.meta, now);
            let bytes = mgr.encode(&st.meta, &st.data)?;
            if st.ident.is_none() {
                st.ident = Some(mgr.new_ident()?);
            }
            let key = st.ident.as_ref().expect("set above").key.clone();
            let outcome = match (st.lock, &st.base) {
                (Some(token), _) => {
                    let locking = mgr.store.locking().ok_or(Error::LockUnsupported)?;
                    match locking
                        .save_locked(&key, &token, &bytes, ttl, false)
                        .await?
                    {
                        Fenced::Done(v) => Saved::Stored(v.unwrap_or(crate::Version(0))),
                        Fenced::LeaseLost => return Err(Error::LockLost),
                    }
                }
                (None, None) => match mgr.store.create(&key, &bytes, ttl).await? {
                    Some(v) => Saved::Stored(v),
                    None => {
                        // Id collision: never overwrite someone else's session.
                        st.ident = None;
                        if attempts >= mgr.config.max_retries {
                            return Err(Error::Conflict { attempts });
                        }
                        continue;
                    }
                },
                (None, Some(base)) => mgr.store.save(&key, base, &bytes, ttl).await?,
            };
            match outcome {
                Saved::Stored(version) => {
                    st.mark_saved(Some(Loaded {
                        data: bytes,
                        version,
                        expires_at: Some(st.now + ttl),
                    }));
                    return Ok(());
                }
                Saved::Conflict | Saved::Missing => {
                    if attempts >= mgr.config.max_retries {
                        return Err(Error::Conflict { attempts });
                    }
                    backoff(attempts).await;
                    let skip = hook.as_ref().map(|(k, _)| *k);
                    match mgr.fetch(&key, st.now).await? {
                        Some(fetched) => st.rebase(fetched, skip),
                        None => st.reset_gone(&mgr),
                    }
                    if let Some((_, recompute)) = hook {
                        recompute(st)?;
                    }
                }
            }
        }
    }

    /// Ends the request: saves what changed, extends the expiry of a session that was only
    /// read (throttled), and deletes what was rotated away or destroyed.
    ///
    /// Returns the `Set-Cookie` header value to send, if any: the cookie of a new or
    /// rotated id, a renewed persistent cookie, or a removal cookie (repeating Domain,
    /// Path, Secure and SameSite) for an emptied or destroyed session. An untouched session
    /// costs nothing and sends nothing.
    ///
    /// If an earlier store error left the session's state unknown, nothing is written and
    /// `Ok(None)` is returned: the error was already reported to the handler.
    ///
    /// # Errors
    /// The store's error, or [`Error::Conflict`], [`Error::TooLarge`], [`Error::LockLost`]:
    /// the data was not saved, and the response must say so.
    pub async fn commit(&self) -> Result<Option<String>, Error> {
        let mut st = self.inner.state.lock().await;
        if !st.loaded || st.failed {
            return Ok(None);
        }
        let mgr = self.inner.mgr.clone();
        if st.lock.is_some() {
            self.release_locked(&mut st, true).await?;
        }
        let had_id = st.cookie_id.clone();
        let stored_before = st.base.as_ref().map(|b| b.expires_at);
        let mut renewed = false;
        // An expiry override or a "remember me" change alters the cookie itself.
        let cookie_changed = st.meta_dirty;
        if st.dirty() {
            let due = match (stored_before, mgr.ttl(&st.meta, st.now)) {
                (Some(expires), Some(ttl)) => mgr.due_for_touch(expires, ttl, st.now),
                _ => true,
            };
            self.persist(&mut st, None).await?;
            renewed = due;
        } else if let (Some(base), Some(ident)) = (&st.base, &st.ident) {
            if let Some(ttl) = mgr.ttl(&st.meta, st.now) {
                if mgr.due_for_touch(base.expires_at, ttl, st.now) {
                    let key = ident.key.clone();
                    let touched = mgr.store.touch(&key, ttl).await.inspect_err(|_| {
                        st.failed = true;
                    })?;
                    if touched {
                        let expires_at = Some(st.now + ttl);
                        if let Some(base) = st.base.as_mut() {
                            base.expires_at = expires_at;
                        }
                        renewed = true;
                    }
                }
            }
        }
        if let Some(stale) = st.stale_key.take() {
            mgr.store.delete(&stale).await?;
        }
        // The cookie follows from where the record now is and what the client holds.
        let cookie = match (&st.base, &st.ident) {
            (Some(_), Some(ident)) => {
                let persistent = !st.meta.browser_cookie;
                let new_id = had_id.as_ref() != Some(&ident.id);
                if new_id || cookie_changed || (renewed && persistent) {
                    let max_age = if persistent {
                        mgr.ttl(&st.meta, st.now)
                    } else {
                        None
                    };
                    Some(mgr.cookie(&ident.id, max_age))
                } else {
                    None
                }
            }
            _ if st.presented => Some(mgr.removal_cookie()),
            _ => None,
        };
        Ok(cookie)
    }
}

/// The session's exclusive lock, from [`Session::lock`]. Derefs to the [`Session`].
///
/// Release it with [`unlock`](Self::unlock), which saves the changes made under it with
/// the lease's fencing token. Dropping it releases the lock in the background instead.
#[must_use = "the lock is released when the guard is dropped"]
pub struct SessionLock {
    session: Session,
    armed: bool,
}

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLock").finish_non_exhaustive()
    }
}

impl SessionLock {
    /// Saves the changes made under the lock (only while the lease is still ours) and
    /// releases it, in one store round trip.
    ///
    /// # Errors
    /// [`Error::LockLost`] if the lease lapsed (nothing was written), [`Error::Store`],
    /// [`Error::TooLarge`].
    pub async fn unlock(mut self) -> Result<(), Error> {
        self.armed = false;
        self.session.release_lock(true).await
    }
}

impl std::ops::Deref for SessionLock {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let session = self.session.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(error) = session.release_lock(false).await {
                        tracing::warn!(%error, "releasing a dropped session lock failed; it lapses with its lease");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(
                    "session lock dropped outside a tokio runtime; it lapses with its lease"
                );
            }
        }
    }
}

/// Waits a little after a lost conditional save, so that many requests racing on one
/// session spread out instead of colliding again: a random pause of up to `attempt` ms
/// (at most 20 ms) after the second loss.
async fn backoff(attempt: u32) {
    if attempt < 2 {
        return;
    }
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let ceiling = u64::from(attempt.min(20)) * 1000;
    tokio::time::sleep(Duration::from_micros(random % ceiling)).await;
}

fn serialize<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|source| Error::Serialize {
        key: key.to_owned(),
        source,
    })
}

fn deserialize<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|source| Error::Deserialize {
        key: key.to_owned(),
        source,
    })
}
