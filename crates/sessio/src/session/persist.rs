//! The one write path: every save, plain or under the lock, goes through
//! [`Session::persist`], which writes conditionally and merges on conflict.
//!
//! - **Conditional.** Every write compares with the record this request last saw, so a
//!   write never resurrects a destroyed session and never overwrites a change it has not
//!   seen. Under the lock the same writes are also fenced by the lease.
//! - **Merge.** On a conflict the record is read again and only the keys this request
//!   changed are re-applied (an `update` closure runs again on the fresh value), then the
//!   write is retried, up to `Config::with_max_retries` times, with the one retry rule of
//!   `engine::retry`.
//! - **Rotation** writes the successor first, then replaces the old record with a short-lived
//!   forward to it (it ends with the rotation grace), conditional on the old record being
//!   unchanged. A write that was in flight during the rotation conflicts, follows the
//!   forward and lands in the successor, without revealing the new id to its client; so
//!   does a request that starts with the old id within the grace (a browser's request sent
//!   before the rotation's answer arrived). A *login's* forward is never followed: the old
//!   id may have been planted, and its writes are refused (`Error::Superseded`).
//!
//! **The one exception** is [`Session::touch`]: a session that was only read has its
//! expiry extended with the store's `touch`, which writes no data and so needs neither a
//! condition nor a merge (a touch that finds the record gone does nothing).

use std::time::Duration;

use crate::devices::Membership;
use crate::engine::retry::Retry;
use crate::engine::View;
use crate::error::Error;
use crate::record;
use crate::session::state::{Held, Origin, Phase, State};
use crate::session::Session;
use crate::store::{Acquired, AfterWrite, Loaded, LockingStore, Outcome, Version};

/// Recomputes one key after a conflict: `update`'s closure, type-erased.
pub(crate) type Hook<'a> = (
    &'a str,
    &'a mut (dyn FnMut(&mut State) -> Result<(), Error> + Send),
);

/// What one write attempt ended in.
enum Step {
    Done,
    /// The record changed underneath: read it again, merge, retry.
    Retry,
    /// The record is gone (a concurrent logout, or expiry): this request's own changes go
    /// into a new session.
    Orphaned,
}

/// Forwards followed at most from the id a request carries (each forward lives
/// `Config::with_rotation_grace`, so a chain longer than this is a rotation storm, or an
/// id so many rotations old that its browser holds a newer one): past it, reads, writes and
/// logouts answer `Error::Superseded` and the browser retries with the cookie it has.
pub(crate) const MAX_HOPS: usize = 16;

impl Session {
    /// Writes every change now. With [`AfterWrite::Release`] the lease, if held, is
    /// released with the last write (or on its own), whatever the outcome.
    pub(crate) async fn persist(
        &self,
        st: &mut State,
        mut hook: Option<Hook<'_>>,
        then: AfterWrite,
    ) -> Result<(), Error> {
        let result = self.persist_inner(st, &mut hook, then).await;
        let mut released = Ok(());
        if then == AfterWrite::Release {
            if let Some(held) = st.lock.take() {
                released = self.release_lease(&held).await;
            }
        }
        if matches!(result, Err(Error::LockLost | Error::Ended)) {
            crate::meter::lock_lost();
        }
        if matches!(
            result,
            Err(Error::Store(_) | Error::LockLost | Error::Ended)
        ) {
            st.fail();
        }
        result.and(released)
    }

    /// Extends the expiry of the session under `key`, which this request only read, to
    /// `ttl` from now: the one store write outside [`persist`](Self::persist) (see the
    /// module docs). Whether the record was there to extend.
    pub(crate) async fn touch(
        &self,
        st: &mut State,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let touched = match self.store().touch(key, ttl).await {
            Ok(touched) => touched,
            Err(error) => {
                st.fail();
                return Err(error.into());
            }
        };
        if touched {
            st.touched(ttl);
        }
        Ok(touched)
    }

    pub(crate) async fn release_lease(&self, held: &Held) -> Result<(), Error> {
        let locking = self.store().locking().ok_or(Error::LockUnsupported)?;
        locking.release(&held.key, &held.token).await?;
        Ok(())
    }

