//! The cookie store's side of one request: the session the browser carried, opened lazily
//! and kept in a store of its own, so that the engine's one write path (merge, rotation,
//! logout, `update`) runs unchanged. At the commit, the record the session ended on is
//! sealed into the response's cookies.
//!
//! Cookies: a session that fits is `name=<sealed>`; a larger one is `name=chunks-<n>` plus
//! `name.0` … `name.<n-1>` holding the sealed text in order. Chunks the browser holds that
//! the new value does not use are expired in the same response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::cookie::{unquote, CookieJar};
use crate::error::Error;
use crate::seal::Sealer;
use crate::store::{Loaded, Outcome, Store, StoreResult, Version};

/// The most chunks a cookie store may be configured with.
pub(crate) const MAX_CHUNKS: usize = 32;
/// What a browser keeps of one cookie at least: name, value and attributes together
/// (RFC 6265, section 6.1).
const COOKIE_LIMIT: usize = 4096;
const CHUNKS_PREFIX: &str = "chunks-";
/// The most copies of the main cookie tried (a browser sends one per matching domain and
/// path).
const MAX_COPIES: usize = 4;

/// What every request of one cookie-store manager shares.
pub(crate) struct Sealing {
    pub sealer: Sealer,
    pub max_chunks: usize,
}

/// One request's records: the carried session, and whatever the engine writes.
pub(crate) struct Carried {
    sealing: Arc<Sealing>,
    clock: SharedClock,
    idle: Duration,
    name: String,
    /// The store key the carried session is read under.
    key: String,
    /// The sealed values the browser sent under the main name (chunks joined), in order:
    /// the first that opens is the session (a bad copy, say one a sibling domain set,
    /// does not hide a good one).
    values: Vec<String>,
    /// The names of the session cookies the browser sent (the main one and chunks).
    sent: Vec<String>,
    records: Mutex<Records>,
}

#[derive(Default)]
struct Records {
    opened: bool,
    map: HashMap<String, Entry>,
    versions: u64,
    /// Something was written, touched or deleted: the cookies are sent again.
    wrote: bool,
}

struct Entry {
    data: Vec<u8>,
    version: u64,
    expires_at: SystemTime,
}

