//! How a session's data is written in its record: [`Codec`], chosen with
//! [`Config::with_codec`](crate::Config::with_codec).
//!
//! ```
//! use sessio::codec::Codec;
//!
//! let config = sessio::Config::default().with_codec(Codec::Json);
//! assert_eq!(config.codec(), Codec::Json);
//! ```

/// How the session's data is written after the header (native format only; records of
/// either codec are read whatever the configuration says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// JSON (the default): readable with any tool, and what the compatibility mode writes.
    #[default]
    Json,
    /// MessagePack (`rmp-serde`): smaller and faster to read and write; needs sessio's
    /// `msgpack` feature.
    #[cfg(feature = "msgpack")]
    MessagePack,
}
