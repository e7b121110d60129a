//! The bytes a session becomes in a store.
//!
//! Native format: a 14-byte header (format tag, flags, creation time in Unix milliseconds,
//! a write counter), an optional 4-byte idle-timeout override, an optional 8-byte time the
//! id was issued, then the session's JSON (or MessagePack) object. A rotated-away session
//! leaves a *forward* record: the header with the moved flag (and the login flag if a
//! login moved it), then the store key of its successor, so that the requests that were
//! in flight during the rotation still reach the data (see `session::persist`). The
//! `sanic_session` compatibility format is the JSON object alone, exactly what the Python
//! library writes; it has no forwards.

use serde_json::{Map, Value};

use crate::codec::Codec;

/// The session's key/value data.
pub(crate) type Data = Map<String, Value>;

const TAG: u8 = 0xA3;
const FLAG_TTL: u8 = 1;
const FLAG_BROWSER_COOKIE: u8 = 2;
const FLAG_MOVED: u8 = 4;
/// The body is MessagePack, not JSON.
const FLAG_MSGPACK: u8 = 8;
/// On a forward: the rotation was a login's (see [`Forward::login`]).
const FLAG_LOGIN: u8 = 16;
/// On a live record: the time its id was issued follows the header (8 bytes, after the
/// idle-timeout override if any).
const FLAG_ISSUED: u8 = 32;
/// The deepest nesting of a value inside the session object that can be read back
/// (serde_json refuses to read past 128 levels; the object itself is one).
pub(crate) const MAX_DEPTH: usize = 100;
const HEADER: usize = 14;

/// Metadata kept beside the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Unix milliseconds when the session was first stored; 0 when unknown (compat format).
    pub created: u64,
    /// How many times the record was written (wrapping): a client that carries a newer
    /// count in its cookie has seen a write that a cached copy may not have.
    pub writes: u32,
    /// Per-session idle timeout in seconds, overriding the configured one.
    pub ttl_override: Option<u32>,
    /// The session asked for a cookie that dies with the browser ("remember me" off).
    pub browser_cookie: bool,
    /// Unix milliseconds when the current id was issued (the session created or rotated),
    /// which is when the browser was last sent its cookie; 0 when unknown (records written
    /// before it was kept, and the compat format).
    pub issued: u64,
}

/// Which byte format a manager reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Native,
    JsonOnly,
}

/// What stored bytes hold.
#[derive(Debug, PartialEq)]
pub(crate) enum Record {
    /// A session.
    Live(Meta, Data),
    /// A rotated-away session.
    Moved(Forward),
}

/// What a rotated-away session leaves behind for the requests that were in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    /// The store key of the successor.
    pub to: String,
    /// A login rotated the session: requests still carrying the old id are refused rather
    /// than followed (they may be an attacker's, who planted the old id).
    pub login: bool,
    /// Unix milliseconds when the forward ends (the rotation grace), whatever the store's
    /// TTL says (a touch racing the rotation may have extended that); 0 when unknown.
    pub until: u64,
}

/// Why stored bytes could not be read as a session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("record is not in sessio's format (bad header)")]
    Header,
    #[error("record data is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[cfg(feature = "msgpack")]
    #[error("record data is not a MessagePack map: {0}")]
    MessagePack(#[from] rmp_serde::decode::Error),
    #[cfg(not(feature = "msgpack"))]
    #[error("record data is MessagePack; build sessio with its `msgpack` feature to read it")]
    NoMessagePack,
}

pub(crate) fn encode(format: Format, codec: Codec, meta: &Meta, data: &Data) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    if format == Format::Native {
        let mut flags = 0;
        #[cfg(feature = "msgpack")]
        if codec == Codec::MessagePack {
            flags |= FLAG_MSGPACK;
        }
        if meta.ttl_override.is_some() {
            flags |= FLAG_TTL;
        }
        if meta.browser_cookie {
            flags |= FLAG_BROWSER_COOKIE;
        }
        if meta.issued != 0 {
            flags |= FLAG_ISSUED;
        }
        out.push(TAG);
        out.push(flags);
        out.extend_from_slice(&meta.created.to_le_bytes());
        out.extend_from_slice(&meta.writes.to_le_bytes());
        if let Some(ttl) = meta.ttl_override {
            out.extend_from_slice(&ttl.to_le_bytes());
        }
        if meta.issued != 0 {
            out.extend_from_slice(&meta.issued.to_le_bytes());
        }
    }
    match codec {
        Codec::Json => {}
        #[cfg(feature = "msgpack")]
        Codec::MessagePack if format == Format::Native => {
            rmp_serde::encode::write(&mut out, data).expect("a JSON map always serializes");
            return out;
        }
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => {}
    }
    serde_json::to_writer(&mut out, data).expect("a JSON map always serializes");
    out
}

/// The forward record left under a rotated-away key.
pub(crate) fn encode_moved(forward: &Forward) -> Vec<u8> {
    let successor = &forward.to;
    let mut out = Vec::with_capacity(HEADER + successor.len());
    out.push(TAG);
    out.push(if forward.login {
        FLAG_MOVED | FLAG_LOGIN
    } else {
        FLAG_MOVED
    });
    out.extend_from_slice(&forward.until.to_le_bytes());
    out.extend_from_slice(&[0; HEADER - 10]);
    out.extend_from_slice(successor.as_bytes());
    out
}