    async fn persist_inner(
        &self,
        st: &mut State,
        hook: &mut Option<Hook<'_>>,
        then: AfterWrite,
    ) -> Result<(), Error> {
        let engine = self.engine();
        if matches!(st.phase, Phase::Failed | Phase::Unloaded) && st.doomed.is_none() {
            return Err(Error::Poisoned);
        }
        if let Some(doomed) = st.doomed.clone() {
            // Taken only once done: a refused or failed logout stays to do, so that the
            // commit neither reports it done nor sends the cookie's removal.
            let ended = self.destroy_chain(&doomed, None).await?;
            st.doomed = None;
            engine.forget(&ended).await?;
            st.indexed = None;
            if let Some(held) = st.lock.take_if(|h| h.key == doomed) {
                self.release_lease(&held).await?;
            }
            st.ended = true;
        }
        if st.superseded && (st.dirty() || hook.is_some()) {
            // The client's id was rotated away by a login: nothing of this request may
            // reach the logged-in session, and a new session would replace its cookie.
            return Err(Error::Superseded);
        }
        if let Some((_, recompute)) = hook {
            recompute(st)?;
        }
        if !st.dirty() {
            return Ok(());
        }
        // The clock again: a handler (a locked section, say) may have run for a while since
        // the session was read, and what is written now must expire from now.
        st.now = engine.now();
        let mut retry = Retry::new(engine.config.max_retries);
        loop {
            let skip = hook.as_ref().map(|(k, _)| *k);
            let step = match self.write_once(st, then).await? {
                Step::Done => return Ok(()),
                Step::Retry => {
                    retry.lost().await?;
                    self.refresh(st, skip).await?
                }
                Step::Orphaned => Step::Orphaned,
            };
            if let Step::Orphaned = step {
                if st.lock.is_some() {
                    // Destroyed or expired while we held its lock: the section ends,
                    // nothing written, and the answer says why.
                    return Err(Error::Ended);
                }
                st.orphan(engine, skip);
            }
            if let Some((_, recompute)) = hook {
                recompute(st)?;
            }
            if !st.dirty() {
                return Ok(());
            }
        }
    }

    /// Deletes `key` and, if a rotation left a forward there, the sessions it leads to: a
    /// logout that raced a rotation ends the rotated session too (one more read per
    /// logout). A stale tab's logout within the rotation grace ends the new session
    /// as well, which is what its user asked for. A *login's* forward is not followed by a
    /// logout ([`Error::Superseded`]): the old id may be an attacker's.
    ///
    /// The chain is read first and deleted from its live end back: an error on the way
    /// (a store failure, a chain longer than [`MAX_HOPS`]) leaves either nothing deleted
    /// or the live session deleted, never a live session behind deleted forwards that a
    /// retry would take for a done logout. Each record is deleted only as it was read: a
    /// rotation that moves the live end on between the read and the delete makes the
    /// delete conflict, and the chain is read again from there.
    ///
    /// With `owner` (a revocation through a user's devices index), a live record that is
    /// not that user's login (another user logged in on the same browser meanwhile) stops
    /// the chain and stays: a user's revocation never ends another user's login.
    ///
    /// Returns where the deleted sessions stood in the devices index, for the caller to
    /// remove (empty when the index is off).
    pub(crate) async fn destroy_chain(
        &self,
        key: &str,
        owner: Option<&str>,
    ) -> Result<Vec<Membership>, Error> {
        let engine = self.engine();
        let mut ended = Vec::new();
        let mut retry = Retry::new(engine.config.max_retries);
        // The records read and still to delete, oldest first: key, bytes as read, where a
        // live one stood in the devices index, and whether it was live.
        let mut chain: Vec<(String, Loaded, Option<Membership>, bool)> = Vec::new();
        let mut next = Some(key.to_owned());
        loop {
            while let Some(key) = next.take() {
                if chain.len() > MAX_HOPS {
                    // A rotation storm, or an id many rotations old: nothing deleted; the
                    // browser holds a newer id by now.
                    return Err(Error::Superseded);
                }
                let Some(loaded) = self.store().load_fresh(&key).await? else {
                    break;
                };
                match engine.view(Some(loaded.clone()), engine.now()) {
                    // A logout carrying an id that a login moved away never reaches the
                    // login (whoever planted that id must not end the user's session): it
                    // is refused, and the browser retries with the cookie it holds now.
                    View::Moved(forward) if forward.login && owner.is_none() => {
                        return Err(Error::Superseded)
                    }
                    View::Moved(forward) => {
                        chain.push((key, loaded, None, false));
                        next = Some(forward.to);
                    }
                    View::Live(fetched) => {
                        let member = engine.membership(&fetched.data);
                        if let Some(owner) = owner {
                            if member.as_ref().is_none_or(|m| m.index_key != owner) {
                                break;
                            }
                        }
                        chain.push((key, loaded, member, true));
                    }
                    View::Gone => chain.push((key, loaded, None, false)),
                }
            }
            // Delete from the live end back.
            while let Some((key, loaded, member, live)) = chain.pop() {
                match self.store().delete_if(&key, &loaded).await? {
                    Outcome::Done(()) => {
                        if live {
                            crate::meter::destroyed();
                        }
                        ended.extend(member);
                    }
                    // Gone meanwhile (another logout, or expiry): nothing left here.
                    Outcome::Missing => {}
                    // Changed since it was read (rotated on, or written): read it again,
                    // and whatever it leads to now.
                    Outcome::Conflict | Outcome::LeaseLost => {
                        retry.lost().await?;
                        next = Some(key);
                        break;
                    }
                }
            }
            if next.is_none() {
                return Ok(ended);
            }
        }
    }

