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
    /// A well-formed id (not yet known to exist), and the write count the cookie
    /// carried, if any (see `Engine::stamps`).
    Id(SessionId, Option<u32>),
}

impl Presented {
    pub(crate) fn id(&self) -> Option<&SessionId> {
        match self {
            Self::Id(id, _) => Some(id),
            _ => None,
        }
    }

    /// The write count the cookie carried.
    pub(crate) fn writes(&self) -> Option<u32> {
        match self {
            Self::Id(_, writes) => *writes,
            _ => None,
        }
    }

    pub(crate) fn sent(&self) -> bool {
        !matches!(self, Self::Absent)
    }
}

/// Finds the session cookie among `headers`, tolerating anything else in them: other
/// cookies that are not UTF-8, malformed pairs, stray separators. The first well-formed id
/// under `name` wins. Never fails, never panics.
pub(crate) fn find<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
    ids: &Ids,
) -> Presented {
    let mut presented = Presented::Absent;
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            // A quoted value is not an id we issued (we never quote): it is refused.
            let value = pair[eq + 1..].trim_ascii();
            match parse(value, ids) {
                Some((id, writes)) => return Presented::Id(id, writes),
                None => presented = Presented::Invalid,
            }
        }
    }
    presented
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
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: cookie::SameSite,
}

impl CookieJar {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            name: config.cookie_name(),
            path: config.path.clone(),
            domain: config.domain.clone(),
            secure: config.secure,
            http_only: config.http_only,
            same_site: config.same_site,
        }
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

    /// The `Set-Cookie` value carrying `id` (and the record's write count, if given);
    /// persistent for `max_age` (whole seconds, rounded up by the caller) if given, else a
    /// cookie that dies with the browser.
    pub(crate) fn issue(
        &self,
        id: &SessionId,
        writes: Option<u32>,
        max_age: Option<Duration>,
    ) -> String {
        let value = match writes {
            Some(n) => format!("{}.{n}", id.as_str()),
            None => id.as_str().to_owned(),
        };
        self.issue_value(&self.name, &value, max_age)
    }

    /// The `Set-Cookie` value of cookie `name` (the session cookie, or one of the cookie
    /// store's chunks) holding `value`, with this configuration's attributes.
    pub(crate) fn issue_value(&self, name: &str, value: &str, max_age: Option<Duration>) -> String {
        let mut builder = self.base(name, value);
        if let Some(age) = max_age {
            let age = time::Duration::seconds(age.as_secs().try_into().unwrap_or(i64::MAX));
            builder = builder
                .max_age(age)
                .expires(time::OffsetDateTime::now_utc().saturating_add(age));
        }
        builder.build().to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::IdFormat;

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
            find([header.as_slice()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Id(id.clone(), None)
        );
        let quoted = format!("x=1;id=\"{}\"", id.as_str());
        assert_eq!(
            find([quoted.as_bytes()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Invalid
        );
        assert_eq!(
            find([b"x=1".as_slice()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Absent
        );
        assert_eq!(
            find(
                [b"id=garbage".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native)
            ),
            Presented::Invalid
        );
        assert_eq!(
            find(
                [b"id=\xff".as_slice()],
                "id",
                &Ids::Builtin(IdFormat::Native)
            ),
            Presented::Invalid
        );
        // A bad copy before a good one does not hide it, in one header or across two.
        let two = format!("id=bad; id={}", id.as_str());
        assert_eq!(
            find([two.as_bytes()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Id(id.clone(), None)
        );
        let second = format!("id={}", id.as_str());
        assert_eq!(
            find(
                [b"id=bad".as_slice(), second.as_bytes()],
                "id",
                &Ids::Builtin(IdFormat::Native)
            ),
            Presented::Id(id.clone(), None)
        );
        // The write count after a dot; anything else after one is not ours.
        let counted = format!("id={}.42", id.as_str());
        assert_eq!(
            find([counted.as_bytes()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Id(id.clone(), Some(42))
        );
        for bad in [".", ".x", ".-1", ".99999999999"] {
            let value = format!("id={}{bad}", id.as_str());
            assert_eq!(
                find([value.as_bytes()], "id", &Ids::Builtin(IdFormat::Native)),
                Presented::Invalid,
                "{bad}"
            );
        }
        // Names are compared exactly: `xid` is not `id`.
        assert_eq!(
            find([b"xid=1".as_slice()], "id", &Ids::Builtin(IdFormat::Native)),
            Presented::Absent
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
