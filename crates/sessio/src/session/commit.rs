//! The end of a request: [`Session::commit`] writes what changed (through
//! `persist`, or a touch for a session that was only read) and decides which cookies
//! the answer carries. The cookie decision lives here and nowhere else.

use super::state::{Origin, Phase, State};
use super::Session;
use crate::cookie::{self, Presented};
use crate::error::Error;
use crate::policy::Policy;
use crate::store::AfterWrite;

impl Session {
    /// Ends the request: saves what changed, extends the expiry of a session that was only
    /// read (throttled), deletes what was destroyed, and releases a lock still held.
    ///
    /// Returns the `Set-Cookie` header value to send, if any: the cookie of a new or
    /// rotated id, a renewed persistent cookie, or a removal cookie (repeating Domain,
    /// Path, Secure and SameSite) when this request emptied or destroyed the session. A
    /// request that only reads never removes or replaces the client's cookie, even when
    /// its id is unknown or rotated away (the browser may hold a newer one by now). An
    /// untouched session costs nothing and sends nothing.
    ///
    /// If an earlier store error left the session's state unknown, nothing is written and
    /// `Ok(None)` is returned: the error was already reported to the handler.
    ///
    /// A response may need several `Set-Cookie` headers: with the cookie store
    /// (`sessio::cookie_store`), a large session's chunks and the removal of chunks no
    /// longer used; with a store that serves reads from a cache ([`Store::serves_from_cache`](crate::store::Store::serves_from_cache),
    /// Redis's near cache), the write-count cookie `<name>.w` beside the id cookie.
    /// Integrations call [`commit_cookies`](Self::commit_cookies), which returns them all;
    /// `commit` fails with [`Error::SeveralCookies`] then.
    ///
    /// The id cookie is sent only when the id is new (a new session, a rotation, a
    /// login), when this request changed its attributes, when a persistent cookie is
    /// renewed, or to remove it: never merely because the session was written. A browser
    /// applies answers in the order they arrive, and an answer that re-sent an old id after
    /// a rotation's answer would take the browser out of its session.
    ///
    /// # Errors
    /// The store's error, or [`Error::Conflict`], [`Error::TooLarge`], [`Error::LockLost`],
    /// [`Error::Ended`] (a locked section whose session ended), [`Error::Superseded`] (a
    /// write or a logout carrying an id that a login moved away): the data was not saved,
    /// and the response must say so.
    pub async fn commit(&self) -> Result<Option<String>, Error> {
        let mut cookies = self.commit_cookies().await?;
        match cookies.len() {
            0 | 1 => Ok(cookies.pop()),
            _ => Err(Error::SeveralCookies),
        }
    }

