//! The session lock on Memcached: the lease inside the record's item (see [`crate::item`]).
//!
//! Every write under the lock is one `ms`/`md` with the CAS of the item as this process
//! last wrote it under its lease: if that CAS still matches, the item still holds our
//! lease, so the write is fenced and conditional in one command. Only when the CAS has
//! moved (a plain writer changed the record meanwhile, or the lease was taken over) does
//! the store read the item to tell a conflict from a lost lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sessio::store::{
    Acquired, AfterWrite, LeaseToken, Loaded, LockingStore, Outcome, StoreResult, Version,
};

use crate::item::{cas_of, encode, Item, Lease, LEASE_BIT};
use crate::{item_ttl, kept_changing, ttl_left, MemcachedStore, Write, Wrote, RACE_RETRIES};

/// The leases this process holds, with the CAS of the item as it last wrote it under
/// each: what lets a locked write go out as one command. Forgetting an entry only costs a
/// read; the store stays correct without it.
#[derive(Default)]
pub(crate) struct Held {
    leases: Mutex<HashMap<(String, [u8; 16]), Seen>>,
}

/// The item as this process last wrote it under a lease.
#[derive(Debug, Clone, Copy)]
struct Seen {
    lease: Lease,
    cas: u64,
    /// Whether the item holds a record besides the lease.
    record: bool,
}

/// Past this many entries, lapsed leases are swept out on the next insert.
const HELD_SWEEP_AT: usize = 1024;

impl Held {
    fn remember(&self, key: &str, seen: Seen) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() >= HELD_SWEEP_AT {
            leases.retain(|_, seen| seen.lease.live());
        }
        leases.insert((key.to_owned(), seen.lease.token), seen);
    }

    fn seen(&self, key: &str, token: &LeaseToken) -> Option<Seen> {
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.get(&(key.to_owned(), *token.as_bytes())).copied()
    }

    fn forget(&self, key: &str, token: &[u8; 16]) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.remove(&(key.to_owned(), *token));
    }
}

/// What a write under the lock does to the record.
#[derive(Clone, Copy)]
enum Change<'a> {
    Save(&'a [u8], Duration),
    Delete,
}

impl MemcachedStore {
    /// Writes `change` over the item at `cas`, which holds our `lease`; keeps the lease or
    /// drops it. `Wrote::Done` carries the version to hand out.
    async fn write_under(
        &self,
        op: &'static str,
        key: &str,
        lease: &Lease,
        cas: u64,
        change: Change<'_>,
        then: AfterWrite,
    ) -> StoreResult<Wrote> {
        let kept = (then == AfterWrite::KeepLease).then_some(lease);
        let wrote = match (change, kept) {
            (Change::Delete, None) => self.remove(op, key, cas).await?,
            (change, kept) => {
                let record = match change {
                    Change::Save(data, ttl) => Some((data, ttl)),
                    Change::Delete => None,
                };
                let (value, flags) = encode(record.map(|r| r.0), kept);
                let ttl = item_ttl(record.map(|r| r.1), kept);
                self.write(
                    op,
                    key,
                    Write {
                        value: &value,
                        flags,
                        ttl,
                        cas: Some(cas),
                    },
                )
                .await?
            }
        };
        Ok(match (wrote, kept) {
            (Wrote::Done(cas), Some(lease)) => {
                let record = matches!(change, Change::Save(..));
                let seen = Seen {
                    lease: *lease,
                    cas,
                    record,
                };
                self.inner.held.remember(key, seen);
                Wrote::Done(cas | LEASE_BIT)
            }
            (Wrote::Done(cas), None) => {
                self.inner.held.forget(key, &lease.token);
                Wrote::Done(cas)
            }
            (other, _) => other,
        })
    }

