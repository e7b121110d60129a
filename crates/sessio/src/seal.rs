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
/// The AEAD tag that closes a sealed value.
#[cfg(feature = "cookie-store")]
const TAG: usize = 16;

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
                use aes_gcm_siv::aead::AeadInPlace;
                use base64::engine::general_purpose::URL_SAFE_NO_PAD;
                use base64::Engine as _;
                // 96 random bits per seal, from the thread's CSPRNG (seeded and reseeded
                // from the OS), so a seal costs no system call. GCM-SIV derives a key per
                // nonce and keeps its guarantees if two random nonces ever collide.
                let mut nonce = [0u8; NONCE];
                rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
                // One buffer, encrypted in place: version, nonce, then expiry and record
                // (the part sealed), then the tag.
                let mut out = Vec::with_capacity(1 + NONCE + 8 + record.len() + TAG);
                out.push(VERSION);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&crate::clock::unix_millis(expires_at).to_be_bytes());
                out.extend_from_slice(record);
                let tag = keys[0]
                    .encrypt_in_place_detached(
                        aes_gcm_siv::Nonce::from_slice(&nonce),
                        name.as_bytes(),
                        &mut out[1 + NONCE..],
                    )
                    .map_err(|_| Error::Poisoned)?;
                out.extend_from_slice(&tag);
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
                use aes_gcm_siv::aead::AeadInPlace;
                use base64::engine::general_purpose::URL_SAFE_NO_PAD;
                use base64::Engine as _;
                let mut raw = URL_SAFE_NO_PAD.decode(value).ok()?;
                if raw.len() < 1 + NONCE + TAG + 8 || raw[0] != VERSION {
                    return None;
                }
                // Opened in place; a key that fails leaves the bytes as they were (the
                // crate encrypts them again), so the next key sees the ciphertext.
                let tag_at = raw.len() - TAG;
                let tag = *aes_gcm_siv::Tag::from_slice(&raw[tag_at..]);
                let nonce = *aes_gcm_siv::Nonce::from_slice(&raw[1..1 + NONCE]);
                let opened = keys.iter().any(|key| {
                    key.decrypt_in_place_detached(
                        &nonce,
                        name.as_bytes(),
                        &mut raw[1 + NONCE..tag_at],
                        &tag,
                    )
                    .is_ok()
                });
                if !opened {
                    return None;
                }
                let expiry = raw.get(1 + NONCE..1 + NONCE + 8)?;
                let expires_at = SystemTime::UNIX_EPOCH
                    + Duration::from_millis(u64::from_be_bytes(expiry.try_into().ok()?));
                if expires_at <= now {
                    return None;
                }
                // The record, without a copy: the tag cut off, the header drained.
                raw.truncate(tag_at);
                raw.drain(..1 + NONCE + 8);
                Some(Opened {
                    expires_at,
                    record: raw,
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

#[cfg(all(test, feature = "cookie-store"))]
mod tests {
    use super::*;
    use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
    use aes_gcm_siv::Aes256GcmSiv;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn key(byte: u8) -> Aes256GcmSiv {
        Aes256GcmSiv::new(&[byte; 32].into())
    }

    /// A value as the AEAD's one-shot API seals it (the format's definition, and what
    /// sessio wrote before it sealed in place).
    fn sealed_one_shot(key: &Aes256GcmSiv, name: &str, expiry: u64, record: &[u8]) -> String {
        let nonce = [7u8; NONCE];
        let mut plain = expiry.to_be_bytes().to_vec();
        plain.extend_from_slice(record);
        let sealed = key
            .encrypt(
                aes_gcm_siv::Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: name.as_bytes(),
                },
            )
            .unwrap();
        let mut out = vec![VERSION];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    #[test]
    fn in_place_sealing_keeps_the_format_and_every_key_is_tried() {
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let expiry = crate::clock::unix_millis(later);
        let record = br#"{"foo":1}"#;
        // The right key second: the first one's failed attempt must leave the bytes intact.
        let sealer = Sealer::Aead(vec![key(1), key(2)]);
        let old = sealed_one_shot(&key(2), "id", expiry, record);
        let opened = sealer.open("id", &old, now, Duration::ZERO).expect("opens");
        assert_eq!(opened.record, record);
        assert_eq!(crate::clock::unix_millis(opened.expires_at), expiry);
        // Sealed in place, it opens with the one-shot API.
        let new = Sealer::Aead(vec![key(2)])
            .seal("id", record, later, now)
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&new).unwrap();
        let plain = key(2)
            .decrypt(
                aes_gcm_siv::Nonce::from_slice(&raw[1..1 + NONCE]),
                Payload {
                    msg: &raw[1 + NONCE..],
                    aad: b"id",
                },
            )
            .unwrap();
        assert_eq!(&plain[8..], record);
        // Not under another cookie's name, not with an unknown key, not once expired.
        assert!(sealer.open("other", &old, now, Duration::ZERO).is_none());
        assert!(Sealer::Aead(vec![key(3)])
            .open("id", &old, now, Duration::ZERO)
            .is_none());
        assert!(sealer
            .open("id", &old, later + Duration::from_secs(1), Duration::ZERO)
            .is_none());
    }
}
