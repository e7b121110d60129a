//! Session ids: 256 bits from the OS CSPRNG, written as base64url.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::Error;

/// Number of random bytes in a generated id (256 bits).
pub const ID_BYTES: usize = 32;
/// Length of a generated id in characters (base64url, no padding).
pub const ID_LEN: usize = 43;
/// Length of a `sanic_session` id (`uuid4().hex`), accepted in compatibility mode.
pub const HEX_ID_LEN: usize = 32;

/// Which ids [`SessionId::parse`] accepts from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdFormat {
    /// Exactly the ids [`SessionId::generate`] makes: 43 base64url characters that decode
    /// canonically to 32 bytes.
    Native,
    /// Those, and also 32 lowercase hex digits, the `uuid4().hex` ids of Python's
    /// `sanic_session` (its compatibility mode).
    NativeOrUuidHex,
}

/// A session id as carried in the cookie.
///
/// Generated ids hold 256 bits from the operating system's CSPRNG, encoded as 43 base64url
/// characters. The id is a bearer secret: its `Debug` output is redacted so that it never
/// reaches a log by accident, and the store is keyed by a hash of it (see
/// [`Config::with_hashed_keys`](crate::Config::with_hashed_keys)).
///
/// ```
/// use sessio::{IdFormat, SessionId};
///
/// let id = SessionId::generate().unwrap();
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(SessionId::parse(id.as_str(), IdFormat::Native), Some(id.clone()));
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// assert!(SessionId::parse("attacker-chosen", IdFormat::Native).is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    buf: [u8; ID_LEN],
    len: u8,
}

impl SessionId {
    /// Generates a fresh id from the operating system's random number generator.
    ///
    /// # Errors
    /// [`Error::Random`] if the OS generator fails, which on a healthy system does not happen.
    pub fn generate() -> Result<Self, Error> {
        let mut raw = [0u8; ID_BYTES];
        getrandom::fill(&mut raw).map_err(Error::Random)?;
        let mut buf = [0u8; ID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut buf)
            .expect("43 bytes hold the base64url of 32 bytes");
        debug_assert_eq!(written, ID_LEN);
        Ok(Self {
            buf,
            len: ID_LEN as u8,
        })
    }

    /// Checks the format of an id taken from a client, before any store lookup.
    ///
    /// Accepts the ids of `format` (see [`IdFormat`]); anything else is `None`. Never
    /// panics, whatever the input.
    pub fn parse(value: &str, format: IdFormat) -> Option<Self> {
        let accept_hex = format == IdFormat::NativeOrUuidHex;
        let bytes = value.as_bytes();
        let ok = match bytes.len() {
            ID_LEN => {
                let mut raw = [0u8; ID_BYTES + 3];
                matches!(URL_SAFE_NO_PAD.decode_slice(bytes, &mut raw), Ok(ID_BYTES))
            }
            HEX_ID_LEN if accept_hex => bytes
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
            _ => false,
        };
        if !ok {
            return None;
        }
        let mut buf = [0u8; ID_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            buf,
            len: bytes.len() as u8,
        })
    }

    /// The id as it appears in the cookie.
    pub fn as_str(&self) -> &str {
        // Only ASCII ever enters `buf` (checked in `parse`, produced by base64 in `generate`).
        std::str::from_utf8(&self.buf[..self.len as usize]).expect("ids are ASCII")
    }

    /// The key under which this session's record lives in a store.
    ///
    /// `prefix` is prepended. With `hashed`, the id itself is replaced by the base64url
    /// SHA-256 of the id, so that a copy of the store's keys cannot be replayed as cookies.
    pub fn store_key(&self, prefix: &str, hashed: bool) -> String {
        if hashed {
            let digest = Sha256::digest(self.as_str().as_bytes());
            let mut key = String::with_capacity(prefix.len() + ID_LEN);
            key.push_str(prefix);
            URL_SAFE_NO_PAD.encode_string(digest, &mut key);
            key
        } else {
            let mut key = String::with_capacity(prefix.len() + self.len as usize);
            key.push_str(prefix);
            key.push_str(self.as_str());
            key
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_distinct_and_parse() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str(), IdFormat::Native), Some(a));
    }

    #[test]
    fn hex_ids_only_in_compat_mode() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert!(SessionId::parse(hex, IdFormat::Native).is_none());
        assert_eq!(
            SessionId::parse(hex, IdFormat::NativeOrUuidHex)
                .unwrap()
                .as_str(),
            hex
        );
        assert!(SessionId::parse(&hex.to_uppercase(), IdFormat::NativeOrUuidHex).is_none());
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        let id = SessionId::generate().unwrap();
        let mut s = id.as_str().to_string();
        // The last character carries 2 padding bits; 'B' sets one of them.
        s.pop();
        s.push('B');
        assert!(SessionId::parse(&s, IdFormat::Native).is_none());
    }

    #[test]
    fn hashed_key_hides_the_id() {
        let id = SessionId::generate().unwrap();
        let key = id.store_key("session:", true);
        assert!(key.starts_with("session:"));
        assert!(!key.contains(id.as_str()));
        assert_eq!(key, id.store_key("session:", true));
        assert_eq!(id.store_key("p:", false), format!("p:{}", id.as_str()));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_only_accepts_the_format(s in ".{0,80}", hex in any::<bool>()) {
            let format = if hex { IdFormat::NativeOrUuidHex } else { IdFormat::Native };
            if let Some(id) = SessionId::parse(&s, format) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert!(s.len() == ID_LEN || (hex && s.len() == HEX_ID_LEN));
            }
        }

        #[test]
        fn base64url_of_32_bytes_round_trips(raw in any::<[u8; 32]>()) {
            let s = URL_SAFE_NO_PAD.encode(raw);
            let id = SessionId::parse(&s, IdFormat::Native).expect("canonical base64url parses");
            prop_assert_eq!(id.as_str(), s.as_str());
        }

        #[test]
        fn other_lengths_are_rejected(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(raw.len() != 32);
            let s = URL_SAFE_NO_PAD.encode(&raw);
            prop_assert!(SessionId::parse(&s, IdFormat::Native).is_none());
        }
    }
}
