//! The store writes of the user's devices index (see [`crate::devices`]): reading a user's
//! index, and changing it conditionally, merged with concurrent changes. The types and
//! helpers that are not store writes live in `crate::devices`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::retry::Retry;
use super::{Engine, View};
use crate::clock::unix_millis as millis;
use crate::devices::{Entries, Membership};
use crate::error::Error;
use crate::keys::{HANDLE_KEY, USER_KEY};
use crate::record::Data;
use crate::store::{Loaded, Outcome};

impl Engine {
    /// The store key of `user`'s index: the key prefix, `users.`, and a hash of the user's
    /// JSON (a session key is base64url alone, so the two never meet).
    pub(crate) fn index_key(&self, user: &Value) -> String {
        let digest = Sha256::digest(user.to_string().as_bytes());
        format!(
            "{}users.{}",
            self.config.key_prefix,
            URL_SAFE_NO_PAD.encode(digest)
        )
    }

    /// Where a session holding `data` stands in the index: its user's index and its
    /// handle. `None` with the index off, or when nobody is logged in on it.
    pub(crate) fn membership(&self, data: &Data) -> Option<Membership> {
        self.config.devices.as_ref()?;
        let user = data.get(USER_KEY)?;
        let handle = data.get(HANDLE_KEY)?.as_str()?;
        Some(Membership {
            index_key: self.index_key(user),
            handle: handle.to_owned(),
        })
    }

    /// Removes the entries of sessions that ended.
    pub(crate) async fn forget(&self, ended: &[Membership]) -> Result<(), Error> {
        for member in ended {
            self.change_index(&member.index_key, |entries| {
                (entries.remove(&member.handle).is_some(), ())
            })
            .await?;
        }
        Ok(())
    }

    /// Reads `user`'s index as it is now; expired entries are left out.
    pub(crate) async fn read_index(&self, index_key: &str) -> Result<Entries, Error> {
        let loaded = self.store.load_fresh(index_key).await?;
        let mut entries = decode(loaded.as_ref());
        let now = millis(self.now());
        entries.retain(|_, e| e.expires > now);
        Ok(entries)
    }

    /// The entries of the index whose sessions still exist (each is read once, following
    /// a rotation in flight); entries of vanished sessions are removed on the way.
    pub(crate) async fn live_entries(&self, index_key: &str) -> Result<Entries, Error> {
        let mut entries = self.read_index(index_key).await?;
        let now = self.now();
        let mut dead = Vec::new();
        for (handle, entry) in &entries {
            let loaded = self.store.load_fresh(&entry.key).await?;
            if let View::Gone = self.view(loaded, now) {
                dead.push((handle.clone(), entry.key.clone()));
            }
        }
        if !dead.is_empty() {
            entries.retain(|handle, _| !dead.iter().any(|(h, _)| h == handle));
            self.change_index(index_key, |entries| {
                let before = entries.len();
                // Only as it was checked: an entry refreshed meanwhile stays.
                entries.retain(|h, e| !dead.iter().any(|(dh, dk)| dh == h && *dk == e.key));
                (entries.len() != before, ())
            })
            .await?;
        }
        Ok(entries)
    }

    /// Changes an index with `change` (which may run more than once, on fresh entries each
    /// time, and says whether it changed anything) and writes it back conditionally,
    /// merging with concurrent changes. Returns what the last run of `change` returned.
    pub(crate) async fn change_index<R>(
        &self,
        index_key: &str,
        mut change: impl FnMut(&mut Entries) -> (bool, R),
    ) -> Result<R, Error> {
        let mut retry = Retry::new(self.config.max_retries);
        loop {
            let loaded = self.store.load_fresh(index_key).await?;
            let mut entries = decode(loaded.as_ref());
            let now = millis(self.now());
            let before = entries.len();
            entries.retain(|_, e| e.expires > now);
            let (changed, result) = change(&mut entries);
            if !changed && entries.len() == before {
                return Ok(result);
            }
            let last = entries.values().map(|e| e.expires).max().unwrap_or(0);
            let ttl = Duration::from_millis(last.saturating_sub(now).max(1000));
            let bytes = serde_json::to_vec(&entries).expect("index entries always serialize");
            let outcome = match (&loaded, entries.is_empty()) {
                (None, true) => return Ok(result),
                (None, false) => self.store.create(index_key, &bytes, ttl).await?.map(|_| ()),
                (Some(old), true) => self.store.delete_if(index_key, old).await?,
                (Some(old), false) => self
                    .store
                    .save(index_key, old, &bytes, ttl)
                    .await?
                    .map(|_| ()),
            };
            match outcome {
                Outcome::Done(()) => return Ok(result),
                // Changed or vanished meanwhile: read it again.
                Outcome::Conflict | Outcome::Missing | Outcome::LeaseLost => retry.lost().await?,
            }
        }
    }
}

/// The entries of an index record; an unreadable one reads as empty (with an error in the
/// log), which ends its user's sessions at their next extension: fail closed.
fn decode(loaded: Option<&Loaded>) -> Entries {
    let Some(loaded) = loaded else {
        return Entries::new();
    };
    match serde_json::from_slice(&loaded.data) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::error!(%error, "a user's devices index cannot be read; it is rebuilt empty, and the sessions it listed end at their next request that extends them");
            Entries::new()
        }
    }
}
