//! What one memcached item under a session key holds: the record, the lease, or both.
//!
//! The lease lives inside the record's item, so that one CAS checks both: a write under
//! the lock is a single `ms … C<cas>` against the item as the holder last saw it, and
//! taking the lock rewrites the item, which moves its CAS and fences every write prepared
//! under an earlier lease. Memcached's client flags (`F`) say which of three shapes the
//! value has:
//!
//! | flags | value | meaning |
//! |---|---|---|
//! | 0 | the record's bytes | a record, unlocked (what every other client writes) |
//! | 1 | lease (24 bytes), then the record's bytes | a record under a lease |
//! | 2 | lease (24 bytes) | a lease on a key with no record yet (or no longer) |
//!
//! A lease is the holder's 16-byte token and its end in Unix milliseconds (8 bytes, big
//! endian), judged by the reading process's clock: memcached's own clock ticks in whole
//! seconds and would end a 1 s lease after anything from 0 to 1 s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::MetaValue;
use sessio::store::{LeaseToken, Loaded, StoreError, Version};

/// Client flags of an unlocked record.
pub(crate) const PLAIN: u32 = 0;
/// Client flags of a record under a lease.
pub(crate) const LEASED: u32 = 1;
/// Client flags of a lease with no record.
pub(crate) const LEASE_ONLY: u32 = 2;

const LEASE_LEN: usize = 24;

/// Set in a [`Version`] this store hands out when the item carried a live lease: a plain
/// write must then keep that lease, which takes a read first. Memcached's CAS counter
/// would need 2^63 writes to reach it.
pub(crate) const LEASE_BIT: u64 = 1 << 63;

/// A lease as kept in an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) token: [u8; 16],
    pub(crate) until_ms: u64,
}

impl Lease {
    /// A lease for `token` lasting `lease` from now.
    pub(crate) fn new(token: &LeaseToken, lease: Duration) -> Self {
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        Self {
            token: *token.as_bytes(),
            until_ms: now_ms().saturating_add(lease_ms),
        }
    }

    pub(crate) fn live(&self) -> bool {
        self.until_ms > now_ms()
    }

    pub(crate) fn held_by(&self, token: &LeaseToken) -> bool {
        self.live() && self.token == *token.as_bytes()
    }

    /// How long the lease has left (zero once lapsed).
    pub(crate) fn left(&self) -> Duration {
        Duration::from_millis(self.until_ms.saturating_sub(now_ms()))
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.token);
        out.extend_from_slice(&self.until_ms.to_be_bytes());
    }
}

/// The contents of an item, decoded.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The record's bytes, if there is a record.
    pub(crate) record: Option<Vec<u8>>,
    /// The lease, live or lapsed, if one was written.
    pub(crate) lease: Option<Lease>,
    /// The item's CAS.
    pub(crate) cas: u64,
    /// Whole seconds memcached gives the item still (`None`: no expiry, or not asked).
    pub(crate) ttl_left: Option<u64>,
}

impl Item {
    /// Decodes an `mg … v c f [t]` answer.
    pub(crate) fn decode(value: MetaValue) -> Result<Self, StoreError> {
        let flags = value.flags.unwrap_or(PLAIN);
        let data = value.data.unwrap_or_default();
        let (lease, record) = match flags {
            PLAIN => (None, Some(data)),
            LEASED | LEASE_ONLY => {
                if data.len() < LEASE_LEN {
                    return Err(StoreError::protocol(format!(
                        "a memcached item with flags {flags} is shorter than a lease \
                         ({} bytes); another client wrote this key",
                        data.len()
                    )));
                }
                let mut token = [0u8; 16];
                token.copy_from_slice(&data[..16]);
                let mut until = [0u8; 8];
                until.copy_from_slice(&data[16..LEASE_LEN]);
                let lease = Lease {
                    token,
                    until_ms: u64::from_be_bytes(until),
                };
                let record = (flags == LEASED).then(|| data[LEASE_LEN..].to_vec());
                (Some(lease), record)
            }
            other => {
                return Err(StoreError::protocol(format!(
                    "a memcached item has client flags {other}, which sessio never writes; \
                     another client wrote this key"
                )))
            }
        };
        Ok(Self {
            record,
            lease,
            cas: value.cas.unwrap_or(0),
            ttl_left: value.ttl_remaining.and_then(|t| u64::try_from(t).ok()),
        })
    }