    /// A write under `token`'s lease on `key`, conditional on the record being `expected`
    /// (`None`: no record).
    async fn locked(
        &self,
        op: &'static str,
        key: &str,
        token: &LeaseToken,
        expected: Option<&Loaded>,
        change: Change<'_>,
        then: AfterWrite,
    ) -> StoreResult<Outcome<Version>> {
        let wanted = expected.map(|e| cas_of(e.version));
        // One command when the item is still as we last wrote it under our lease.
        if let Some(seen) = self.inner.held.seen(key, token) {
            if !seen.lease.live() {
                self.inner.held.forget(key, token.as_bytes());
                return Ok(Outcome::LeaseLost);
            }
            let same = match wanted {
                Some(w) => seen.record && w == seen.cas,
                None => !seen.record,
            };
            if same {
                let (lease, cas) = (seen.lease, seen.cas);
                if let Wrote::Done(v) = self.write_under(op, key, &lease, cas, change, then).await?
                {
                    return Ok(Outcome::Done(Version(v)));
                }
            }
        }
        // Otherwise read the item and tell a lost lease from a conflict.
        for _ in 0..RACE_RETRIES {
            let item = self.item(op, key).await?;
            let Some(lease) = item
                .as_ref()
                .and_then(Item::live_lease)
                .filter(|l| l.held_by(token))
            else {
                self.inner.held.forget(key, token.as_bytes());
                return Ok(Outcome::LeaseLost);
            };
            let Some(item) = item else {
                unreachable!("a lease was read from the item");
            };
            match (wanted, &item.record) {
                (None, Some(_)) => return Ok(Outcome::Conflict),
                (Some(_), None) => return Ok(Outcome::Missing),
                (Some(w), Some(_)) if w != item.cas => return Ok(Outcome::Conflict),
                _ => {}
            }
            match self
                .write_under(op, key, &lease, item.cas, change, then)
                .await?
            {
                Wrote::Done(v) => return Ok(Outcome::Done(Version(v))),
                Wrote::Changed | Wrote::Gone => {}
            }
        }
        Err(kept_changing(op))
    }
}

#[async_trait]
impl LockingStore for MemcachedStore {
    async fn acquire(
        &self,
        key: &str,
        token: &LeaseToken,
        lease: Duration,
    ) -> StoreResult<Acquired> {
        for _ in 0..RACE_RETRIES {
            let item = self.item("lock", key).await?;
            if item
                .as_ref()
                .and_then(Item::live_lease)
                .is_some_and(|l| l.token != *token.as_bytes())
            {
                return Ok(Acquired::Held);
            }
            let ours = Lease::new(token, lease);
            // Rewriting the item moves its CAS: a write prepared under an earlier lease,
            // even one whose holder has not noticed that it lapsed, can no longer land.
            let record = item.as_ref().and_then(|i| i.record.as_deref());
            let (value, flags) = encode(record, Some(&ours));
            let ttl = item_ttl(item.as_ref().map(ttl_left), Some(&ours));
            let cas = item.as_ref().map(|i| i.cas);
            match self
                .write(
                    "lock",
                    key,
                    Write {
                        value: &value,
                        flags,
                        ttl,
                        cas,
                    },
                )
                .await?
            {
                Wrote::Done(cas) => {
                    let seen = Seen {
                        lease: ours,
                        cas,
                        record: record.is_some(),
                    };
                    self.inner.held.remember(key, seen);
                    let expires_at = item
                        .as_ref()
                        .and_then(|i| i.ttl_left)
                        .map(|t| SystemTime::now() + Duration::from_secs(t + 1));
                    let loaded = record.map(|data| Loaded {
                        data: data.to_vec(),
                        version: Version(cas | LEASE_BIT),
                        expires_at,
                    });
                    return Ok(Acquired::Granted(loaded));
                }
                Wrote::Changed | Wrote::Gone => {}
            }
        }
        Err(kept_changing("lock"))
    }

    async fn save_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: Option<&Loaded>,
        data: &[u8],
        ttl: Duration,
        then: AfterWrite,
    ) -> StoreResult<Outcome<Version>> {
        let change = Change::Save(data, ttl);
        self.locked("save under lock", key, token, expected, change, then)
            .await
    }

    async fn delete_locked(
        &self,
        key: &str,
        token: &LeaseToken,
        expected: &Loaded,
        then: AfterWrite,
    ) -> StoreResult<Outcome<()>> {
        Ok(self
            .locked(
                "delete under lock",
                key,
                token,
                Some(expected),
                Change::Delete,
                then,
            )
            .await?
            .map(|_| ()))
    }

    async fn release(&self, key: &str, token: &LeaseToken) -> StoreResult<bool> {
        self.inner.held.forget(key, token.as_bytes());
        for _ in 0..RACE_RETRIES {
            let Some(item) = self.item("unlock", key).await? else {
                return Ok(false);
            };
            if !item.live_lease().is_some_and(|l| l.held_by(token)) {
                return Ok(false);
            }
            let wrote = match &item.record {
                Some(record) => {
                    let ttl = ttl_left(&item);
                    let w = Write {
                        value: record,
                        flags: crate::item::PLAIN,
                        ttl,
                        cas: Some(item.cas),
                    };
                    self.write("unlock", key, w).await?
                }
                None => self.remove("unlock", key, item.cas).await?,
            };
            if let Wrote::Done(_) = wrote {
                return Ok(true);
            }
        }
        Err(kept_changing("unlock"))
    }
}
