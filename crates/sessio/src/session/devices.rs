//! The user's sessions on a session: listing, revoking, and keeping the index in step with
//! the session at commit (see [`crate::index`]).

use crate::engine::View;
use crate::index::{from_millis, millis, Entry, Membership, SessionInfo};
use crate::session::state::{Phase, State};
use crate::session::Session;
use crate::store::Outcome;
use crate::Error;

impl Session {
    /// The live sessions of the logged-in user, this one included (marked
    /// [`current`](SessionInfo::current)), least recently active first. Empty when nobody
    /// is logged in.
    ///
    /// Each listed session is read once to make sure it still exists; entries of sessions
    /// that vanished are dropped from the index on the way.
    ///
    /// # Errors
    /// [`Error::NoSessionIndex`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, Error> {
        let me = self.member().await?;
        let Some(me) = me else {
            return Ok(Vec::new());
        };
        let mut live: Vec<SessionInfo> = self
            .engine()
            .live_entries(&me.index_key)
            .await?
            .into_iter()
            .map(|(handle, entry)| SessionInfo {
                current: handle == me.handle,
                handle,
                created: from_millis(entry.created),
                last_seen: from_millis(entry.seen),
                label: entry.label,
            })
            .collect();
        live.sort_by_key(|s| (s.last_seen, s.created));
        Ok(live)
    }

    /// The handle of this session in the user's sessions index; `None` when nobody is
    /// logged in or the index is off.
    ///
    /// # Errors
    /// [`Error::Store`] if the store fails.
    pub async fn handle(&self) -> Result<Option<String>, Error> {
        let engine = self.engine();
        let st = self.state().await?;
        Ok(engine.membership(&st.data).map(|m| m.handle))
    }

    /// Ends the logged-in user's session with `handle`: `true` if it was one of theirs
    /// (it is logged out on every process at its next request), `false` for any other
    /// handle (another user's, an unknown one) or when nobody is logged in. Revoking the
    /// current session's own handle is a [`logout`](Self::logout).
    ///
    /// # Errors
    /// [`Error::NoSessionIndex`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn revoke(&self, handle: &str) -> Result<bool, Error> {
        let Some(me) = self.member().await? else {
            return Ok(false);
        };
        if handle == me.handle {
            self.logout().await?;
            return Ok(true);
        }
        let entries = self.engine().read_index(&me.index_key).await?;
        let Some(entry) = entries.get(handle) else {
            return Ok(false);
        };
        self.end(&me.index_key, handle, entry).await?;
        Ok(true)
    }

    /// Ends every session of the logged-in user but this one ("log out other devices",
    /// e.g. after a password change), on every process at their next request. Returns how
    /// many it ended; `0` when nobody is logged in.
    ///
    /// # Errors
    /// [`Error::NoSessionIndex`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn revoke_others(&self) -> Result<usize, Error> {
        let Some(me) = self.member().await? else {
            return Ok(0);
        };
        let entries = self.engine().read_index(&me.index_key).await?;
        let mut ended = 0;
        for (handle, entry) in entries.iter().filter(|(h, _)| **h != me.handle) {
            self.end(&me.index_key, handle, entry).await?;
            ended += 1;
        }
        Ok(ended)
    }

    /// This session's place in the index; [`Error::NoSessionIndex`] with the index off.
    async fn member(&self) -> Result<Option<Membership>, Error> {
        let engine = self.engine();
        if engine.config.index.is_none() {
            return Err(Error::NoSessionIndex);
        }
        let st = self.state().await?;
        Ok(engine.membership(&st.data))
    }

    /// Ends another session of the index: its record (and any rotation that raced it)
    /// goes, then its entry.
    async fn end(&self, index_key: &str, handle: &str, entry: &Entry) -> Result<(), Error> {
        let engine = self.engine();
        let ended = self.destroy_chain(&entry.key).await?;
        engine.forget(&ended).await?;
        engine
            .change_index(index_key, |entries| (entries.remove(handle).is_some(), ()))
            .await
    }

    /// Brings the index in step with what this request did to the session: a login adds
    /// its entry (and enforces the maximum per user), an extended expiry extends the entry,
    /// a logout, clear or new login removes the old entry. A logged-in session whose entry
    /// is gone was revoked: it ends here.
    pub(crate) async fn sync_index(&self, st: &mut State) -> Result<(), Error> {
        let engine = self.engine();
        let Some(options) = engine.config.index.as_ref() else {
            return Ok(());
        };
        let extended = std::mem::take(&mut st.extended);
        let login = st.login.take();
        let after = match &st.phase {
            Phase::Stored { .. } => engine.membership(&st.data),
            _ => None,
        };
        let before = st.indexed.take();
        if let Some(before) = before.as_ref().filter(|b| Some(*b) != after.as_ref()) {
            engine.forget(std::slice::from_ref(before)).await?;
        }
        let (Some(after), Phase::Stored { key, base, .. }) = (after, &st.phase) else {
            return Ok(());
        };
        let now = millis(st.now);
        let expires = base.expires_at.map_or(now, millis);
        let writes = st.meta.writes;
        if let Some(label) = login.filter(|_| before.as_ref() != Some(&after)) {
            let entry = Entry {
                key: key.clone(),
                created: now,
                seen: now,
                expires,
                writes,
                label,
            };
            engine
                .change_index(&after.index_key, |entries| {
                    let changed = match entries.get_mut(&after.handle) {
                        Some(existing) => existing.extend(&entry),
                        None => entries
                            .insert(after.handle.clone(), entry.clone())
                            .is_none(),
                    };
                    (changed, ())
                })
                .await?;
            st.indexed = Some(after.clone());
            if let Some(max) = options.max_per_user {
                self.enforce_max(&after, max).await?;
            }
            return Ok(());
        }
        if !extended || before.as_ref() != Some(&after) {
            // Not extended; or another request's login that this one's write merged with
            // (that request adds its entry).
            st.indexed = Some(after);
            return Ok(());
        }
        let seen = Entry {
            key: key.clone(),
            created: now,
            seen: now,
            expires,
            writes,
            label: None,
        };
        let listed = engine
            .change_index(&after.index_key, |entries| {
                match entries.get_mut(&after.handle) {
                    Some(existing) => (existing.extend(&seen), true),
                    None => (false, false),
                }
            })
            .await?;
        if listed {
            st.indexed = Some(after);
        } else {
            self.end_unlisted(st, &after).await?;
        }
        Ok(())
    }

    /// A logged-in session missing from its index (revoked, or its index lost) ends, if it
    /// is still the record this request knows under that login: a concurrent rotation or
    /// new login of the same session is left alone.
    async fn end_unlisted(&self, st: &mut State, me: &Membership) -> Result<(), Error> {
        let engine = self.engine();
        let Phase::Stored { key, .. } = &st.phase else {
            return Ok(());
        };
        let loaded = engine.store.load_fresh(key).await?;
        if let View::Live(fetched) = engine.view(loaded, st.now) {
            if engine.membership(&fetched.data).as_ref() == Some(me)
                && engine.store.delete_if(key, &fetched.loaded).await? == Outcome::Done(())
            {
                tracing::info!("a session missing from its user's sessions index was revoked; it is logged out");
                st.gone(engine);
            }
        }
        Ok(())
    }

    /// Past `max` live sessions for the user, ends the least recently active others.
    async fn enforce_max(&self, me: &Membership, max: usize) -> Result<(), Error> {
        let live = self.engine().live_entries(&me.index_key).await?;
        if live.len() <= max {
            return Ok(());
        }
        let mut others: Vec<_> = live.iter().filter(|(h, _)| **h != me.handle).collect();
        others.sort_by_key(|(_, e)| (e.seen, e.created));
        for (handle, entry) in others.into_iter().take(live.len() - max) {
            self.end(&me.index_key, handle, entry).await?;
        }
        Ok(())
    }
}