    /// The lease, if it is live.
    pub(crate) fn live_lease(&self) -> Option<Lease> {
        self.lease.filter(Lease::live)
    }

    /// The record as the engine sees it, with a version that tells later plain writes
    /// whether a live lease must be kept.
    pub(crate) fn loaded(self) -> Option<Loaded> {
        let bit = if self.live_lease().is_some() {
            LEASE_BIT
        } else {
            0
        };
        let expires_at = self
            .ttl_left
            // Memcached counts whole seconds; the item lives until the end of the last one.
            .map(|t| SystemTime::now() + Duration::from_secs(t + 1));
        Some(Loaded {
            data: self.record?,
            version: Version(self.cas | bit),
            expires_at,
        })
    }
}

/// The CAS inside a version this store handed out.
pub(crate) fn cas_of(version: Version) -> u64 {
    version.0 & !LEASE_BIT
}

/// The value and client flags for a record `record` (or none) under `lease` (or none).
pub(crate) fn encode(record: Option<&[u8]>, lease: Option<&Lease>) -> (Vec<u8>, u32) {
    match (record, lease) {
        (Some(record), None) => (record.to_vec(), PLAIN),
        (record, Some(lease)) => {
            let mut out = Vec::with_capacity(LEASE_LEN + record.map_or(0, <[u8]>::len));
            lease.encode_into(&mut out);
            if let Some(record) = record {
                out.extend_from_slice(record);
                (out, LEASED)
            } else {
                (out, LEASE_ONLY)
            }
        }
        (None, None) => (Vec::new(), PLAIN),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(flags: u32, data: Vec<u8>) -> MetaValue {
        MetaValue {
            key: None,
            cas: Some(7),
            flags: Some(flags),
            data: Some(data),
            status: None,
            hit_before: None,
            last_accessed: None,
            ttl_remaining: Some(30),
            size: None,
            opaque_token: None,
            is_stale: None,
            is_recache_winner: None,
        }
    }

    #[test]
    fn the_three_shapes_round_trip() {
        let token = LeaseToken::generate().unwrap();
        let lease = Lease::new(&token, Duration::from_secs(5));
        for (record, lease) in [
            (Some(&b"data"[..]), None),
            (Some(&b"data"[..]), Some(lease)),
            (None, Some(lease)),
            (Some(&b""[..]), Some(lease)),
        ] {
            let (bytes, flags) = encode(record, lease.as_ref());
            let item = Item::decode(value(flags, bytes)).unwrap();
            assert_eq!(item.record.as_deref(), record);
            assert_eq!(item.lease, lease);
            assert_eq!(item.cas, 7);
        }
    }

    #[test]
    fn a_live_lease_marks_the_version_and_a_lapsed_one_does_not() {
        let token = LeaseToken::generate().unwrap();
        let live = Lease::new(&token, Duration::from_secs(5));
        let (bytes, flags) = encode(Some(b"r"), Some(&live));
        let loaded = Item::decode(value(flags, bytes)).unwrap().loaded().unwrap();
        assert_eq!(loaded.version.0, 7 | LEASE_BIT);
        assert_eq!(cas_of(loaded.version), 7);
        assert_eq!(loaded.data, b"r");
        let lapsed = Lease {
            until_ms: now_ms() - 1,
            ..live
        };
        let (bytes, flags) = encode(Some(b"r"), Some(&lapsed));
        let loaded = Item::decode(value(flags, bytes)).unwrap().loaded().unwrap();
        assert_eq!(loaded.version.0, 7);
        let (bytes, flags) = encode(None, Some(&live));
        assert!(Item::decode(value(flags, bytes))
            .unwrap()
            .loaded()
            .is_none());
    }

    #[test]
    fn foreign_items_are_errors_not_records() {
        assert!(Item::decode(value(LEASED, vec![1, 2, 3])).is_err());
        assert!(Item::decode(value(9, b"x".to_vec())).is_err());
    }
}