    /// Reads the record again after a conflict and re-applies this request's changes,
    /// following a rotation's forward to the successor.
    ///
    /// [`Step::Orphaned`] if the session is gone, [`Step::Retry`] otherwise.
    async fn refresh(&self, st: &mut State, skip: Option<&str>) -> Result<Step, Error> {
        let engine = self.engine();
        let (mut key, mut origin) = match &st.phase {
            Phase::Stored { key, origin, .. } => (key.clone(), origin.clone()),
            // A new session collided with an existing id: the next attempt takes a new one.
            _ => return Ok(Step::Retry),
        };
        for _ in 0..=MAX_HOPS {
            let loaded = self.store().load_fresh(&key).await?;
            match engine.view(loaded, st.now) {
                View::Live(fetched) => {
                    if let Some(key) = st.overwritten(&fetched) {
                        return Err(Error::Overwritten {
                            key: key.to_owned(),
                        });
                    }
                    st.rebase(fetched, key, origin, skip);
                    return Ok(Step::Retry);
                }
                View::Moved(forward) => {
                    if st.lock.is_some() {
                        // Our lease is on the old key; writing the successor unlocked would
                        // break the lock's exclusion.
                        return Err(Error::LockLost);
                    }
                    if forward.login {
                        // A login moved the session on: this request, which carries the
                        // old id, never writes into the logged-in session.
                        return Err(Error::Superseded);
                    }
                    key = forward.to;
                    origin = Origin::Followed;
                }
                View::Gone => return Ok(Step::Orphaned),
            }
        }
        // The session is still alive at the end of a chain we will not follow further: the
        // browser holds a newer id by now (never drop the write as if the session were
        // gone).
        Err(Error::Superseded)
    }

    async fn write_once(&self, st: &mut State, then: AfterWrite) -> Result<Step, Error> {
        let engine = self.engine();
        if st.edits.rotate
            && matches!(
                st.phase,
                Phase::Stored {
                    origin: Origin::Followed,
                    ..
                }
            )
        {
            // Another request rotated the session while this one ran. A plain rotation is
            // done already (its answer carries the new id; a second one would race it for
            // the browser's cookie). A login cannot be placed on a session whose id this
            // client does not hold: it is refused, and the browser retries with the cookie
            // it has by then.
            if st.edits.login {
                return Err(Error::Superseded);
            }
            st.edits.rotate = false;
            if !st.dirty() {
                return Ok(Step::Done);
            }
        }
        let now = st.now;
        let ttl = engine.policy.ttl(&st.meta, now);
        if ttl.is_none()
            && !st.edits.keys.is_empty()
            && !st.data.is_empty()
            && matches!(st.phase, Phase::Stored { .. })
        {
            // The session outlived its absolute lifetime while this request ran: its
            // writes go into a new session, as if they had arrived after it ended.
            return Ok(Step::Orphaned);
        }
        let keep = match ttl {
            Some(ttl) if !st.data.is_empty() => {
                engine.policy.stamp_created(&mut st.meta, now);
                if matches!(st.phase, Phase::New) || st.edits.rotate {
                    // A new id: the browser gets its cookie now.
                    engine.policy.stamp_issued(&mut st.meta, now);
                }
                // Counted from the record this write replaces (set by load and rebase).
                st.meta.writes = st.meta.writes.wrapping_add(1);
                Some((engine.encode(&st.meta, &st.data)?, ttl))
            }
            // Nothing to keep, or past its absolute lifetime: the record goes.
            _ => None,
        };
        match (&st.phase, keep) {
            (Phase::New, Some((bytes, ttl))) => self.create(st, bytes, ttl, then).await,
            (Phase::New, None) => {
                st.saved();
                Ok(Step::Done)
            }
            (Phase::Stored { .. }, Some((bytes, ttl))) if st.edits.rotate => {
                self.rotate(st, bytes, ttl).await
            }
            (Phase::Stored { .. }, keep) => self.replace(st, keep, then).await,
            (Phase::Unloaded | Phase::Failed, _) => Err(Error::Poisoned),
        }
    }

