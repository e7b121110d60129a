//! What each of the demo's routes does, written once over [`sessio::Session`] and plain
//! inputs, so the axum demo and the actix-web demo serve exactly the same contract. Each
//! framework's handlers only extract their inputs, call these, and turn the [`Reply`] into
//! their response type.

use std::time::Duration;

use serde::Deserialize;
use sessio::auth::Login;
use sessio::{Error, Session};

/// A framework-neutral response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `200` with a text body.
    pub fn ok(body: impl Into<String>) -> Self {
        Self::text(200, body)
    }

    /// A text body with `status`.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    /// `200` with `value` as JSON.
    pub fn json(value: &impl serde::Serialize) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
}

/// `/get`, `/set` and `/prefs` name keys from the URL: the keys of sessio's helpers are
/// not theirs to touch (writing `_user` would be logging in as anyone).
fn reserved(key: &str) -> Option<Reply> {
    sessio::keys::is_reserved(key)
        .then(|| Reply::text(403, "keys starting with '_' belong to sessio's helpers\n"))
}

/// `GET /`: increments `foo` atomically. A `foo` of another type (written through
/// `/set/foo`) is a handler error (500): the demo shows how such errors are answered.
pub async fn increment(session: &Session) -> Result<Reply, Error> {
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0).saturating_add(1))
        .await?;
    Ok(Reply::ok(n.to_string()))
}

/// `GET /get/{key}` (and `GET /prefs/{key}` on the preferences).
pub async fn get_key(session: &Session, key: &str) -> Result<Reply, Error> {
    if let Some(refused) = reserved(key) {
        return Ok(refused);
    }
    Ok(match session.get_value(key).await? {
        Some(value) => Reply::json(&value),
        None => Reply::text(404, "no such key\n"),
    })
}

/// `PUT /set/{key}` (and `PUT /prefs/{key}`): the body is a JSON value.
pub async fn set_key(session: &Session, key: &str, body: &[u8]) -> Result<Reply, Error> {
    if let Some(refused) = reserved(key) {
        return Ok(refused);
    }
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => return Ok(Reply::text(400, format!("invalid JSON: {error}\n"))),
    };
    session.insert(key, &value).await?;
    Ok(Reply::ok("ok"))
}

/// `POST /clear`.
pub async fn clear(session: &Session) -> Result<Reply, Error> {
    session.clear().await?;
    Ok(Reply::ok("ok"))
}

/// `POST /rotate`.
pub async fn rotate(session: &Session) -> Result<Reply, Error> {
    session.cycle_id().await?;
    Ok(Reply::ok("ok"))
}

/// Query of `/locked`.
#[derive(Debug, Default, Deserialize)]
pub struct Hold {
    /// How long to hold the lock, in milliseconds (at most a minute).
    #[serde(default)]
    pub hold_ms: u64,
    /// What to do inside the locked section after the increment: `rotate` (a login inside
    /// the lock) or `logout`.
    #[serde(default)]
    pub then: Option<String>,
}

/// `GET /locked`: under the session lock, read `locked`, hold, write it + 1.
pub async fn locked(session: &Session, hold: &Hold) -> Result<Reply, Error> {
    let guard = session.lock().await?;
    let n = guard
        .get::<i64>("locked")
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    tokio::time::sleep(Duration::from_millis(hold.hold_ms.min(60_000))).await;
    guard.insert("locked", &n).await?;
    match hold.then.as_deref() {
        Some("rotate") => guard.cycle_id().await?,
        Some("logout") => guard.destroy().await?,
        _ => {}
    }
    guard.unlock().await?;
    Ok(Reply::ok(n.to_string()))
}

/// The longest login `duration` the demo takes: 400 days, the most a browser keeps a
/// cookie.
pub const MAX_LOGIN_SECONDS: u64 = 400 * 24 * 3600;

/// The query of `POST /login/{user}`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// `1`: a persistent cookie; `0`: one that dies with the browser.
    pub remember: Option<u8>,
    /// This login's idle timeout, in seconds.
    pub duration: Option<u64>,
}