    /// Like [`commit`](Self::commit), returning every `Set-Cookie` value the response
    /// needs, in order: none, the session cookie, or (with the
    /// cookie store (`sessio::cookie_store`)) the session's cookies and the removal of
    /// chunks it no longer uses. Integrations call this one.
    ///
    /// ```
    /// # use sessio::{Config, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
    /// let session = manager.session(std::iter::empty());
    /// session.insert("n", 1).await?;
    /// let set_cookies = session.commit_cookies().await?;
    /// assert_eq!(set_cookies.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`commit`](Self::commit), and [`Error::CookieTooLarge`] when a session sealed in
    /// cookies needs more of them than the cookie store may use.
    #[tracing::instrument(name = "sessio.commit", level = "debug", skip_all)]
    pub async fn commit_cookies(&self) -> Result<Vec<String>, Error> {
        let engine = self.engine();
        let mut st = self.inner.state.lock().await;
        if matches!(st.phase, Phase::Failed)
            || (matches!(st.phase, Phase::Unloaded) && st.doomed.is_none())
        {
            return Ok(Vec::new());
        }
        let cookie_changed = st.edits.meta;
        let ttl = engine.policy.ttl(&st.meta, st.now);
        let due = match (&st.phase, ttl) {
            (Phase::Stored { base, .. }, Some(ttl)) => {
                engine.policy.due_for_touch(base.expires_at, ttl, st.now)
            }
            _ => true,
        };
        // Where rotations leave forwards (the native format), the id cookie is only ever
        // sent with a new id: a persistent cookie past half its age, or one whose
        // attributes this request changed, is renewed by rotating the id. The browser's
        // other requests in flight follow the rotation; re-sending the old id instead could
        // arrive after a login's answer and take the browser out of its session.
        let renew = engine.forwards()
            && self.inner.carried.is_none()
            && matches!(
                st.phase,
                Phase::Stored {
                    origin: Origin::Client,
                    ..
                }
            )
            && (cookie_changed
                || (!st.meta.browser_cookie
                    && ttl
                        .is_some_and(|ttl| engine.policy.cookie_due(&st.meta, ttl, due, st.now))));
        let only_renewing = renew && !st.dirty() && st.lock.is_none();
        if renew {
            st.edits.rotate = true;
        }
        let mut renewed = false;
        if st.dirty() || st.lock.is_some() {
            match self.persist(&mut st, None, AfterWrite::Release).await {
                Ok(()) => {}
                // A login moved the session on while this request only meant to renew its
                // cookie: there is nothing left to renew, and the request's answer stands.
                Err(Error::Superseded) if only_renewing => st.edits = Default::default(),
                Err(error) => return Err(error),
            }
            renewed = due;
        } else if let (
            Phase::Stored {
                key,
                origin: Origin::Client,
                ..
            },
            Some(ttl),
            true,
        ) = (&st.phase, ttl, due)
        {
            let key = key.clone();
            renewed = self.touch(&mut st, &key, ttl).await?;
        }
        if let Err(error) = self.sync_index(&mut st).await {
            st.fail();
            return Err(error);
        }
        let persistent = !st.meta.browser_cookie;
        let max_age = |st: &State| {
            persistent
                .then(|| engine.policy.ttl(&st.meta, st.now))
                .flatten()
                .map(Policy::max_age)
        };
        if let Some(carried) = &self.inner.carried {
            let live = match &st.phase {
                Phase::Stored { key, .. } => Some(key.as_str()),
                _ => None,
            };
            return carried.cookies(&engine.jar, live, max_age(&st));
        }
        // The id cookie is sent only when this request issued the id (a new session, a
        // rotation, a login), changed the cookie's own attributes, or renews a persistent
        // cookie; never to say that the session was written (see `cookie::Stamp`): an
        // answer that arrives after a rotation's must not bring the old id back.
        let mut out = Vec::new();
        match &st.phase {
            Phase::Stored {
                origin: Origin::Issued(id),
                ..
            } => {
                let id = id.clone();
                out.push(engine.jar.issue(&id, max_age(&st)));
                // Sent: from here on the client holds this id.
                let stamp = st.presented.stamp().cloned();
                st.presented = Presented::Id(id, stamp);
                st.set_origin(Origin::Client);
            }
            // The compat format leaves no forwards: the cookie is renewed in place.
            Phase::Stored {
                origin: Origin::Client,
                ..
            } if !engine.forwards() && (cookie_changed || (renewed && persistent)) => {
                if let Some(id) = st.presented.id() {
                    out.push(engine.jar.issue(id, max_age(&st)));
                }
            }
            Phase::Stored { .. } => {}
            _ if st.ended && st.presented.sent() => {
                st.ended = false;
                out.push(engine.jar.removal());
                if st.presented.stamp().is_some_and(|s| s.tag.is_some()) {
                    out.push(engine.jar.removal_named(&engine.jar.stamp_name));
                }
            }
            _ => {}
        }
        // With a caching store, the write count the client saw (see `Engine::stamps`).
        if let (true, Phase::Stored { key, .. }) = (engine.counts_writes, &st.phase) {
            let current = cookie::Stamp {
                tag: Some(engine.tag(key)),
                writes: st.meta.writes,
            };
            if st.presented.stamp() != Some(&current) {
                out.push(engine.jar.issue_stamp(&current, max_age(&st)));
                if let Presented::Id(_, stamp) = &mut st.presented {
                    *stamp = Some(current);
                }
            }
        }
        Ok(out)
    }
}