    fn locking(&self) -> Result<&dyn LockingStore, Error> {
        self.store().locking().ok_or(Error::LockUnsupported)
    }

    /// A session with no record yet: create it under a fresh id (or the id the lock was
    /// taken on).
    async fn create(
        &self,
        st: &mut State,
        bytes: Vec<u8>,
        ttl: Duration,
        then: AfterWrite,
    ) -> Result<Step, Error> {
        let engine = self.engine();
        let reserved = st
            .lock
            .as_ref()
            .and_then(|h| h.reserved.clone().map(|id| (id, h.key.clone(), h.token)));
        let (id, key, outcome) = match reserved {
            Some((id, key, token)) => {
                let outcome = self
                    .locking()?
                    .save_locked(&key, &token, None, &bytes, ttl, then)
                    .await?;
                (id, key, outcome)
            }
            None => {
                let (id, key) = engine.fresh()?;
                let outcome = self.store().create(&key, &bytes, ttl).await?;
                (id, key, outcome)
            }
        };
        match outcome {
            Outcome::Done(version) => {
                crate::meter::created();
                if let Some(held) = st.lock.as_mut().filter(|h| h.key == key) {
                    held.reserved = None;
                }
                let written = written(st, bytes, version, ttl);
                st.stored(key, Origin::Issued(id), written, then);
                Ok(Step::Done)
            }
            Outcome::LeaseLost => Err(Error::LockLost),
            // An id collision (256 random bits: practically never). Under the lock the
            // lease is on that id, so give up; otherwise try another id.
            Outcome::Conflict | Outcome::Missing if st.lock.is_some() => {
                Err(Error::Conflict { attempts: 1 })
            }
            Outcome::Conflict | Outcome::Missing => Ok(Step::Retry),
        }
    }

    /// Writes the stored record again with `keep`, or deletes it (`None`), conditional on
    /// the record this request last saw, and fenced by our lease if we hold one on it.
    async fn replace(
        &self,
        st: &mut State,
        keep: Option<(Vec<u8>, Duration)>,
        then: AfterWrite,
    ) -> Result<Step, Error> {
        let engine = self.engine();
        let Phase::Stored { key, base, .. } = &st.phase else {
            return Err(Error::Poisoned);
        };
        let lease = st.lease_on(key);
        let outcome = match (&keep, lease) {
            (Some((bytes, ttl)), Some(token)) => self
                .locking()?
                .save_locked(key, &token, Some(base), bytes, *ttl, then)
                .await?
                .map(Some),
            (Some((bytes, ttl)), None) => {
                self.store().save(key, base, bytes, *ttl).await?.map(Some)
            }
            (None, Some(token)) => self
                .locking()?
                .delete_locked(key, &token, base, then)
                .await?
                .map(|()| None),
            (None, None) => self.store().delete_if(key, base).await?.map(|()| None),
        };
        match (outcome, keep) {
            (Outcome::Done(Some(version)), Some((bytes, ttl))) => {
                crate::meter::saved();
                let written = written(st, bytes, version, ttl);
                st.rewritten(written, then);
                Ok(Step::Done)
            }
            (Outcome::Done(_), _) => {
                crate::meter::destroyed();
                if then == AfterWrite::Release && lease.is_some() {
                    st.lock = None;
                }
                st.gone(engine);
                Ok(Step::Done)
            }
            (Outcome::Conflict, _) => Ok(Step::Retry),
            // Gone before our write: a write goes into a new session; a deletion found
            // nothing left. Without a lease that is a lost race too (an `update` or
            // `take_flashes` that emptied the session must not act on what another request
            // removed first).
            (Outcome::Missing, Some(_)) => Ok(Step::Orphaned),
            (Outcome::Missing, None) if lease.is_none() => Ok(Step::Orphaned),
            (Outcome::Missing, None) => {
                st.gone(engine);
                Ok(Step::Done)
            }
            (Outcome::LeaseLost, _) => Err(Error::LockLost),
        }
    }

