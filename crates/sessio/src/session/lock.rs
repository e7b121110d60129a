//! The session lock: taking the lease, the guard, and its release on every path.

use std::time::{Duration, Instant};

use crate::engine::View;
use crate::error::Error;
use crate::session::persist::MAX_HOPS;
use crate::session::state::{Held, Origin, Phase};
use crate::session::Session;
use crate::store::{Acquired, AfterWrite, LeaseToken};

impl Session {
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
    /// The lock excludes other `lock()` holders. It does not stop plain requests: their
    /// writes and the lock holder's are merged key by key like any two concurrent writes,
    /// so neither overwrites a change it has not seen. A rotation by another request while
    /// the lock is held ends the locked section with [`Error::LockLost`], a logout or the
    /// session's expiry with [`Error::Ended`] (nothing of it is written); the logout stays
    /// a logout. Inside the section,
    /// [`cycle_id`](Session::cycle_id) and [`destroy`](Session::destroy) work as anywhere
    /// (the lock moves with a rotated session, and ends with a destroyed one).
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
    #[tracing::instrument(name = "sessio.lock", level = "debug", skip_all)]
    pub async fn lock(&self) -> Result<SessionLock, Error> {
        let engine = self.engine();
        let locking = self.store().locking().ok_or(Error::LockUnsupported)?;
        let mut st = self.inner.state.lock().await;
        if st.lock.is_some() {
            return Err(Error::AlreadyLocked);
        }
        if st.superseded {
            return Err(Error::Superseded);
        }
        let token = LeaseToken::generate()?;
        let (mut key, mut reserved) = match (&st.phase, st.presented.id()) {
            (Phase::Failed, _) => return Err(Error::Poisoned),
            (Phase::Stored { key, .. }, _) => (key.clone(), None),
            (Phase::Unloaded, Some(id)) => (engine.key(id), None),
            (Phase::Unloaded | Phase::New, _) => {
                let (id, key) = engine.fresh()?;
                (key, Some(id))
            }
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut waiting = false;
        // The presented id was moved on by a plain rotation: the session is its successor.
        let mut followed = false;
        // Forwards followed: no more than a read follows (see `persist::MAX_HOPS`).
        let mut hops = 0;
        loop {
            let acquired = match locking
                .acquire(&key, &token, engine.config.lock_lease)
                .await
            {
                Ok(acquired) => acquired,
                Err(error) => {
                    st.fail();
                    self.release_in_background(key, token);
                    return Err(error.into());
                }
            };
            let record = match acquired {
                Acquired::Granted(record) => record,
                Acquired::Held => {
                    let waited = started.elapsed();
                    if waited >= engine.config.lock_wait {
                        crate::meter::lock_timeout();
                        return Err(Error::LockTimeout { waited });
                    }
                    if !waiting {
                        waiting = true;
                        crate::meter::lock_wait();
                    }
                    tokio::time::sleep(pause.min(engine.config.lock_wait - waited)).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                    continue;
                }
            };
            st.now = engine.now();
            match engine.view(record, st.now) {
                View::Live(fetched) => {
                    match st.take_origin() {
                        Some(origin) => st.rebase(fetched, key.clone(), origin, None),
                        None => {
                            crate::meter::loaded();
                            let origin = if followed {
                                Origin::Followed
                            } else {
                                Origin::Client
                            };
                            st.adopt(engine, fetched, key.clone(), origin)
                        }
                    }
                    break;
                }
                _ if reserved.is_some() => {
                    st.start_new();
                    break;
                }
                View::Moved(forward) if forward.login => {
                    // A login moved the session on: this request carries the old id, and
                    // its locked section must not reach the logged-in session.
                    locking.release(&key, &token).await?;
                    return Err(Error::Superseded);
                }
                View::Moved(forward) if !matches!(st.phase, Phase::New) => {
                    // A plain rotation moved the session on after this request's id was
                    // sent: follow it to its successor (never revealed to this client), as
                    // a write would.
                    locking.release(&key, &token).await?;
                    if hops == MAX_HOPS {
                        // An id more rotations old than a read follows: the browser holds
                        // a newer one (nothing is locked, read or written).
                        return Err(Error::Superseded);
                    }
                    hops += 1;
                    st.set_origin(Origin::Followed);
                    followed = true;
                    key = forward.to;
                }
                _ => {
                    // An id we never issued, rotated away, or destroyed meanwhile: it is
                    // never adopted. Lock a fresh session instead.
                    locking.release(&key, &token).await?;
                    if matches!(st.phase, Phase::Stored { .. }) {
                        st.gone(engine);
                    } else {
                        st.start_new();
                    }
                    let (id, fresh) = engine.fresh()?;
                    key = fresh;
                    reserved = Some(id);
                }
            }
        }
        st.lock = Some(Held {
            token,
            key,
            reserved,
        });
        Ok(SessionLock {
            session: self.clone(),
            token: Some(token),
        })
    }
}

impl Session {
    /// An acquire that failed (a timeout, say) may still be carried out by the store once
    /// it answers again, leaving a lease nobody holds. Release it in the background until
    /// that is sure or the lease would have lapsed anyway.
    fn release_in_background(&self, key: String, token: LeaseToken) {
        let engine = self.inner.engine.clone();
        let store = self.shared_store();
        tokio::spawn(async move {
            let Some(locking) = store.locking() else {
                return;
            };
            let until = Instant::now() + engine.config.lock_lease;
            let mut pause = Duration::from_millis(50);
            while Instant::now() < until {
                if let Ok(true) = locking.release(&key, &token).await {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        });
    }
}

/// The session's exclusive lock, from [`Session::lock`]. Derefs to the [`Session`].
///
/// Release it with [`unlock`](Self::unlock), which saves the changes made under it with
/// the lease's fencing token. Dropping it releases the lock in the background instead.
#[must_use = "the lock is released when the guard is dropped"]
pub struct SessionLock {
    session: Session,
    /// The lease this guard stands for; `None` once unlocked.
    token: Option<LeaseToken>,
}

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLock").finish_non_exhaustive()
    }
}

impl SessionLock {
    /// Saves the changes made under the lock (only while the lease is still ours, and
    /// merged with any plain write made meanwhile) and releases it, in one store round
    /// trip. The lease is released even when the save fails.
    ///
    /// # Errors
    /// [`Error::LockLost`] if the lease lapsed or the session was rotated by another
    /// request, [`Error::Ended`] if it was destroyed or expired meanwhile (nothing was
    /// written either way), [`Error::Store`], [`Error::TooLarge`].
    pub async fn unlock(mut self) -> Result<(), Error> {
        let Some(token) = self.token.take() else {
            return Ok(());
        };
        let mut st = self.session.inner.state.lock().await;
        if st.lock.as_ref().is_none_or(|h| h.token != token) {
            // Already released (the session was destroyed inside the section, or committed).
            return Ok(());
        }
        self.session
            .persist(&mut st, None, AfterWrite::Release)
            .await
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
        let Some(token) = self.token.take() else {
            return;
        };
        let session = self.session.clone();
        let release = async move {
            let mut st = session.inner.state.lock().await;
            // Only this guard's lease: the session may have been locked again since.
            if let Some(held) = st.lock.take_if(|h| h.token == token) {
                if let Err(error) = session.release_lease(&held).await {
                    tracing::warn!(%error, "releasing a dropped session lock failed; it lapses with its lease");
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(release);
            }
            Err(_) => {
                tracing::warn!(
                    "session lock dropped outside a tokio runtime; it lapses with its lease"
                );
            }
        }
    }
}
