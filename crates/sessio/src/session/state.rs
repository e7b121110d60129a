//! A session's state within one request: one phase, the data, and what this request
//! changed.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::Value;

use crate::cookie::Presented;
use crate::devices::Membership;
use crate::engine::{Engine, Fetched};
use crate::id::SessionId;
use crate::record::{Data, Meta};
use crate::store::{AfterWrite, LeaseToken, Loaded};

/// Where the session's record stands.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Not read yet; the id the client sent, if any, is in [`State::presented`].
    Unloaded,
    /// No record: a fresh session (no cookie, an unknown or rotated-away id, destroyed,
    /// or gone while this request was writing).
    New,
    /// A record exists under `key`; `base` is it as last read or written.
    Stored {
        key: String,
        base: Loaded,
        origin: Origin,
    },
    /// A store error left the state unknown: nothing more is read or written.
    Failed,
}

/// How this request came to the stored record, which decides its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The id the client sent.
    Client,
    /// An id this request issued (a new session, or a rotation): its cookie is sent.
    Issued(SessionId),
    /// The successor of a session rotated while this request's write was in flight. The
    /// write lands there, but its id is never revealed to this client.
    Followed,
}

/// What this request changed.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    /// Keys set or removed, each once; their new values are in the data (absent =
    /// removed). A list rather than a hash set: a request changes a handful of keys, and
    /// a scan of a few is cheaper than hashing each one.
    pub keys: Vec<String>,
    /// Every key was removed first.
    pub cleared: bool,
    /// The expiry override or the "remember me" choice changed.
    pub meta: bool,
    /// The id is to be rotated.
    pub rotate: bool,
    /// The rotation is a login's: the forward it leaves refuses the old id's requests
    /// instead of letting them follow (see `record::Forward`).
    pub login: bool,
    /// Under the lock: each changed key's value as the lock holder saw it before changing
    /// it, so that a concurrent change of the same key is refused, never overwritten.
    pub seen: HashMap<String, Option<Value>>,
}

impl Edits {
    pub(crate) fn any(&self) -> bool {
        !self.keys.is_empty() || self.cleared || self.meta || self.rotate
    }
}

/// A login made by this request, for the user's devices index.
#[derive(Debug)]
pub(crate) struct NewLogin {
    /// The label of its entry ([`Login::label`](crate::auth::Login::label)), if any.
    pub label: Option<String>,
}

/// The lease this request holds.
#[derive(Debug)]
pub(crate) struct Held {
    pub token: LeaseToken,
    /// The key the lease is on.
    pub key: String,
    /// For a session not stored yet: the id whose key the lease was taken on.
    pub reserved: Option<SessionId>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub presented: Presented,
    pub phase: Phase,
    pub meta: Meta,
    pub data: Data,
    pub edits: Edits,
    /// A destroyed record, deleted when the request writes.
    pub doomed: Option<String>,
    pub lock: Option<Held>,
    /// This request deleted its session, or found it gone while writing: its cookie goes.
    pub ended: bool,
    /// Where the session stood in its user's devices index when it was read (with the
    /// index configured and a user logged in).
    pub indexed: Option<Membership>,
    /// A login this request made, entered in the user's devices index at commit.
    pub new_login: Option<NewLogin>,
    /// This request extended the record's expiry (a write or a touch): its index entry is
    /// extended too.
    pub extended: bool,
    /// The id the client sent was rotated away by a login: the session reads as empty,
    /// any write is refused with `Error::Superseded`, and no cookie is sent.
    pub superseded: bool,
    /// The request's clock, read when the session is first used, again after waiting for
    /// a lock, and before each write: expiry needs no finer time, and clock reads are not
    /// free.
    pub now: SystemTime,
}

impl State {
    pub(crate) fn new(presented: Presented, meta: Meta) -> Self {
        Self {
            presented,
            phase: Phase::Unloaded,
            meta,
            data: Data::new(),
            edits: Edits::default(),
            doomed: None,
            lock: None,
            ended: false,
            indexed: None,
            new_login: None,
            extended: false,
            superseded: false,
            now: SystemTime::UNIX_EPOCH,
        }
    }

    pub(crate) fn dirty(&self) -> bool {
        self.edits.any() || self.doomed.is_some()
    }

    pub(crate) fn set(&mut self, key: &str, value: Option<Value>) {
        if self.lock.is_some() && !self.edits.seen.contains_key(key) {
            self.edits
                .seen
                .insert(key.to_owned(), self.data.get(key).cloned());
        }
        match (value, self.data.get_mut(key)) {
            (Some(v), Some(slot)) => *slot = v,
            (Some(v), None) => {
                self.data.insert(key.to_owned(), v);
            }
            (None, _) => {
                self.data.remove(key);
            }
        }
        if !self.edits.keys.iter().any(|k| k == key) {
            self.edits.keys.push(key.to_owned());
        }
    }

    /// Takes a freshly read record as the session.
    pub(crate) fn adopt(&mut self, engine: &Engine, fetched: Fetched, key: String, origin: Origin) {
        self.indexed = engine.membership(&fetched.data);
        self.meta = fetched.meta;
        self.data = fetched.data;
        self.phase = Phase::Stored {
            key,
            base: fetched.loaded,
            origin,
        };
    }