impl Carried {
    /// The session cookies among `headers`: the main cookie `name` and its chunks. Never
    /// fails: anything malformed is a session that does not open.
    pub(crate) fn from_headers<'a>(
        headers: impl IntoIterator<Item = &'a [u8]>,
        name: &str,
        key: String,
        sealing: Arc<Sealing>,
        clock: SharedClock,
        idle: Duration,
    ) -> (Self, bool) {
        let mut mains: Vec<Option<&'a str>> = Vec::new();
        let mut chunks: Vec<Option<&'a str>> = Vec::new();
        let mut sent = Vec::new();
        for header in headers {
            for pair in header.split(|&b| b == b';') {
                let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                    continue;
                };
                let Ok(cookie) = std::str::from_utf8(pair[..eq].trim_ascii()) else {
                    continue;
                };
                // RFC 6265 allows the value in double quotes (Python's http.cookies adds
                // them around values with `=`, such as a Fernet token's padding).
                let value = std::str::from_utf8(unquote(pair[eq + 1..].trim_ascii())).ok();
                if cookie == name {
                    if mains.is_empty() {
                        sent.push(cookie.to_owned());
                    }
                    if mains.len() < MAX_COPIES {
                        mains.push(value);
                    }
                    continue;
                }
                let Some(index) = cookie
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .and_then(|rest| {
                        let i = rest.parse::<usize>().ok()?;
                        (i < MAX_CHUNKS && i.to_string() == rest).then_some(i)
                    })
                else {
                    continue;
                };
                if chunks.len() <= index {
                    chunks.resize(index + 1, None);
                }
                if chunks[index].is_none() {
                    sent.push(cookie.to_owned());
                    chunks[index] = value.or(Some(""));
                }
            }
        }
        let values = mains
            .iter()
            .flatten()
            .filter_map(|main| match main.strip_prefix(CHUNKS_PREFIX) {
                Some(n) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| (1..=sealing.max_chunks).contains(&n))
                    .and_then(|n| {
                        chunks
                            .get(..n)?
                            .iter()
                            .copied()
                            .collect::<Option<Vec<&str>>>()
                    })
                    .map(|parts| parts.concat()),
                None => Some((*main).to_owned()),
            })
            .collect();
        let presented = !mains.is_empty();
        let carried = Self {
            sealing,
            clock,
            idle,
            name: name.to_owned(),
            key,
            values,
            sent,
            records: Mutex::new(Records::default()),
        };
        (carried, presented)
    }

    /// A store with nothing in it, for `SessionManager::store` of a cookie-store manager.
    #[cfg(feature = "cookie-store")]
    pub(crate) fn empty(sealing: Arc<Sealing>, config: &crate::config::Config) -> Self {
        Self::from_headers(
            std::iter::empty(),
            &config.cookie_name(),
            String::new(),
            sealing,
            config.clock.clone(),
            config.idle_timeout,
        )
        .0
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if !records.opened {
            records.opened = true;
            let now = self.clock.now();
            let opened = self
                .values
                .iter()
                .find_map(|v| self.sealing.sealer.open(&self.name, v, now, self.idle));
            if let Some(opened) = opened {
                records.versions += 1;
                let version = records.versions;
                records.map.insert(
                    self.key.clone(),
                    Entry {
                        data: opened.record,
                        version,
                        expires_at: opened.expires_at,
                    },
                );
            }
        }
        records
    }

    /// The `Set-Cookie` values that carry the session to the browser after this request:
    /// the record under `live` sealed (persistent for `max_age` if given), or removals if
    /// the session ended; none if nothing was written.
    pub(crate) fn cookies(
        &self,
        jar: &CookieJar,
        live: Option<&str>,
        max_age: Option<Duration>,
    ) -> Result<Vec<String>, Error> {
        let mut records = self.records();
        if !records.wrote {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let mut out = Vec::new();
        let mut used = 0;
        if let Some(entry) = live.and_then(|key| records.map.get(key)) {
            let sealed =
                self.sealing
                    .sealer
                    .seal(&self.name, &entry.data, entry.expires_at, now)?;
            let whole = jar.issue_value(&self.name, &sealed, max_age);
            if whole.len() <= COOKIE_LIMIT {
                out.push(whole);
            } else {
                let chunk_name = |i: usize| format!("{}.{i}", self.name);
                let widest = chunk_name(MAX_CHUNKS - 1);
                let room = COOKIE_LIMIT.saturating_sub(jar.issue_value(&widest, "", max_age).len());
                let n = sealed.len().div_ceil(room.max(1));
                if n > self.sealing.max_chunks {
                    return Err(Error::CookieTooLarge {
                        size: sealed.len(),
                        max: self.sealing.max_chunks * room,
                    });
                }
                out.push(jar.issue_value(&self.name, &format!("{CHUNKS_PREFIX}{n}"), max_age));
                // The sealed text is base64url: ASCII, so any byte offset is a boundary.
                for (i, part) in sealed.as_bytes().chunks(room).enumerate() {
                    let part = std::str::from_utf8(part).unwrap_or_default();
                    out.push(jar.issue_value(&chunk_name(i), part, max_age));
                }
                used = n;
            }
        }
        let main_written = !out.is_empty();
        for sent in &self.sent {
            let keep = if *sent == self.name {
                main_written
            } else {
                sent[self.name.len() + 1..]
                    .parse::<usize>()
                    .is_ok_and(|i| i < used)
            };
            if !keep {
                out.push(jar.removal_named(sent));
            }
        }
        records.wrote = false;
        Ok(out)
    }
}

#[async_trait]
impl Store for Carried {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        let records = self.records();
        Ok(records.map.get(key).map(|e| Loaded {
            data: e.data.clone(),
            version: Version(e.version),
            expires_at: Some(e.expires_at),
        }))
    }

    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        let expires_at = self.clock.now() + ttl;
        let mut records = self.records();
        if records.map.contains_key(key) {
            return Ok(Outcome::Conflict);
        }
        records.versions += 1;
        let version = records.versions;
        records.wrote = true;
        records.map.insert(
            key.to_owned(),
            Entry {
                data: data.to_vec(),
                version,
                expires_at,
            },
        );
        Ok(Outcome::Done(Version(version)))
    }

    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        let expires_at = self.clock.now() + ttl;
        let mut records = self.records();
        records.versions += 1;
        let version = records.versions;
        let outcome = match records.map.get_mut(key) {
            None => return Ok(Outcome::Missing),
            Some(e) if e.version != expected.version.0 => return Ok(Outcome::Conflict),
            Some(e) => {
                *e = Entry {
                    data: data.to_vec(),
                    version,
                    expires_at,
                };
                Outcome::Done(Version(version))
            }
        };
        records.wrote = true;
        Ok(outcome)
    }

    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        let mut records = self.records();
        match records.map.get(key) {
            None => Ok(Outcome::Missing),
            Some(e) if e.version != expected.version.0 => Ok(Outcome::Conflict),
            Some(_) => {
                records.map.remove(key);
                records.wrote = true;
                Ok(Outcome::Done(()))
            }
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let mut records = self.records();
        records.map.remove(key);
        records.wrote = true;
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let expires_at = self.clock.now() + ttl;
        let mut records = self.records();
        let Some(entry) = records.map.get_mut(key) else {
            return Ok(false);
        };
        entry.expires_at = expires_at;
        records.wrote = true;
        Ok(true)
    }
}
