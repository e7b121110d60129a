//! The user's sessions ("your devices"): list the live sessions of the logged-in user,
//! end one, end all but the current one, and cap how many a user may have.
//!
//! Turned on with [`Config::with_devices`](crate::Config::with_devices). Each
//! login then gets a *handle*: 128 random bits in base64url, shown to the user in place of
//! the session id. A handle names a session in the user's index and nothing else: it is not
//! a session id (it has the wrong length to be read as one) and reveals nothing about it.
//!
//! ```
//! use sessio::devices::Devices;
//! use sessio::{Config, MemoryStore, SessionManager};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = Config::default().with_devices(Devices::new().max_per_user(5));
//! let manager = SessionManager::new(MemoryStore::default(), config)?;
//!
//! // Ada logs in on a laptop, then on a phone.
//! let laptop = manager.session(std::iter::empty());
//! laptop.login(&"ada").await?;
//! let laptop_cookie = laptop.commit().await?.unwrap();
//! let phone = manager.session(std::iter::empty());
//! phone.login(&"ada").await?;
//! phone.commit().await?;
//!
//! // On the phone: two sessions, one of them this one; then "log out other devices".
//! let devices = phone.devices().await?;
//! assert_eq!(devices.len(), 2);
//! assert_eq!(devices.iter().filter(|s| s.current).count(), 1);
//! assert_eq!(phone.revoke_others().await?, 1);
//!
//! // The laptop's next request finds itself logged out.
//! let cookie = laptop_cookie.split(';').next().unwrap();
//! let laptop = manager.session([cookie.as_bytes()]);
//! assert_eq!(laptop.current_user::<String>().await?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # How it works, and what it costs
//!
//! The index of a user is one record in the session store, beside the sessions, under a key
//! derived from a hash of the user (the configured key prefix, then `users.`), holding an
//! entry per session: its store key, when it was created and last seen, its expiry and an
//! optional label ([`Login::label`](crate::auth::Login::label), e.g. the user agent). It is
//! written with the store's conditional operations, merging on conflict like a session, so
//! it holds across processes and under concurrent logins.
//!
//! - **It never outlives its sessions.** An entry expires with its session: whenever the
//!   session's expiry is extended (a save, or a read's throttled touch, see
//!   [`Config::with_touch_after`](crate::Config::with_touch_after)) its entry is too, and
//!   the record itself expires with its last entry. A logout, a clear or a revocation
//!   removes the entry; an entry whose session vanished otherwise is dropped when the list
//!   is read.
//! - **It fails closed.** A logged-in session whose entry is missing when its expiry is
//!   next extended was revoked (or its index lost): it is logged out then, never left
//!   running unlisted.
//! - **Costs.** A login writes the index once; each expiry extension of a logged-in
//!   session reads and writes it once more; listing reads every listed session once.
//!   Anonymous sessions never touch it. "Last seen" is as precise as the touch throttle.
//!   The record grows by about 150 bytes (plus the label) per session of the user and is
//!   rewritten whole, so a user with very many sessions (API clients, say) wants a
//!   [maximum](Devices::max_per_user).
//! - **Revocation** deletes the session's record, exactly like its own logout (following
//!   a rotation that raced it, see invariant I2), so it takes effect on every process at
//!   that session's next request. A request of the revoked session already in flight
//!   finishes; whatever it writes afterwards goes into a new, anonymous session.
//!   The entries leave the index first, in one conditional write that also checks that
//!   the revoking session is still listed: of two devices revoking each other at once, one
//!   wins and the other ends nothing. A login that races the revocation of the same
//!   session is a new login: like any write racing a logout, it lands in a new session as
//!   if it came after the revocation.
//! - **The maximum per user** ([`Devices::max_per_user`]): a login that takes the
//!   user past it ends the user's least recently active sessions among those logged in
//!   before it (oldest "last seen" first). Each login has a place in the user's index, and
//!   concurrent logins on any process count only up to their own place, so together they
//!   end exactly enough, never one another.
//! - **A re-login**: the same user logging in again on a session keeps its entry and
//!   handle (the same device); another user logging in on it gets a new entry in their
//!   index, written before the old one leaves the first user's. The session is listed
//!   throughout, and a revocation by the first user never ends the second user's login.
//!
//! The store must keep records until they expire: a cache that drops live records to make
//! room (Memcached) is refused when the index is configured. The memory store evicts only
//! when it reaches its byte budget; if it evicts an index, that user's sessions end at
//! their next expiry extension (fail closed), so give it room.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The options of the user's devices index; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Devices {
    pub(crate) max_per_user: Option<usize>,
}

