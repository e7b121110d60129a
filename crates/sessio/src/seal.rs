//! Sealing a session record into a cookie value, and opening one again.
//!
//! Two formats (the crate's `cookie-store` feature brings both; without it there is no
//! sealer, and this type has no value):
//!
//! - **Native**: `base64url(0x02 ‖ nonce[12] ‖ AES-256-GCM-SIV(expiry ‖ record))`, with
//!   the cookie's name as associated data, so a value sealed for one cookie does not open
//!   under another. The expiry (Unix milliseconds, big-endian) travels inside the seal:
//!   the browser's `Max-Age` is never trusted.
//! - **Fernet** (the sanic-cookies compatibility mode): the record is the bare JSON object
//!   and the token's own timestamp plus the idle timeout is its expiry, as Python's
//!   `Fernet.decrypt(token, ttl)` checks it.

use std::time::{Duration, SystemTime};

use crate::error::Error;

/// The keys that seal and open cookies: the first seals, every one opens.
#[derive(Clone)]
pub(crate) enum Sealer {
    /// AES-256-GCM-SIV keys.
    #[cfg(feature = "cookie-store")]
    Aead(Vec<aes_gcm_siv::Aes256GcmSiv>),
    /// Fernet keys.
    #[cfg(feature = "cookie-store")]
    Fernet(Vec<fernet::Fernet>),
}

/// A cookie value that opened.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The record's expiry, from inside the seal.
    pub expires_at: SystemTime,
    /// The record's bytes.
    pub record: Vec<u8>,
}

#[cfg(feature = "cookie-store")]
const VERSION: u8 = 2;
#[cfg(feature = "cookie-store")]
const NONCE: usize = 12;

impl Sealer {
    /// Whether this is the Fernet format.
    #[cfg(feature = "cookie-store")]
    pub(crate) fn is_fernet(&self) -> bool {
        match *self {
            #[cfg(feature = "cookie-store")]
            Self::Fernet(_) => true,
            #[cfg(feature = "cookie-store")]
            Self::Aead(_) => false,
        }
    }

    /// Seals `record` (expiring at `expires_at`) for the cookie `name`, with the first key.
    #[allow(unused_variables)]
    pub(crate) fn seal(
        &self,
        name: &str,
        record: &[u8],
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<String, Error> {
        match *self {
            #[cfg(feature = "cookie-store")]
            Self::Aead(ref keys) => {
                use aes_gcm_siv::aead::{Aead, Payload};
                use base64::engine::general_purpose::URL_SAFE_NO_PAD;
                use base64::Engine as _;
                // 96 random bits per seal, from the thread's CSPRNG (seeded and reseeded
                // from the OS), so a seal costs no system call. GCM-SIV derives a key per
                // nonce and keeps its guarantees if two random nonces ever collide.
                let mut nonce = [0u8; NONCE];
                rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
                let mut plain = Vec::with_capacity(8 + record.len());
                plain.extend_from_slice(&crate::clock::unix_millis(expires_at).to_be_bytes());
                plain.extend_from_slice(record);
                let sealed = keys[0]
                    .encrypt(
                        aes_gcm_siv::Nonce::from_slice(&nonce),
                        Payload {
                            msg: &plain,
                            aad: name.as_bytes(),
                        },
                    )
                    .map_err(|_| Error::Poisoned)?;
                let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
                out.push(VERSION);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(URL_SAFE_NO_PAD.encode(out))
            }
            #[cfg(feature = "cookie-store")]
            Self::Fernet(ref keys) => Ok(keys[0].encrypt_at_time(record, unix_secs(now))),
        }
    }

    /// Opens a cookie value sealed for the cookie `name` with any of the keys; `None` for
    /// anything that does not open (tampered, truncated, foreign, another key, another
    /// cookie's) or that expired by `now`. `ttl` is the idle timeout (the Fernet token's
    /// lifetime).
    #[allow(unused_variables)]
    pub(crate) fn open(
        &self,
        name: &str,
        value: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Option<Opened> {
        match *self {
            #[cfg(feature = "cookie-store")]
            Self::Aead(ref keys) => {
                use aes_gcm_siv::aead::{Aead, Payload};
                use base64::engine::general_purpose::URL_SAFE_NO_PAD;
                use base64::Engine as _;
                let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
                if raw.len() < 1 + NONCE + 16 + 8 || raw[0] != VERSION {
                    return None;
                }
                let nonce = aes_gcm_siv::Nonce::from_slice(&raw[1..1 + NONCE]);
                let sealed = &raw[1 + NONCE..];
                let plain = keys.iter().find_map(|key| {
                    key.decrypt(
                        nonce,
                        Payload {
                            msg: sealed,
                            aad: name.as_bytes(),
                        },
                    )
                    .ok()
                })?;
                let (expiry, record) = plain.split_at_checked(8)?;
                let expires_at = SystemTime::UNIX_EPOCH
                    + Duration::from_millis(u64::from_be_bytes(expiry.try_into().ok()?));
                (expires_at > now).then(|| Opened {
                    expires_at,
                    record: record.to_vec(),
                })
            }
            #[cfg(feature = "cookie-store")]
            Self::Fernet(ref keys) => {
                let now_secs = unix_secs(now);
                // Checked before the `fernet` crate sees the token: it adds the TTL to the
                // (not yet authenticated) timestamp, which overflows on a forged one.
                // Python refuses tokens more than 60 s ahead too.
                let stamp = fernet_timestamp(value)?;
                if stamp > now_secs.saturating_add(60)
                    || stamp.checked_add(ttl.as_secs())?.checked_add(60).is_none()
                {
                    return None;
                }
                let record = keys.iter().find_map(|key| {
                    key.decrypt_at_time(value, Some(ttl.as_secs()), now_secs)
                        .ok()
                })?;
                // The token's HMAC, verified above, covers the timestamp.
                let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(stamp) + ttl;
                (expires_at > now).then_some(Opened { expires_at, record })
            }
        }
    }
}

#[cfg(feature = "cookie-store")]
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The creation time of a Fernet token (seconds), which the token's HMAC covers.
#[cfg(feature = "cookie-store")]
fn fernet_timestamp(token: &str) -> Option<u64> {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let raw = URL_SAFE
        .decode(token)
        .or_else(|_| URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')))
        .ok()?;
    Some(u64::from_be_bytes(raw.get(1..9)?.try_into().ok()?))
}
