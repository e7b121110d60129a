//! The session cookie: found in a request's `Cookie` headers, written as `Set-Cookie`.

use std::time::Duration;

use cookie::Cookie;

use crate::config::Config;
use crate::id::{Ids, SessionId};

/// What the client sent under the session cookie's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No cookie of that name.
    Absent,
    /// A cookie of that name, but no well-formed id in it.
    Invalid,
    /// A well-formed id (not yet known to exist), and the write count the client last
    /// saw, if it sent one (see `Engine::stamps`).
    Id(SessionId, Option<Stamp>),
}

/// The write count of the record a client last saw, for stores that serve reads from an
/// in-process cache: a count newer than the cached copy's makes the engine read the store
/// itself (read-your-writes across processes).
///
/// It travels in a cookie of its own, `<name>.w=<tag>.<count>`, never in the id cookie:
/// a write re-sends only this one, so an answer that arrives late (after a rotation's or a
/// login's) can cost at most one extra read from the store, never the browser's session.
/// The tag ties the count to one record (a digest of its store key, not of the id); a
/// count whose tag is not the record's is ignored and replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The record's tag ([`tag`]); `None` for a count carried the old way, after a dot in
    /// the id cookie (read for cookies issued before, never written).
    pub tag: Option<Tag>,
    pub writes: u32,
}

/// The tag of the record under store key `key`: 48 bits of its SHA-256, base64url (see
/// `Engine::tag`, which takes them from the key itself when the key is already a hash).
pub(crate) fn tag(key: &str) -> Tag {
    use sha2::{Digest, Sha256};
    Tag::encode(&Sha256::digest(key.as_bytes())[..6])
}

/// 48 bits that tie a write count to one record, as 8 base64url characters: kept inline,
/// so that reading, comparing and writing the write-count cookie allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag([u8; 8]);

impl Tag {
    /// The base64url of 6 bytes.
    pub(crate) fn encode(bits: &[u8]) -> Self {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let mut out = [0u8; 8];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&bits[..6], &mut out)
            .expect("8 characters hold the base64url of 6 bytes");
        debug_assert_eq!(written, 8);
        Self(out)
    }

    /// A tag of 8 characters from the cookie alphabet (letters, digits, `-`, `_`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 8] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self(bytes))
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only the cookie alphabet enters (`encode`, `parse`, `Engine::tag`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Presented {
    pub(crate) fn id(&self) -> Option<&SessionId> {
        match self {
            Self::Id(id, _) => Some(id),
            _ => None,
        }
    }

    /// The write count the client saw of the record tagged `tag` (computed only when the
    /// client sent a tagged count), if it sent one for it.
    pub(crate) fn writes_for(&self, tag: impl FnOnce() -> Tag) -> Option<u32> {
        match self {
            Self::Id(_, Some(Stamp { tag: None, writes })) => Some(*writes),
            Self::Id(
                _,
                Some(Stamp {
                    tag: Some(t),
                    writes,
                }),
            ) if *t == tag() => Some(*writes),
            _ => None,
        }
    }

    /// The stamp the client holds, if any.
    pub(crate) fn stamp(&self) -> Option<&Stamp> {
        match self {
            Self::Id(_, stamp) => stamp.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn sent(&self) -> bool {
        !matches!(self, Self::Absent)
    }
}

/// Finds the session cookie among `headers`, tolerating anything else in them: other
/// cookies that are not UTF-8, malformed pairs, stray separators. The first well-formed id
/// under `name` wins; with `stamp_name` (`<name>.w`), the write count under it goes with
/// it. Never fails, never panics.
pub(crate) fn find<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
    ids: &Ids,
    stamp_name: Option<&str>,
) -> Presented {
    let mut presented = Presented::Absent;
    let mut stamp = None;
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let cookie = pair[..eq].trim_ascii();
            let value = unquote(pair[eq + 1..].trim_ascii());
            if stamp_name.is_some_and(|s| cookie == s.as_bytes()) {
                stamp = stamp.or_else(|| parse_stamp(value));
                continue;
            }
            if cookie != name.as_bytes() || matches!(presented, Presented::Id(..)) {
                continue;
            }
            match parse(value, ids) {
                Some((id, writes)) => {
                    presented = Presented::Id(id, writes.map(|writes| Stamp { tag: None, writes }))
                }
                None => presented = Presented::Invalid,
            }
        }
    }
    if let (Presented::Id(_, carried @ None), Some(stamp)) = (&mut presented, stamp) {
        *carried = Some(stamp);
    }
    presented
}

