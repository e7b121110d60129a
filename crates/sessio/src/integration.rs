//! What every framework integration (sessio-axum, sessio-actix) shares beyond
//! [`Session`](crate::Session) and [`Error`](crate::Error)'s own status and body
//! ([`Error::status`](crate::Error::status), [`Error::public_message`](crate::Error::public_message),
//! [`Error::retry_after`](crate::Error::retry_after)): the check that a `Secure` cookie is
//! not silently going out over plain HTTP.
//!
//! An integration calls [`PlainHttp::detect`] before the handler (it is one atomic load
//! once the warning was given) and [`PlainHttp::warn_if_secure`] on each `Set-Cookie` value
//! it sends.
//!
//! ```
//! use sessio::integration::PlainHttp;
//!
//! let plain = PlainHttp::detect(false, Some("example.com:8080"), [], []);
//! assert_eq!(plain.as_ref().map(PlainHttp::host), Some("example.com"));
//! // Browsers accept Secure cookies over plain HTTP on this machine: no warning there.
//! assert!(PlainHttp::detect(false, Some("localhost:3000"), [], []).is_none());
//! // A proxy that terminated TLS says so.
//! assert!(PlainHttp::detect(false, Some("example.com"), [&b"https"[..]], []).is_none());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the warning was given (then no request is looked at for it again).
static WARNED: AtomicBool = AtomicBool::new(false);

/// A request that nothing says came over HTTPS, to a host that is not this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainHttp {
    host: String,
}

impl PlainHttp {
    /// Looks at a request: `https_scheme` is whether its URI said `https`; `authority` its
    /// URI's host or its `Host` header; `x_forwarded_proto` and `forwarded` the values of
    /// those headers. `None` when the request came over HTTPS (directly or as the proxy
    /// says), went to `localhost` or a loopback address, or once the warning was given.
    pub fn detect<'a>(
        https_scheme: bool,
        authority: Option<&str>,
        x_forwarded_proto: impl IntoIterator<Item = &'a [u8]>,
        forwarded: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Self> {
        if WARNED.load(Ordering::Relaxed) || https_scheme {
            return None;
        }
        let says_https = x_forwarded_proto.into_iter().any(|v| {
            v.split(|&b| b == b',')
                .any(|p| p.trim_ascii().eq_ignore_ascii_case(b"https"))
        }) || forwarded.into_iter().any(|v| {
            v.windows(11)
                .any(|w| w.eq_ignore_ascii_case(b"proto=https"))
        });
        if says_https {
            return None;
        }
        let authority = authority?;
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let local = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!local && !host.is_empty()).then(|| Self {
            host: host.to_owned(),
        })
    }

    /// Whether the warning was given already: then [`detect`](Self::detect) answers `None`
    /// whatever it is told, and an integration may skip gathering its arguments.
    pub fn warned() -> bool {
        WARNED.load(Ordering::Relaxed)
    }

    /// The host the request was sent to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Logs a warning, once per process, if `set_cookie` (a `Set-Cookie` value) has the
    /// `Secure` attribute: browsers drop such cookies over plain HTTP, so sessions would not
    /// stick, and the warning says what to change.
    pub fn warn_if_secure(&self, set_cookie: &str) {
        let secure = set_cookie
            .split(';')
            .skip(1)
            .any(|a| a.trim().eq_ignore_ascii_case("secure"));
        if secure && !WARNED.swap(true, Ordering::Relaxed) {
            let host = self.host.as_str();
            tracing::warn!(
                host,
                "the session cookie is marked Secure, but this request to {host} came over plain \
                 HTTP (no https scheme, no X-Forwarded-Proto: https): browsers drop such cookies, \
                 so sessions will not stick. Serve HTTPS, have the proxy send X-Forwarded-Proto, \
                 or turn the attribute off for local development (Config::with_secure(false)); \
                 said once"
            );
        }
    }
}