pub(crate) fn decode_record(format: Format, bytes: &[u8]) -> Result<Record, DecodeError> {
    if format == Format::Native
        && bytes.len() >= HEADER
        && bytes[0] == TAG
        && bytes[1] & FLAG_MOVED != 0
    {
        let to = std::str::from_utf8(&bytes[HEADER..]).map_err(|_| DecodeError::Header)?;
        return Ok(Record::Moved(Forward {
            to: to.to_owned(),
            login: bytes[1] & FLAG_LOGIN != 0,
            until: u64::from_le_bytes(bytes[2..10].try_into().expect("8 bytes")),
        }));
    }
    decode(format, bytes).map(|(meta, data)| Record::Live(meta, data))
}

/// How deeply `value` nests: the containers on its longest path (a scalar is 0, `[]` and
/// `[1]` are 1, `{"a": []}` is 2), as a reader counts them.
pub(crate) fn depth(value: &Value) -> usize {
    // Iterative, so that a hostile value cannot overflow the stack here.
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

pub(crate) fn decode(format: Format, bytes: &[u8]) -> Result<(Meta, Data), DecodeError> {
    let mut meta = Meta::default();
    let mut body = bytes;
    let mut msgpack = false;
    if format == Format::Native {
        if bytes.len() < HEADER || bytes[0] != TAG || bytes[1] & FLAG_MOVED != 0 {
            return Err(DecodeError::Header);
        }
        let flags = bytes[1];
        meta.created = u64::from_le_bytes(bytes[2..10].try_into().expect("8 bytes"));
        meta.writes = u32::from_le_bytes(bytes[10..HEADER].try_into().expect("4 bytes"));
        meta.browser_cookie = flags & FLAG_BROWSER_COOKIE != 0;
        msgpack = flags & FLAG_MSGPACK != 0;
        body = &bytes[HEADER..];
        if flags & FLAG_TTL != 0 {
            let raw = body.get(..4).ok_or(DecodeError::Header)?;
            meta.ttl_override = Some(u32::from_le_bytes(raw.try_into().expect("4 bytes")));
            body = &body[4..];
        }
        if flags & FLAG_ISSUED != 0 {
            let raw = body.get(..8).ok_or(DecodeError::Header)?;
            meta.issued = u64::from_le_bytes(raw.try_into().expect("8 bytes"));
            body = &body[8..];
        }
    }
    let data: Data = match msgpack {
        false => serde_json::from_slice(body)?,
        #[cfg(feature = "msgpack")]
        true => rmp_serde::from_slice(body)?,
        #[cfg(not(feature = "msgpack"))]
        true => return Err(DecodeError::NoMessagePack),
    };
    Ok((meta, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn data() -> impl Strategy<Value = Data> {
        proptest::collection::btree_map(".{0,12}", json_value(), 0..8)
            .prop_map(|m| m.into_iter().collect())
    }

    fn meta() -> impl Strategy<Value = Meta> {
        (
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(
                |(created, writes, ttl_override, browser_cookie, issued)| Meta {
                    created,
                    writes,
                    ttl_override,
                    browser_cookie,
                    issued,
                },
            )
    }

    proptest! {
        #[test]
        fn native_round_trips(m in meta(), d in data()) {
            let bytes = encode(Format::Native, Codec::Json, &m, &d);
            let (m2, d2) = decode(Format::Native, &bytes).unwrap();
            prop_assert_eq!(m2, m);
            prop_assert_eq!(d2, d);
        }

        #[cfg(feature = "msgpack")]
        #[test]
        fn msgpack_round_trips_and_is_read_without_being_asked(m in meta(), d in data()) {
            let bytes = encode(Format::Native, Codec::MessagePack, &m, &d);
            let (m2, d2) = decode(Format::Native, &bytes).unwrap();
            prop_assert_eq!(m2, m);
            prop_assert_eq!(d2, d);
        }

        #[test]
        fn json_only_is_exactly_the_object(d in data()) {
            let bytes = encode(Format::JsonOnly, Codec::Json, &Meta::default(), &d);
            prop_assert_eq!(&bytes, &serde_json::to_vec(&d).unwrap());
            let (_, d2) = decode(Format::JsonOnly, &bytes).unwrap();
            prop_assert_eq!(d2, d);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(Format::Native, &bytes);
            let _ = decode(Format::JsonOnly, &bytes);
        }
    }

    #[test]
    fn forwards_round_trip_and_are_not_sessions() {
        for login in [false, true] {
            let forward = Forward {
                to: "session:abc".into(),
                login,
                until: 1_700_000_000_000,
            };
            let bytes = encode_moved(&forward);
            assert_eq!(
                decode_record(Format::Native, &bytes).unwrap(),
                Record::Moved(forward)
            );
        }
        let bytes = encode_moved(&Forward {
            to: "session:abc".into(),
            login: true,
            until: 0,
        });
        assert!(decode(Format::Native, &bytes).is_err());
        let live = encode(Format::Native, Codec::Json, &Meta::default(), &Data::new());
        assert!(matches!(
            decode_record(Format::Native, &live),
            Ok(Record::Live(..))
        ));
    }

    #[test]
    fn depth_counts_nesting_without_recursion() {
        assert_eq!(depth(&Value::Null), 0);
        assert_eq!(depth(&serde_json::json!([[1], {"a": [2]}])), 3);
        assert_eq!(depth(&serde_json::json!([])), 1);
        assert_eq!(depth(&serde_json::json!({"a": {}})), 2);
        assert_eq!(
            depth(&serde_json::json!([[[]]])),
            depth(&serde_json::json!({"a": {"b": {}}}))
        );
        let mut deep = Value::Null;
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(depth(&deep), 10_000);
        // Dropping a deep value recursively would overflow the stack: unnest it first.
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn non_object_json_is_rejected() {
        assert!(decode(Format::JsonOnly, b"[1,2]").is_err());
        assert!(decode(Format::Native, b"{}").is_err());
    }
}