    /// Moves the session to a fresh id: the successor is written first (under our lease,
    /// if we hold one, so the lock moves with the session), then the old record becomes a
    /// forward, conditional on it being unchanged.
    async fn rotate(&self, st: &mut State, bytes: Vec<u8>, ttl: Duration) -> Result<Step, Error> {
        let engine = self.engine();
        let Phase::Stored { key: old, base, .. } = &st.phase else {
            return Err(Error::Poisoned);
        };
        let (id, key) = engine.fresh()?;
        let lease = match st.lease_on(old) {
            Some(token) => Some((token, self.locking()?)),
            None => None,
        };
        let created = match lease {
            Some((token, locking)) => {
                let acquired = locking
                    .acquire(&key, &token, engine.config.lock_lease)
                    .await?;
                if acquired != Acquired::Granted(None) {
                    return Err(Error::Conflict { attempts: 1 });
                }
                locking
                    .save_locked(&key, &token, None, &bytes, ttl, AfterWrite::KeepLease)
                    .await?
            }
            None => self.store().create(&key, &bytes, ttl).await?,
        };
        let version = match created {
            Outcome::Done(version) => version,
            Outcome::LeaseLost => return Err(Error::LockLost),
            Outcome::Conflict | Outcome::Missing => return Ok(Step::Retry),
        };
        let grace = engine.config.rotation_grace;
        let forward = engine.forwards().then(|| {
            record::encode_moved(&record::Forward {
                to: key.clone(),
                login: st.edits.login,
                until: crate::clock::unix_millis(st.now + grace),
            })
        });
        let retired = match (&forward, lease) {
            (Some(forward), Some((token, locking))) => locking
                .save_locked(old, &token, Some(base), forward, grace, AfterWrite::Release)
                .await
                .map(|o| o.map(|_| ())),
            (Some(forward), None) => self
                .store()
                .save(old, base, forward, grace)
                .await
                .map(|o| o.map(|_| ())),
            (None, Some((token, locking))) => {
                locking
                    .delete_locked(old, &token, base, AfterWrite::Release)
                    .await
            }
            (None, None) => self.store().delete_if(old, base).await,
        };
        let retired = match retired {
            Err(error) => {
                // The store did not say whether the old record was retired (a timeout, a
                // dropped connection). Read it back rather than guess: undoing a rotation
                // that did happen would leave a forward to nothing, and the session lost.
                let old = old.clone();
                match self.store().load_fresh(&old).await {
                    Ok(Some(now)) if forward.as_ref().is_some_and(|f| now.data == *f) => {
                        Ok(Outcome::Done(()))
                    }
                    // Not retired: the successor is taken back below.
                    Ok(_) => Err(error),
                    // Still unknown: the successor may be the session now, so it stays
                    // (unannounced, it expires with its TTL if it is not).
                    Err(_) => return Err(error.into()),
                }
            }
            done => done,
        };
        let step = match retired {
            Ok(Outcome::Done(())) => {
                crate::meter::rotated();
                if let Some(held) = st.lock.as_mut() {
                    held.key.clone_from(&key);
                }
                let written = written(st, bytes, version, ttl);
                st.stored(key, Origin::Issued(id), written, AfterWrite::KeepLease);
                return Ok(Step::Done);
            }
            Ok(Outcome::Conflict) => Ok(Step::Retry),
            Ok(Outcome::Missing) => Ok(Step::Orphaned),
            Ok(Outcome::LeaseLost) => Err(Error::LockLost),
            Err(error) => Err(error.into()),
        };
        // The successor was never announced: take it back (whatever happened to the old
        // record, the successor must not outlive it).
        let undone = async {
            self.store().delete(&key).await?;
            if let Some((token, locking)) = lease {
                locking.release(&key, &token).await?;
            }
            Ok::<(), Error>(())
        };
        match (step, undone.await) {
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
            (Ok(step), Ok(())) => Ok(step),
        }
    }
}

/// The record as this request just wrote it.
fn written(st: &State, bytes: Vec<u8>, version: Version, ttl: Duration) -> Loaded {
    Loaded {
        data: bytes,
        version,
        expires_at: Some(st.now + ttl),
    }
}
