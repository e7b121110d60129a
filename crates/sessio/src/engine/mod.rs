//! What every session of one manager shares: the store, the configuration and what is
//! derived from it once (expiry policy, cookie jar, record format), and the store writes
//! that are no single session's: the devices index (`devices`), and the retry rule of
//! every conditional write (`retry`).

mod devices;
pub(crate) mod retry;

use std::sync::Arc;
use std::time::SystemTime;

use crate::carried::Sealing;
use crate::config::{Compat, Config};
use crate::cookie::CookieJar;
use crate::error::Error;
use crate::id::{IdFormat, Ids, SessionId};
use crate::policy::Policy;
use crate::record::{self, Data, Format, Forward, Meta, Record};
use crate::store::{Loaded, Store};

pub(crate) struct Engine {
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub policy: Policy,
    pub jar: CookieJar,
    pub format: Format,
    pub ids: Ids,
    /// The store serves reads from a cache in this process, so a cookie of its own
    /// (`cookie::Stamp`) carries the record's write count and a newer one in the cookie forces a fresh read
    /// (read-your-writes across processes). Not in the compat format (no room for it).
    pub counts_writes: bool,
    /// The cookie store's keys: the sessions travel in the cookies, each request keeping
    /// its own in a store of its own (see `carried`).
    pub sealing: Option<Arc<Sealing>>,
    /// With the cookie store: the id (and its store key) that every request's carried
    /// session is read under in its request-local store.
    pub carried_key: Option<(SessionId, String)>,
}

/// A record read from the store, as the engine sees it.
pub(crate) enum View {
    /// A live session.
    Live(Fetched),
    /// A rotated-away session: where it went, and whether a login moved it.
    Moved(Forward),
    /// No session: absent, expired, or unreadable.
    Gone,
}

/// A live, decoded record.
pub(crate) struct Fetched {
    pub loaded: Loaded,
    pub meta: Meta,
    pub data: Data,
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: Config,
        sealing: Option<Arc<Sealing>>,
    ) -> Result<Self, Error> {
        crate::meter::register();
        let compat = config.compat.is_some();
        let format = if compat {
            Format::JsonOnly
        } else {
            Format::Native
        };
        Ok(Self {
            counts_writes: !compat && store.serves_from_cache(),
            store: Arc::new(crate::observe::Observed::new(store)),
            policy: Policy {
                idle: config.idle_timeout,
                absolute: config.absolute_timeout,
                touch_after: config.touch_after,
                keeps_created: !compat,
            },
            jar: CookieJar::new(&config),
            format,
            ids: match (&config.id_generator, config.compat) {
                (Some(generator), None) => Ids::Custom(generator.clone()),
                (_, Some(Compat::SanicSession)) => Ids::Builtin(IdFormat::NativeOrUuidHex),
                _ => Ids::Builtin(IdFormat::Native),
            },
            carried_key: match sealing {
                Some(_) => {
                    let id = SessionId::generate()?;
                    let key = id.store_key(&config.key_prefix, config.hashed_keys);
                    Some((id, key))
                }
                None => None,
            },
            sealing,
            config,
        })
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.config.clock.now()
    }

    /// The store key of `id`.
    pub(crate) fn key(&self, id: &SessionId) -> String {
        id.store_key(&self.config.key_prefix, self.config.hashed_keys)
    }

    /// The tag that ties a write count to the record under `key` (see `cookie::Stamp`):
    /// with hashed keys the key already ends in a SHA-256, so its last 8 characters (48
    /// bits) serve, with no hashing on the request's path; otherwise 48 bits of the key's
    /// SHA-256.
    pub(crate) fn tag(&self, key: &str) -> crate::cookie::Tag {
        key.len()
            .checked_sub(8)
            .filter(|_| self.config.hashed_keys)
            .and_then(|start| key.get(start..))
            .and_then(crate::cookie::Tag::parse)
            .unwrap_or_else(|| crate::cookie::tag(key))
    }

    /// A fresh id and its store key.
    pub(crate) fn fresh(&self) -> Result<(SessionId, String), Error> {
        let id = self.ids.generate()?;
        let key = self.key(&id);
        Ok((id, key))
    }

    /// Metadata of a session not stored yet; its creation time is set when first saved.
    pub(crate) fn new_meta(&self) -> Meta {
        Meta {
            created: 0,
            writes: 0,
            ttl_override: None,
            browser_cookie: self.config.session_cookie,
            issued: 0,
        }
    }

    /// Whether rotated-away records leave a forward (not in the compat format, whose
    /// records another implementation reads).
    pub(crate) fn forwards(&self) -> bool {
        self.format == Format::Native
    }

    pub(crate) fn encode(&self, meta: &Meta, data: &Data) -> Result<Vec<u8>, Error> {
        let bytes = record::encode(self.format, self.config.codec, meta, data);
        if bytes.len() > self.config.max_size {
            return Err(Error::TooLarge {
                size: bytes.len(),
                max: self.config.max_size,
            });
        }
        Ok(bytes)
    }

    /// Decodes and checks a loaded record: unexpired (idle and absolute) and readable.
    pub(crate) fn view(&self, loaded: Option<Loaded>, now: SystemTime) -> View {
        let Some(loaded) = loaded else {
            return View::Gone;
        };
        if loaded.expires_at.is_some_and(|e| e <= now) {
            return View::Gone;
        }
        match record::decode_record(self.format, &loaded.data) {
            // The engine, not the store's TTL, ends a forward (see `Forward::until`).
            Ok(Record::Moved(forward))
                if forward.until != 0 && forward.until <= crate::clock::unix_millis(now) =>
            {
                View::Gone
            }
            Ok(Record::Moved(forward)) => View::Moved(forward),
            Ok(Record::Live(mut meta, data)) => {
                if self.format == Format::JsonOnly {
                    meta.browser_cookie = self.config.session_cookie;
                }
                if self.policy.expired(&meta, loaded.expires_at, now) {
                    return View::Gone;
                }
                View::Live(Fetched { loaded, meta, data })
            }
            Err(error) => {
                tracing::error!(%error, "a stored session cannot be read; the client gets a fresh session and the record is left in place for inspection");
                View::Gone
            }
        }
    }
}