/// A cookie value without the double quotes RFC 6265 allows around it (some clients, such
/// as Python's `http.cookies`, add them).
pub(crate) fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

/// A write-count cookie's value: `<tag>.<count>`.
fn parse_stamp(value: &[u8]) -> Option<Stamp> {
    let value = std::str::from_utf8(value).ok()?;
    let (tag, writes) = value.split_once('.')?;
    let tag = Tag::parse(tag)?;
    if writes.is_empty() || !writes.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Stamp {
        tag: Some(tag),
        writes: writes.parse().ok()?,
    })
}

/// A cookie value: `<id>` or `<id>.<write count>`.
fn parse(value: &[u8], ids: &Ids) -> Option<(SessionId, Option<u32>)> {
    let value = std::str::from_utf8(value).ok()?;
    let (id, writes) = match value.split_once('.') {
        Some((id, writes)) if !writes.is_empty() && writes.bytes().all(|b| b.is_ascii_digit()) => {
            (id, Some(writes.parse().ok()?))
        }
        Some(_) => return None,
        None => (value, None),
    };
    Some((ids.parse(id)?, writes))
}

/// Makes the `Set-Cookie` values of one configuration.
#[derive(Debug, Clone)]
pub(crate) struct CookieJar {
    pub name: String,
    /// The write-count cookie's name, `<name>.w` (see [`Stamp`]).
    pub stamp_name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: cookie::SameSite,
    /// The attributes every issued cookie carries (`; HttpOnly; SameSite=Lax; Path=/`…),
    /// written once by the `cookie` crate, so that issuing a cookie is a few appends.
    attributes: String,
}

impl CookieJar {
    pub(crate) fn new(config: &Config) -> Self {
        let name = config.cookie_name();
        let mut jar = Self {
            stamp_name: format!("{name}.w"),
            name,
            path: config.path.clone(),
            domain: config.domain.clone(),
            secure: config.secure,
            http_only: config.http_only,
            same_site: config.same_site,
            attributes: String::new(),
        };
        let sample = jar.base("n", "").build().to_string();
        jar.attributes = sample.strip_prefix("n=").unwrap_or_default().to_owned();
        jar
    }

    fn base<'c>(&self, name: &str, value: &'c str) -> cookie::CookieBuilder<'c> {
        let mut builder = Cookie::build((name.to_owned(), value))
            .path(self.path.clone())
            .http_only(self.http_only)
            .secure(self.secure)
            .same_site(self.same_site);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// The `Set-Cookie` value carrying `id`; persistent for `max_age` (whole seconds,
    /// rounded up by the caller) if given, else a cookie that dies with the browser.
    pub(crate) fn issue(&self, id: &SessionId, max_age: Option<Duration>) -> String {
        self.issue_value(&self.name, id.as_str(), max_age)
    }

    /// The `Set-Cookie` value of the write-count cookie (see [`Stamp`]).
    pub(crate) fn issue_stamp(&self, stamp: &Stamp, max_age: Option<Duration>) -> String {
        let value = format!(
            "{}.{}",
            stamp.tag.as_ref().map(Tag::as_str).unwrap_or_default(),
            stamp.writes
        );
        self.issue_value(&self.stamp_name, &value, max_age)
    }

    /// The `Set-Cookie` value of cookie `name` (the session cookie, or one of the cookie
    /// store's chunks) holding `value`, with this configuration's attributes.
    ///
    /// Written as the `cookie` crate writes it (a test holds the two equal), without its
    /// builder: this runs for most answers that carry a cookie.
    pub(crate) fn issue_value(&self, name: &str, value: &str, max_age: Option<Duration>) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(name.len() + value.len() + self.attributes.len() + 56);
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        out.push_str(&self.attributes);
        if let Some(age) = max_age {
            let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            let expires =
                time::OffsetDateTime::now_utc().saturating_add(time::Duration::seconds(secs));
            let _ = write!(out, "; Max-Age={secs}; Expires=");
            http_date(&mut out, expires);
        }
        out
    }

    /// The `Set-Cookie` value that deletes the cookie, repeating every attribute so that
    /// the browser matches it to the one it holds.
    pub(crate) fn removal(&self) -> String {
        self.removal_named(&self.name)
    }

    /// The removal of cookie `name`, with this configuration's attributes.
    pub(crate) fn removal_named(&self, name: &str) -> String {
        let mut cookie = self.base(name, "").build();
        cookie.make_removal();
        cookie.to_string()
    }
}

