//! What every framework integration (sessio-axum, sessio-actix) shares beyond
//! [`Session`] and [`Error`]'s own status and body
//! ([`Error::status`](crate::Error::status), [`Error::public_message`](crate::Error::public_message),
//! [`Error::retry_after`](crate::Error::retry_after)): the end of a request ([`finish`]),
//! and the check that a `Secure` cookie is not silently going out over plain HTTP
//! ([`PlainHttp`]).
//!
//! An integration calls [`PlainHttp::detect`] before the handler (it is one atomic load
//! once the warning was given), and [`finish`] after it: it appends the `Set-Cookie`
//! values that `finish` returns, or answers with the error it returns instead of the
//! handler's response (a client is never told "ok" for data that was not saved).
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

use crate::error::Error;
use crate::session::Session;

/// Logs a session error that a handler answered with: as `info` for
/// [`Error::Superseded`] (a browser's request that raced its own login, which it retries),
/// as `warn` otherwise. Integrations call it once per such answer; [`finish`] logs the
/// commit's own errors.
pub fn handler_failed(error: &Error) {
    if matches!(error, Error::Superseded) {
        tracing::info!(%error, "a handler answered with a refused request");
    } else {
        tracing::warn!(%error, "a handler answered with a session error");
    }
}

/// Ends a request's `session`: commits it ([`Session::commit_cookies`]) and returns the
/// `Set-Cookie` values the response must carry, each a valid header value, with the
/// plain-HTTP warning given if `plain` says so. On an error the response must be replaced
/// by one for the error; it is logged here (as `info` for [`Error::Superseded`], a
/// browser's request that raced its own login and is retried, as `error` otherwise).
///
/// ```
/// use sessio::{Config, MemoryStore, SessionManager};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = SessionManager::new(MemoryStore::default(), Config::default())?;
/// let session = manager.session(std::iter::empty());
/// session.insert("n", 1).await?;
/// let set_cookies = sessio::integration::finish(&session, None).await?;
/// assert!(set_cookies[0].starts_with("id="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// As [`Session::commit_cookies`].
pub async fn finish(session: &Session, plain: Option<&PlainHttp>) -> Result<Vec<String>, Error> {
    match session.commit_cookies().await {
        Ok(mut cookies) => {
            cookies.retain(|cookie| {
                // Always true of the cookies sessio writes; checked so that no integration
                // has to handle a header it cannot build.
                let valid = cookie
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
                if !valid {
                    tracing::error!("a session cookie is not a valid header value; it is not sent");
                }
                valid
            });
            if let Some(plain) = plain {
                cookies
                    .iter()
                    .for_each(|cookie| plain.warn_if_secure(cookie));
            }
            Ok(cookies)
        }
        Err(error) => {
            if matches!(error, Error::Superseded) {
                tracing::info!(%error, "request refused; answering with an error");
            } else {
                tracing::error!(%error, "session not saved; answering with an error");
            }
            Err(error)
        }
    }
}

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