/// `POST /login/{user}`; `user_agent` labels the login in `/sessions`.
pub async fn login(
    session: &Session,
    user: &str,
    query: &LoginQuery,
    user_agent: Option<&[u8]>,
) -> Result<Reply, Error> {
    let mut login = Login::new();
    if let Some(agent) = user_agent {
        // Not every User-Agent is ASCII; keep what it says.
        login = login.label(String::from_utf8_lossy(agent));
    }
    if let Some(remember) = query.remember {
        login = login.remember(remember != 0);
    }
    if let Some(seconds) = query.duration {
        if seconds > MAX_LOGIN_SECONDS {
            return Ok(Reply::text(
                400,
                format!("duration is at most {MAX_LOGIN_SECONDS} seconds (400 days)\n"),
            ));
        }
        login = login.idle(Duration::from_secs(seconds.max(1)));
    }
    session.login_with(user, login).await?;
    Ok(Reply::ok("ok"))
}

/// `POST /logout`.
pub async fn logout(session: &Session) -> Result<Reply, Error> {
    session.logout().await?;
    Ok(Reply::ok("ok"))
}

/// `POST /flash`: the body is the message (UTF-8 text).
pub async fn add_flash(session: &Session, body: &[u8]) -> Result<Reply, Error> {
    let Ok(message) = std::str::from_utf8(body) else {
        return Ok(Reply::text(400, "the flash message is not UTF-8 text\n"));
    };
    session.flash(message).await?;
    Ok(Reply::ok("ok"))
}

/// The answer to a request whose body the framework could not read (`status` is its
/// status): over the 2 MiB limit (413), or cut short (400).
pub fn unreadable_body(status: u16) -> Reply {
    match status {
        413 => Reply::text(413, "request body over the demo's limit of 2 MiB\n"),
        400..=499 => Reply::text(status, "the request body could not be read\n"),
        _ => Reply::text(400, "the request body could not be read\n"),
    }
}

/// `GET /flash`: the messages since the last `GET /flash`.
pub async fn take_flashes(session: &Session) -> Result<Reply, Error> {
    Ok(Reply::json(&session.take_flashes::<String>().await?))
}

/// `GET /csrf`.
pub async fn csrf_token(session: &Session) -> Result<Reply, Error> {
    Ok(Reply::ok(session.csrf_token().await?))
}

/// `POST /transfer`: `presented` is the `X-CSRF-Token` header.
pub async fn transfer(session: &Session, presented: Option<&[u8]>) -> Result<Reply, Error> {
    let presented = presented
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or_default();
    Ok(if session.verify_csrf(presented).await? {
        Reply::ok("ok")
    } else {
        Reply::text(403, "missing or wrong X-CSRF-Token\n")
    })
}

/// One of the user's sessions, as `GET /sessions` shows it.
#[derive(Debug, serde::Serialize)]
struct Device {
    handle: String,
    current: bool,
    created: u64,
    last_seen: u64,
    label: Option<String>,
}

fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /sessions` (behind the login guard).
pub async fn list_sessions(session: &Session) -> Result<Reply, Error> {
    let devices: Vec<Device> = session
        .devices()
        .await?
        .into_iter()
        .map(|s| Device {
            created: unix_seconds(s.created),
            last_seen: unix_seconds(s.last_seen),
            handle: s.handle,
            current: s.current,
            label: s.label,
        })
        .collect();
    Ok(Reply::json(&devices))
}

/// `POST /sessions/revoke-others` (behind the login guard).
pub async fn revoke_others(session: &Session) -> Result<Reply, Error> {
    Ok(Reply::ok(format!("{}\n", session.revoke_others().await?)))
}

/// `DELETE /sessions/{handle}` (behind the login guard).
pub async fn revoke_session(session: &Session, handle: &str) -> Result<Reply, Error> {
    Ok(if session.revoke(handle).await? {
        Reply::ok("ok")
    } else {
        Reply::text(404, "no such session of yours\n")
    })
}