/// `t` as an HTTP date (`Wed, 06 Jan 2027 12:04:55 GMT`), at most the end of year 9999, as
/// the `cookie` crate writes an `Expires`.
fn http_date(out: &mut String, t: time::OffsetDateTime) {
    use std::fmt::Write as _;
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = if t.year() > 9999 {
        time::PrimitiveDateTime::new(
            time::Date::from_calendar_date(9999, time::Month::December, 31)
                .unwrap_or(time::Date::MAX),
            time::Time::from_hms(23, 59, 59).unwrap_or(time::Time::MIDNIGHT),
        )
        .assume_utc()
    } else {
        t
    };
    let _ = write!(
        out,
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::IdFormat;

    /// What the `cookie` crate writes for the same cookie, `Expires` `at`.
    fn by_the_cookie_crate(
        jar: &CookieJar,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
        at: time::OffsetDateTime,
    ) -> String {
        let mut builder = jar.base(name, value);
        if let Some(age) = max_age {
            let age = time::Duration::seconds(age.as_secs().try_into().unwrap_or(i64::MAX));
            builder = builder.max_age(age).expires(at.saturating_add(age));
        }
        builder.build().to_string()
    }

    #[test]
    fn issued_cookies_are_written_as_the_cookie_crate_writes_them() {
        let configs = [
            Config::default(),
            Config::default().with_secure(false),
            Config::default()
                .with_domain(Some("example.com"))
                .with_path("/app")
                .with_same_site(crate::SameSite::Strict),
            Config::default()
                .with_same_site(crate::SameSite::None)
                .with_http_only(false),
        ];
        for config in &configs {
            let jar = CookieJar::new(config);
            for max_age in [
                None,
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(34_560_000)),
            ] {
                // Retried if the clock's second turned between the two.
                let mut tries = 0;
                loop {
                    let at = time::OffsetDateTime::now_utc();
                    let ours = jar.issue_value("id", "abc.7", max_age);
                    let theirs = by_the_cookie_crate(&jar, "id", "abc.7", max_age, at);
                    if ours == theirs {
                        break;
                    }
                    tries += 1;
                    assert!(
                        tries < 3,
                        "{config:?} {max_age:?}:\n ours   {ours}\n theirs {theirs}"
                    );
                }
            }
        }
        let mut date = String::new();
        http_date(
            &mut date,
            time::Date::from_calendar_date(2027, time::Month::January, 6)
                .unwrap()
                .with_hms(12, 4, 55)
                .unwrap()
                .assume_utc(),
        );
        assert_eq!(date, "Wed, 06 Jan 2027 12:04:55 GMT");
    }

    fn id() -> SessionId {
        SessionId::generate().unwrap()
    }

    #[test]
    fn finds_the_id_among_other_cookies_even_non_utf8_ones() {
        let id = id();
        let header = [
            b"a=\xff\xfe; ".as_slice(),
            format!("id={}; b=2", id.as_str()).as_bytes(),
        ]
        .concat();
        assert_eq!(
            find(
                [header.as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Id(id.clone(), None)
        );
        // RFC 6265 allows the value in double quotes; a lone quote is not that.
        let quoted = format!("x=1;id=\"{}\"", id.as_str());
        let ids = Ids::Builtin(IdFormat::Native);
        assert_eq!(
            find([quoted.as_bytes()], "id", &ids, None),
            Presented::Id(id.clone(), None)
        );
        let half = format!("x=1;id=\"{}", id.as_str());
        assert_eq!(
            find([half.as_bytes()], "id", &ids, None),
            Presented::Invalid
        );
        assert_eq!(
            find(
                [b"x=1".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Absent
        );
        assert_eq!(
            find(
                [b"id=garbage".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Invalid
        );
        assert_eq!(
            find(
                [b"id=\xff".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Invalid
        );
        // A bad copy before a good one does not hide it, in one header or across two.
        let two = format!("id=bad; id={}", id.as_str());
        assert_eq!(
            find(
                [two.as_bytes()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Id(id.clone(), None)
        );
        let second = format!("id={}", id.as_str());
        assert_eq!(
            find(
                [b"id=bad".as_slice(), second.as_bytes()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Id(id.clone(), None)
        );
        // The write count after a dot; anything else after one is not ours.
        let counted = format!("id={}.42", id.as_str());
        assert_eq!(
            find(
                [counted.as_bytes()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Id(
                id.clone(),
                Some(Stamp {
                    tag: None,
                    writes: 42
                })
            )
        );
        for bad in [".", ".x", ".-1", ".99999999999"] {
            let value = format!("id={}{bad}", id.as_str());
            assert_eq!(
                find(
                    [value.as_bytes()],
                    "id",
                    &Ids::Builtin(IdFormat::Native),
                    None
                ),
                Presented::Invalid,
                "{bad}"
            );
        }
        // Names are compared exactly: `xid` is not `id`.
        assert_eq!(
            find(
                [b"xid=1".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native),
                None
            ),
            Presented::Absent
        );
    }

    #[test]
    fn the_write_count_has_a_cookie_of_its_own_tied_to_one_record() {
        let id = id();
        let ids = Ids::Builtin(IdFormat::Native);
        let key = "session:abc";
        let header = format!("id.w={}.7; id={}", tag(key), id.as_str());
        let presented = find([header.as_bytes()], "id", &ids, Some("id.w"));
        assert_eq!(presented.id(), Some(&id));
        assert_eq!(presented.writes_for(|| tag(key)), Some(7));
        assert_eq!(
            presented.writes_for(|| tag("session:other")),
            None,
            "another record's count"
        );
        // Without stamps (a store without a cache) the cookie is not read.
        assert_eq!(
            find([header.as_bytes()], "id", &ids, None).writes_for(|| tag(key)),
            None
        );
        for bad in [
            "7",
            "short.7",
            &format!("{}.", tag(key)),
            &format!("{}.x", tag(key)),
        ] {
            let header = format!("id={}; id.w={bad}", id.as_str());
            assert_eq!(
                find([header.as_bytes()], "id", &ids, Some("id.w")).stamp(),
                None,
                "{bad}"
            );
        }
        let jar = CookieJar::new(&Config::default());
        let stamp = Stamp {
            tag: Some(tag(key)),
            writes: 9,
        };
        let set = jar.issue_stamp(&stamp, None);
        assert!(set.starts_with(&format!("id.w={}.9;", tag(key))), "{set}");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
    }

    #[test]
    fn removal_repeats_every_attribute() {
        let config = Config::default()
            .with_domain(Some("example.com"))
            .with_path("/app");
        let removal = CookieJar::new(&config).removal();
        for part in [
            "id=",
            "Max-Age=0",
            "Domain=example.com",
            "Path=/app",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(removal.contains(part), "{removal} lacks {part}");
        }
    }
}