impl Devices {
    /// An index without a maximum number of sessions per user.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max` sessions per user (at least 1): a login past it ends the user's least
    /// recently active other sessions.
    pub fn max_per_user(mut self, max: usize) -> Self {
        self.max_per_user = Some(max);
        self
    }

    /// The maximum number of sessions per user, if any.
    pub fn max(&self) -> Option<usize> {
        self.max_per_user
    }
}

/// One live session of the logged-in user, as [`Session::devices`](crate::Session::devices)
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// The session's public handle: pass it to [`Session::revoke`](crate::Session::revoke).
    /// Not a session id, and useless as a cookie.
    pub handle: String,
    /// Whether this is the session of the request that lists them.
    pub current: bool,
    /// When the user logged in on it.
    pub created: SystemTime,
    /// When it was last active (to the precision of the touch throttle).
    pub last_seen: SystemTime,
    /// The label given at login ([`Login::label`](crate::auth::Login::label)), if any.
    pub label: Option<String>,
}

/// The longest label kept, in bytes (longer ones are cut at a character boundary).
pub(crate) const MAX_LABEL: usize = 256;

/// Where a session stands in the index: its user's index record and its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub index_key: String,
    pub handle: String,
}

/// One session in a user's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The session's store key as last written.
    #[serde(rename = "k")]
    pub key: String,
    /// Created, last seen and expiry, in Unix milliseconds.
    #[serde(rename = "c")]
    pub created: u64,
    #[serde(rename = "s")]
    pub seen: u64,
    #[serde(rename = "e")]
    pub expires: u64,
    /// The login's place in the user's logins (one more than the highest live entry's when
    /// it was added): the order in which concurrent logins enforce the maximum.
    #[serde(rename = "n", default)]
    pub seq: u64,
    /// The session's write count when the key was recorded: a later refresh with an
    /// older count (a request that started before a rotation) does not move the key back.
    #[serde(rename = "w", default)]
    pub writes: u32,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Entry {
    /// Takes what `newer` knows: its key unless it is older than ours, the later of the
    /// times, its label if it has one. Whether anything changed.
    pub(crate) fn extend(&mut self, newer: &Entry) -> bool {
        let before = self.clone();
        if newer.writes.wrapping_sub(self.writes) as i32 >= 0 {
            self.key.clone_from(&newer.key);
            self.writes = newer.writes;
        }
        self.seen = self.seen.max(newer.seen);
        self.expires = self.expires.max(newer.expires);
        if newer.label.is_some() {
            self.label.clone_from(&newer.label);
        }
        *self != before
    }
}

/// A user's index record: handle → entry.
pub(crate) type Entries = BTreeMap<String, Entry>;

pub(crate) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A fresh handle: 128 bits from the OS, 22 base64url characters.
pub(crate) fn new_handle() -> Result<String, Error> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(Error::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// `label` cut to at most [`MAX_LABEL`] bytes on a character boundary.
pub(crate) fn clip_label(mut label: String) -> String {
    if label.len() > MAX_LABEL {
        let mut end = MAX_LABEL;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cut_on_a_character_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let cut = clip_label(long);
        assert!(cut.len() <= MAX_LABEL);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(clip_label("short".into()), "short");
    }

    #[test]
    fn handles_are_not_session_ids() {
        let handle = new_handle().unwrap();
        assert_eq!(handle.len(), 22);
        assert!(crate::id::SessionId::parse(&handle, crate::id::IdFormat::Native).is_none());
    }
}
