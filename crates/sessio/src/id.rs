//! Session ids: 256 bits from the OS CSPRNG, written as base64url.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::Error;

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
/// use sessio::{id::IdFormat, id::SessionId};
///
/// let id = SessionId::generate().unwrap();
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(SessionId::parse(id.as_str(), IdFormat::Native), Some(id.clone()));
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// assert!(SessionId::parse("attacker-chosen", IdFormat::Native).is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Repr);

/// Built-in ids stay inline (no allocation on the request path); a custom generator's ids
/// may be longer.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { buf: [u8; ID_LEN], len: u8 },
    Custom(Box<str>),
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
        Ok(Self(Repr::Inline {
            buf,
            len: ID_LEN as u8,
        }))
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
        Some(Self(Repr::Inline {
            buf,
            len: bytes.len() as u8,
        }))
    }

    /// The id as it appears in the cookie.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ASCII ever enters `buf` (checked in `parse`, made by base64 in `generate`).
            Repr::Inline { buf, len } => {
                std::str::from_utf8(&buf[..*len as usize]).expect("ids are ASCII")
            }
            Repr::Custom(id) => id,
        }
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
            let id = self.as_str();
            let mut key = String::with_capacity(prefix.len() + id.len());
            key.push_str(prefix);
            key.push_str(id);
            key
        }
    }
}

/// A custom id format (sanic-cookies' `sid_factory`), kept to sessio's guarantees: sessio
/// draws the random bytes from the OS CSPRNG itself (at least 16, i.e. 128 bits) and the
/// generator only writes them out, reversibly. A generator is checked when the
/// configuration is validated: its ids must use only `A–Z a–z 0–9 - _`, be 16 to 128
/// characters long, and decode back to exactly the bytes they were made from (so no bit of
/// randomness is lost); one that cannot show that is refused with a
/// [`ConfigError`](crate::ConfigError). Every cookie is decoded, and must be written
/// exactly as this generator writes it, before any store lookup.
///
/// ```
/// use sessio::{Config, id::IdGenerator, MemoryStore, SessionManager};
///
/// /// `sid_` and 32 lowercase hex digits (128 bits), like `"sid_" + uuid4().hex`.
/// #[derive(Debug)]
/// struct PrefixedHex;
///
/// impl IdGenerator for PrefixedHex {
///     fn random_bytes(&self) -> usize {
///         16
///     }
///     fn encode(&self, random: &[u8]) -> String {
///         let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
///         format!("sid_{hex}")
///     }
///     fn decode(&self, id: &str) -> Option<Vec<u8>> {
///         let hex = id.strip_prefix("sid_")?;
///         if hex.len() != 32 {
///             return None;
///         }
///         (0..32).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = SessionManager::new(
///     MemoryStore::default(),
///     Config::default().with_id_generator(PrefixedHex),
/// )?;
/// let session = manager.session(std::iter::empty());
/// session.insert("n", 1).await?;
/// let set_cookie = session.commit().await?.unwrap();
/// assert!(set_cookie.starts_with("id=sid_"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub trait IdGenerator: fmt::Debug + Send + Sync + 'static {
    /// How many random bytes each id carries (sessio draws them from the OS): at least 16.
    /// Default 32 (256 bits).
    fn random_bytes(&self) -> usize {
        ID_BYTES
    }

    /// Writes `random` (exactly [`random_bytes`](Self::random_bytes) bytes) as an id.
    fn encode(&self, random: &[u8]) -> String;

    /// The random bytes `id` was made from, if it is an id of this format; `None` for
    /// anything else. Never panics, whatever the input.
    fn decode(&self, id: &str) -> Option<Vec<u8>>;
}

/// The longest id a custom generator may write.
pub const MAX_CUSTOM_ID_LEN: usize = 128;
/// The shortest id a custom generator may write.
pub const MIN_CUSTOM_ID_LEN: usize = 16;

fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Why a custom generator is refused, or `None` if it shows what it must.
pub(crate) fn check_generator(generator: &dyn IdGenerator) -> Option<String> {
    let n = generator.random_bytes();
    if n < 16 {
        return Some(format!(
            "the id generator asks for {n} random bytes; at least 16 (128 bits) are needed"
        ));
    }
    if n > 64 {
        return Some(format!(
            "the id generator asks for {n} random bytes; 64 at most"
        ));
    }
    let mut samples = vec![vec![0u8; n], vec![0xFF; n]];
    for _ in 0..8 {
        let mut raw = vec![0u8; n];
        if getrandom::fill(&mut raw).is_err() {
            return Some(
                "the OS random number generator failed while checking the id generator".into(),
            );
        }
        samples.push(raw);
    }
    for raw in &samples {
        let id = generator.encode(raw);
        if !(MIN_CUSTOM_ID_LEN..=MAX_CUSTOM_ID_LEN).contains(&id.len()) {
            return Some(format!("the id generator wrote a {}-character id; ids must be {MIN_CUSTOM_ID_LEN} to {MAX_CUSTOM_ID_LEN} characters", id.len()));
        }
        if !id.bytes().all(id_char) {
            return Some("the id generator wrote characters other than A-Z a-z 0-9 - _".into());
        }
        if generator.decode(&id).as_deref() != Some(raw.as_slice()) {
            return Some("the id generator's ids do not decode back to the random bytes they were made from, so they may carry less than 128 random bits; make decode the inverse of encode".into());
        }
    }
    None
}

/// Which ids an engine makes and accepts.
#[derive(Debug, Clone)]
pub(crate) enum Ids {
    Builtin(IdFormat),
    Custom(std::sync::Arc<dyn IdGenerator>),
}

impl Ids {
    pub(crate) fn generate(&self) -> Result<SessionId, Error> {
        match self {
            Ids::Builtin(_) => SessionId::generate(),
            Ids::Custom(generator) => {
                let mut raw = vec![0u8; generator.random_bytes()];
                getrandom::fill(&mut raw).map_err(Error::Random)?;
                Ok(SessionId(Repr::Custom(generator.encode(&raw).into())))
            }
        }
    }

    /// The id in a client's `value`, if it is well formed (checked before any lookup).
    pub(crate) fn parse(&self, value: &str) -> Option<SessionId> {
        match self {
            Ids::Builtin(format) => SessionId::parse(value, *format),
            Ids::Custom(generator) => {
                if !(MIN_CUSTOM_ID_LEN..=MAX_CUSTOM_ID_LEN).contains(&value.len())
                    || !value.bytes().all(id_char)
                {
                    return None;
                }
                let raw = generator.decode(value)?;
                // Exactly as the generator writes it: one spelling per id.
                (raw.len() == generator.random_bytes() && generator.encode(&raw) == value)
                    .then(|| SessionId(Repr::Custom(value.into())))
            }
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