    /// Replaces the view with a fresh record of the same session and re-applies this
    /// request's changes (except `skip`, which the caller recomputes).
    pub(crate) fn rebase(
        &mut self,
        fetched: Fetched,
        key: String,
        origin: Origin,
        skip: Option<&str>,
    ) {
        if let Some(skip) = skip {
            self.edits.keys.retain(|k| k != skip);
        }
        let mut mine = std::mem::replace(&mut self.data, fetched.data);
        if self.edits.meta {
            // Never extend the absolute lifetime with our own copy of the metadata.
            self.meta.created = fetched.meta.created;
            self.meta.writes = fetched.meta.writes;
            self.meta.issued = fetched.meta.issued;
        } else {
            self.meta = fetched.meta;
        }
        if self.edits.cleared {
            self.data.clear();
        }
        for key in &self.edits.keys {
            match mine.remove(key) {
                Some(v) => self.data.insert(key.clone(), v),
                None => self.data.remove(key),
            };
        }
        self.phase = Phase::Stored {
            key,
            base: fetched.loaded,
            origin,
        };
    }

    /// A key this request changed under the lock that another request changed meanwhile
    /// in `fresh` (the record as it is now), if any.
    pub(crate) fn overwritten(&self, fresh: &Fetched) -> Option<&str> {
        self.edits
            .seen
            .iter()
            .find(|(key, seen)| fresh.data.get(key.as_str()) != seen.as_ref())
            .map(|(key, _)| key.as_str())
    }

    /// The record vanished under a write of this request (destroyed by a concurrent
    /// request, or expired). The old session stays gone; what this request itself set
    /// (all but `skip`, which the caller recomputes) goes into a new session, exactly as if
    /// the request had arrived after the session ended.
    pub(crate) fn orphan(&mut self, engine: &Engine, skip: Option<&str>) {
        let mut mine = crate::record::Data::new();
        for key in &self.edits.keys {
            if Some(key.as_str()) == skip {
                continue;
            }
            if let Some(value) = self.data.remove(key) {
                mine.insert(key.clone(), value);
            }
        }
        self.gone(engine);
        self.edits.keys = mine.keys().cloned().collect();
        self.data = mine;
    }

    /// The record vanished (destroyed by a concurrent request, or expired): the session is
    /// new and empty, and this request's changes are dropped, so nothing resurrects it.
    pub(crate) fn gone(&mut self, engine: &Engine) {
        self.phase = Phase::New;
        self.data.clear();
        self.edits = Edits::default();
        self.meta = engine.new_meta();
        self.ended = true;
        self.superseded = false;
    }

    /// The store failed under this request: the session's state is unknown, and every
    /// later use answers `Error::Poisoned`.
    pub(crate) fn fail(&mut self) {
        self.phase = Phase::Failed;
    }

    /// The request has no stored session (none presented, or the presented one is not
    /// adopted): a new one is created at its first write.
    pub(crate) fn start_new(&mut self) {
        self.phase = Phase::New;
    }

    /// Where the client's id stands now: followed to a successor it was not told of, or
    /// (once the cookie is sent) its own.
    pub(crate) fn set_origin(&mut self, to: Origin) {
        if let Phase::Stored { origin, .. } = &mut self.phase {
            *origin = to;
        }
    }

    /// The stored session's origin, its phase left as new (the caller sets the next one:
    /// a rebase or an adoption); `None` if nothing was stored.
    pub(crate) fn take_origin(&mut self) -> Option<Origin> {
        match std::mem::replace(&mut self.phase, Phase::New) {
            Phase::Stored { origin, .. } => Some(origin),
            _ => None,
        }
    }

    /// A touch extended the stored record's expiry to `ttl` from now.
    pub(crate) fn touched(&mut self, ttl: std::time::Duration) {
        let now = self.now;
        if let Phase::Stored { base, .. } = &mut self.phase {
            base.expires_at = Some(now + ttl);
        }
        self.extended = true;
    }

    /// A write of every change is done under the stored session's own key: `written` is
    /// its record now.
    pub(crate) fn rewritten(&mut self, written: Loaded, then: AfterWrite) {
        if let Phase::Stored { key, origin, .. } = std::mem::replace(&mut self.phase, Phase::New) {
            self.stored(key, origin, written, then);
        }
    }

    /// A write of every change is done: `written` under `key` is the session now (with
    /// `AfterWrite::Release` our lease on it went with the write).
    pub(crate) fn stored(
        &mut self,
        key: String,
        origin: Origin,
        written: Loaded,
        then: AfterWrite,
    ) {
        if then == AfterWrite::Release && self.lock.as_ref().is_some_and(|h| h.key == key) {
            self.lock = None;
        }
        self.phase = Phase::Stored {
            key,
            base: written,
            origin,
        };
        self.extended = true;
        self.saved();
    }

    /// A write of every change is done: they are now the base.
    pub(crate) fn saved(&mut self) {
        self.edits = Edits::default();
    }

    /// The lease, if this request holds one on `key`.
    pub(crate) fn lease_on(&self, key: &str) -> Option<LeaseToken> {
        self.lock.as_ref().filter(|h| h.key == key).map(|h| h.token)
    }
}
