//! The user's sessions on a session: listing, revoking, and keeping the index in step with
//! the session at commit (see [`crate::devices`]).

use crate::clock::unix_millis as millis;
use crate::devices::{from_millis, Device, Entry, Membership};
use crate::engine::View;
use crate::error::Error;
use crate::session::state::{NewLogin, Phase, State};
use crate::session::Session;
use crate::store::Outcome;

impl Session {
    /// The live sessions of the logged-in user, this one included (marked
    /// [`current`](Device::current)), least recently active first. Empty when nobody
    /// is logged in.
    ///
    /// Each listed session is read once to make sure it still exists; entries of sessions
    /// that vanished are dropped from the index on the way.
    ///
    /// # Errors
    /// [`Error::DevicesOff`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn devices(&self) -> Result<Vec<Device>, Error> {
        let Some((me, _)) = self.member().await? else {
            return Ok(Vec::new());
        };
        let mut live: Vec<Device> = self
            .engine()
            .live_entries(&me.index_key)
            .await?
            .into_iter()
            .map(|(handle, entry)| Device {
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

    /// The handle of this session in the user's devices index; `None` when nobody is
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
    /// handle (another user's, an unknown one, one already ended) or when nobody is logged
    /// in. Revoking the current session's own handle is a [`logout`](Self::logout).
    ///
    /// The entry leaves the index first, in one conditional write that also checks that
    /// this session is still listed: of two sessions revoking each other at once, one wins
    /// and the other finds itself revoked (`false`).
    ///
    /// # Errors
    /// [`Error::DevicesOff`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn revoke(&self, handle: &str) -> Result<bool, Error> {
        let Some((me, listed)) = self.member().await? else {
            return Ok(false);
        };
        if handle == me.handle {
            self.logout().await?;
            return Ok(true);
        }
        let taken = self.take_entries(&me, listed, |h| h == handle).await?;
        let found = !taken.is_empty();
        self.end(&me.index_key, taken).await?;
        Ok(found)
    }

    /// Ends every session of the logged-in user but this one ("log out other devices",
    /// e.g. after a password change), on every process at their next request. Returns how
    /// many it ended; `0` when nobody is logged in, or when this session was itself revoked
    /// meanwhile (by another session's `revoke_others`, say: of two at once, one wins),
    /// in which case this session is logged out too.
    ///
    /// # Errors
    /// [`Error::DevicesOff`] if the index is off; [`Error::Store`] if the store fails.
    pub async fn revoke_others(&self) -> Result<usize, Error> {
        let Some((me, listed)) = self.member().await? else {
            return Ok(0);
        };
        let taken = self.take_entries(&me, listed, |h| h != me.handle).await?;
        let ended = taken.len();
        self.end(&me.index_key, taken).await?;
        Ok(ended)
    }

    /// This session's place in the index, and whether it is already listed there (it is
    /// not yet when this request logged in); [`Error::DevicesOff`] with the index off.
    async fn member(&self) -> Result<Option<(Membership, bool)>, Error> {
        let engine = self.engine();
        if engine.config.devices.is_none() {
            return Err(Error::DevicesOff);
        }
        let st = self.state().await?;
        Ok(engine
            .membership(&st.data)
            .map(|me| (me, st.new_login.is_none())))
    }

    /// Removes the entries whose handle `pick` accepts from `me`'s index, in one
    /// conditional write, and returns them; nothing if `me` is expected there (`listed`)
    /// and is not: it was revoked meanwhile, and this session is logged out.
    async fn take_entries(
        &self,
        me: &Membership,
        listed: bool,
        pick: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, Entry)>, Error> {
        let taken = self
            .engine()
            .change_index(&me.index_key, |entries| {
                if listed && !entries.contains_key(&me.handle) {
                    return (false, None);
                }
                let taken: Vec<_> = entries
                    .iter()
                    .filter(|(h, _)| pick(h))
                    .map(|(h, e)| (h.clone(), e.clone()))
                    .collect();
                for (handle, _) in &taken {
                    entries.remove(handle);
                }
                (!taken.is_empty(), Some(taken))
            })
            .await?;
        match taken {
            Some(taken) => Ok(taken),
            None => {
                // Revoked meanwhile (by another of the user's sessions): this request ends
                // it here too, so that its answer removes the cookie.
                self.logout().await?;
                Ok(Vec::new())
            }
        }
    }

    /// Ends the sessions of entries already taken out of the index: each record (and any
    /// rotation that raced it) goes, and any other entry those records held.
    async fn end(&self, index_key: &str, taken: Vec<(String, Entry)>) -> Result<(), Error> {
        let engine = self.engine();
        for (_, entry) in &taken {
            let ended = self.destroy_chain(&entry.key, Some(index_key)).await?;
            let others: Vec<_> = ended
                .into_iter()
                .filter(|m| m.index_key != index_key || !taken.iter().any(|(h, _)| *h == m.handle))
                .collect();
            engine.forget(&others).await?;
        }
        Ok(())
    }

    /// Brings the index in step with what this request did to the session: a login adds
    /// its entry (and enforces the maximum per user), an extended expiry extends the entry,
    /// a logout, clear or new login removes the old entry. A logged-in session whose entry
    /// is gone was revoked: it ends here.
    pub(crate) async fn sync_index(&self, st: &mut State) -> Result<(), Error> {
        let engine = self.engine();
        let Some(options) = engine.config.devices.as_ref() else {
            return Ok(());
        };
        let extended = std::mem::take(&mut st.extended);
        let login = st.new_login.take();
        let after = match &st.phase {
            Phase::Stored { .. } => engine.membership(&st.data),
            _ => None,
        };
        let before = st.indexed.take();
        // The entry a login replaces leaves in the same write that adds the new one (same
        // user), or after it: the session is never missing from its user's list.
        let replaced = before.as_ref().filter(|b| Some(*b) != after.as_ref());
        let Some(after) = after else {
            if let Some(replaced) = replaced {
                engine.forget(std::slice::from_ref(replaced)).await?;
            }
            return Ok(());
        };
        let Phase::Stored { key, base, .. } = &st.phase else {
            return Ok(());
        };
        let now = millis(st.now);
        let expires = base.expires_at.map_or(now, millis);
        // This session's entry as of this request (created, and a label, count only for a
        // new login's entry; an existing entry keeps its own).
        let mut entry = Entry {
            key: key.clone(),
            created: now,
            seen: now,
            expires,
            seq: 0,
            writes: st.meta.writes,
            label: None,
        };
        if let Some(NewLogin { label }) = login {
            entry.label = label;
            let seq = engine
                .change_index(&after.index_key, |entries| {
                    let mut changed = false;
                    if let Some(old) = replaced.filter(|r| r.index_key == after.index_key) {
                        changed |= entries.remove(&old.handle).is_some();
                    }
                    let seq = match entries.get_mut(&after.handle) {
                        Some(existing) => {
                            changed |= existing.extend(&entry);
                            existing.seq
                        }
                        None => {
                            entry.seq = entries.values().map(|e| e.seq).max().unwrap_or(0) + 1;
                            entries.insert(after.handle.clone(), entry.clone());
                            changed = true;
                            entry.seq
                        }
                    };
                    (changed, seq)
                })
                .await?;
            if let Some(old) = replaced.filter(|r| r.index_key != after.index_key) {
                engine.forget(std::slice::from_ref(old)).await?;
            }
            st.indexed = Some(after.clone());
            if let Some(max) = options.max_per_user {
                self.enforce_max(&after, seq, max).await?;
            }
            return Ok(());
        }
        if let Some(replaced) = replaced {
            engine.forget(std::slice::from_ref(replaced)).await?;
        }
        if !extended || before.as_ref() != Some(&after) {
            // Not extended; or another request's login that this one's write merged with
            // (that request adds its entry).
            st.indexed = Some(after);
            return Ok(());
        }
        let listed = engine
            .change_index(&after.index_key, |entries| {
                match entries.get_mut(&after.handle) {
                    Some(existing) => (existing.extend(&entry), true),
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
        let loaded = self.store().load_fresh(key).await?;
        if let View::Live(fetched) = engine.view(loaded, st.now) {
            if engine.membership(&fetched.data).as_ref() == Some(me)
                && self.store().delete_if(key, &fetched.loaded).await? == Outcome::Done(())
            {
                tracing::info!(
                    "a session missing from its user's devices index was revoked; it is logged out"
                );
                crate::meter::destroyed();
                st.gone(engine);
            }
        }
        Ok(())
    }

    /// Past `max` live sessions for the user, ends the least recently active of those
    /// logged in before this one. Concurrent logins agree: each counts only the logins up
    /// to its own place (`seq`), so none ends one that a later login counts on, and each
    /// victim is taken out of the index once.
    async fn enforce_max(&self, me: &Membership, seq: u64, max: usize) -> Result<(), Error> {
        let live = self.engine().live_entries(&me.index_key).await?;
        let mut earlier: Vec<_> = live
            .iter()
            .filter(|(h, e)| e.seq < seq && **h != me.handle)
            .collect();
        let counted = earlier.len() + 1;
        if counted <= max {
            return Ok(());
        }
        earlier.sort_by_key(|(_, e)| (e.seen, e.seq));
        let victims: Vec<String> = earlier
            .into_iter()
            .take(counted - max)
            .map(|(h, _)| h.clone())
            .collect();
        let taken = self
            .take_entries(me, false, |h| victims.iter().any(|v| v == h))
            .await?;
        self.end(&me.index_key, taken).await
    }
}
