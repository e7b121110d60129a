//! # sessio-axum
//!
//! [`sessio`] sessions for axum and any tower stack: one [`SessionLayer`] on the router,
//! one [`Session`] extractor in the handlers.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use sessio_axum::{MemoryStore, Session, SessionError, SessionLayer};
//!
//! async fn counter(session: Session) -> Result<String, SessionError> {
//!     let n = session.update("foo", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(n.to_string())
//! }
//!
//! # async fn run() {
//! let app = Router::new()
//!     .route("/", get(counter))
//!     .layer(SessionLayer::new(MemoryStore::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! New here? Read the [guide]: login, remember-me, the guard, flash, CSRF, errors.
//!
//! ## What the layer does
//!
//! Before the handler it reads the session cookie (without touching the store). After the
//! handler it [commits](sessio::Session::commit): saves what changed, extends the idle
//! timeout of a session that was only read (throttled), and adds a `Set-Cookie` only when
//! needed: a new or rotated id, a renewed persistent cookie, or the removal of an emptied
//! or destroyed session. An untouched session costs no store round trip and no cookie.
//!
//! ## Errors and their responses
//!
//! | error | default response |
//! |---|---|
//! | store unavailable / timed out / full ([`sessio::Error::Store`]) | `503` `session store unavailable`, no `Set-Cookie` |
//! | lock wait timeout, lease lost, too much contention | `503` with `Retry-After: 1` |
//! | a session over the size limit ([`sessio::Error::TooLarge`]) | `413` `session too large` |
//! | a value nested too deeply to read back ([`sessio::Error::TooDeep`]) | `422` |
//! | a feature the store or configuration lacks ([`sessio::Error::LockUnsupported`], [`sessio::Error::DevicesOff`]) | `501` |
//! | a value that does not (de)serialize | `500` |
//! | garbage, oversized, forged or unknown cookie | not an error: a fresh session |
//!
//! A commit that fails replaces the handler's response: a client is never told "ok" for
//! data that was not saved. Handlers return session errors as [`SessionError`] (with `?`),
//! which renders the same mapping. Replace the mapping with [`SessionLayer::on_error`]; it
//! applies to both.
#![warn(missing_docs)]

pub mod guide;
mod login;

/// The README's code blocks, compiled as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::header::{HeaderValue, COOKIE, HOST, RETRY_AFTER, SET_COOKIE};
use http::request::Parts;
use http::{Request, StatusCode};
use sessio::integration::PlainHttp;
use tower_layer::Layer;
use tower_service::Service;

pub use login::{LoggedIn, LoginRejection};
// What an app names besides this crate's own types: the engine's configuration and the
// modules for logins, typed keys, the user's devices, ids and stores, so that a crate
// depending on this one alone needs no `sessio` line.
#[cfg(feature = "cookie-store")]
pub use sessio::cookie_store;
pub use sessio::{
    self, auth, clock, codec, devices, id, keys, store, Compat, Config, ConfigError, Error,
    MemoryStore, SameSite, SessionLock, SessionManager,
};

/// The session of the current request, as an axum extractor. Derefs to
/// [`sessio::Session`], whose methods do the work.
///
/// Extracting it needs a [`SessionLayer`] on the route; without one the request fails
/// with `500` and a message saying to add it.
#[derive(Clone, Debug)]
pub struct Session(pub sessio::Session);

impl std::ops::Deref for Session {
    type Target = sessio::Session;
    fn deref(&self) -> &sessio::Session {
        &self.0
    }
}

/// Rejection of the [`Session`] extractor when no [`SessionLayer`] runs on the route.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no session on this request: add .layer(SessionLayer::new(store)) to the router",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<sessio::Session>()
            .cloned()
            .map(Session)
            .ok_or(MissingSessionLayer)
    }
}

/// A session error returned by a handler, rendered with the layer's error mapping.
///
/// `?` converts a [`sessio::Error`] into it.
#[derive(Debug)]
pub struct SessionError(pub sessio::Error);

impl From<sessio::Error> for SessionError {
    fn from(error: sessio::Error) -> Self {
        Self(error)
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Marks a response made from a [`SessionError`], so the layer can apply its own mapping.
#[derive(Clone)]
struct HandlerError(Arc<sessio::Error>);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let error = Arc::new(self.0);
        let mut response = default_error_response(&error);
        response.extensions_mut().insert(HandlerError(error));
        response
    }
}

/// The default mapping from a session error to a response (see the crate docs): the
/// status of [`sessio::Error::status`], its public message as the body, and `Retry-After`
/// where retrying soon helps.
pub fn default_error_response(error: &sessio::Error) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, error.public_message()).into_response();
    if let Some(after) = error.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    response
}

type ErrorMapper = Arc<dyn Fn(&sessio::Error) -> Response + Send + Sync>;

/// The tower layer that gives every request a [`Session`] and commits it afterwards.
///
/// ```
/// use sessio_axum::{Config, MemoryStore, SessionLayer};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let config = Config::default()
///     .with_cookie_name("sid")
///     .with_idle_timeout(Duration::from_secs(3600));
/// let layer = SessionLayer::with_config(MemoryStore::default(), config)?
///     .on_error(|error| {
///         (http::StatusCode::SERVICE_UNAVAILABLE, format!("try again: {error}")).into_response()
///     });
/// # use axum_core::response::IntoResponse;
/// # Ok::<(), sessio::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    manager: SessionManager,
    on_error: Option<ErrorMapper>,
    on_login_required: Option<login::OnLoginRequired>,
    /// Where the request's session goes: as the [`Session`], or as a [`NamedSession`].
    slot: fn(&mut http::Extensions, sessio::Session),
}

fn primary_slot(extensions: &mut http::Extensions, session: sessio::Session) {
    extensions.insert(session);
}

fn named_slot<N: 'static>(extensions: &mut http::Extensions, session: sessio::Session) {
    extensions.insert(Tagged::<N>(session, PhantomData));
}

/// A named session in the request's extensions.
struct Tagged<N>(sessio::Session, PhantomData<fn() -> N>);

impl<N> Clone for Tagged<N> {
    fn clone(&self) -> Self {
        Tagged(self.0.clone(), PhantomData)
    }
}

/// One more session per request, beside the [`Session`]: its own cookie, config and store
/// (sanic_session's `session_name`), made by a [`SessionLayer::named`] layer and reached
/// by the marker type `N`. Derefs to [`sessio::Session`].
///
/// ```
/// use axum::{routing::get, Router};
/// use sessio_axum::{Config, MemoryStore, NamedSession, Session, SessionError, SessionLayer};
///
/// /// Preferences: kept a year, not ended by a logout.
/// struct Prefs;
///
/// async fn theme(prefs: NamedSession<Prefs>, session: Session) -> Result<String, SessionError> {
///     session.logout().await?; // ends the main session only
///     Ok(prefs.get::<String>("theme").await?.unwrap_or_else(|| "light".into()))
/// }
///
/// # fn main() -> Result<(), sessio::ConfigError> {
/// let prefs = Config::default()
///     .with_cookie_name("prefs")
///     .with_key_prefix("prefs:") // needed when the store is shared with the main session
///     .with_idle_timeout(std::time::Duration::from_secs(365 * 86_400));
/// let app: Router = Router::new()
///     .route("/theme", get(theme))
///     .layer(SessionLayer::new(MemoryStore::default()))
///     .layer(SessionLayer::with_config(MemoryStore::default(), prefs)?.named::<Prefs>());
/// # Ok(()) }
/// ```
pub struct NamedSession<N>(pub sessio::Session, PhantomData<fn() -> N>);

impl<N> Clone for NamedSession<N> {
    fn clone(&self) -> Self {
        NamedSession(self.0.clone(), PhantomData)
    }
}

impl<N> std::fmt::Debug for NamedSession<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NamedSession")
            .field(&std::any::type_name::<N>())
            .finish()
    }
}

impl<N> std::ops::Deref for NamedSession<N> {
    type Target = sessio::Session;
    fn deref(&self) -> &sessio::Session {
        &self.0
    }
}

/// Rejection of [`NamedSession<N>`] when no layer made with `.named::<N>()` runs on the
/// route: `500`, naming the type.
#[derive(Debug, Clone, Copy)]
pub struct MissingNamedSessionLayer {
    name: &'static str,
}

impl IntoResponse for MissingNamedSessionLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "no {} session on this request: add .layer(SessionLayer::with_config(store, \
                 config)?.named::<{}>()) to the router",
                self.name, self.name
            ),
        )
            .into_response()
    }
}

impl<N: 'static, S: Send + Sync> FromRequestParts<S> for NamedSession<N> {
    type Rejection = MissingNamedSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Tagged<N>>()
            .map(|tagged| NamedSession(tagged.0.clone(), PhantomData))
            .ok_or(MissingNamedSessionLayer {
                name: std::any::type_name::<N>(),
            })
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store` with the default [`Config`].
    pub fn new(store: impl store::Store) -> Self {
        Self::from_manager(
            SessionManager::new(store, Config::default()).expect("the default config is valid"),
        )
    }

    /// A layer over `store` with `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the option to change if the options do not fit together.
    pub fn with_config(store: impl store::Store, config: Config) -> Result<Self, ConfigError> {
        Ok(Self::from_manager(SessionManager::new(store, config)?))
    }

    /// A layer over an existing manager.
    pub fn from_manager(manager: SessionManager) -> Self {
        Self {
            manager,
            on_error: None,
            on_login_required: None,
            slot: primary_slot,
        }
    }

    /// Replaces the default error mapping ([`default_error_response`]) for errors of the
    /// commit and for [`SessionError`]s returned by handlers.
    pub fn on_error<F>(mut self, map: F) -> Self
    where
        F: Fn(&sessio::Error) -> Response + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(map));
        self
    }

    /// What [`LoggedIn`] answers when nobody is logged in, instead of `401 login
    /// required`: for an HTML app, typically a redirect to the login page.
    ///
    /// ```
    /// use axum::response::{IntoResponse, Redirect};
    /// use sessio_axum::{MemoryStore, SessionLayer};
    ///
    /// let layer = SessionLayer::new(MemoryStore::default()).on_login_required(|request| {
    ///     let back = request.uri.path().to_owned();
    ///     Redirect::to(&format!("/login?next={back}")).into_response()
    /// });
    /// ```
    pub fn on_login_required<F>(mut self, respond: F) -> Self
    where
        F: Fn(&Parts) -> Response + Send + Sync + 'static,
    {
        self.on_login_required = Some(login::OnLoginRequired(Arc::new(respond)));
        self
    }

    /// Makes this layer's session a [`NamedSession<N>`] instead of the request's
    /// [`Session`]: a second session beside the main one, with this layer's store and
    /// config. Give it its own cookie name ([`Config::with_cookie_name`]): two sessions
    /// under one cookie name would overwrite each other's cookie. On a store shared with
    /// another session, give it its own key prefix too ([`Config::with_key_prefix`]):
    /// otherwise one session's cookie, sent under the other's name, opens that session.
    pub fn named<N: 'static>(mut self) -> Self {
        self.slot = named_slot::<N>;
        self
    }

    /// The session manager.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let cookies = request
            .headers()
            .get_all(COOKIE)
            .iter()
            .map(|v| v.as_bytes());
        let session = self.layer.manager.session(cookies);
        let plain_http = plain_http(&request);
        (self.layer.slot)(request.extensions_mut(), session.clone());
        if let Some(respond) = &self.layer.on_login_required {
            request.extensions_mut().insert(respond.clone());
        }
        // The clone that was made ready goes into the future; keep a fresh one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let on_error = self.layer.on_error.clone();
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if let Some(HandlerError(error)) = response.extensions_mut().remove::<HandlerError>() {
                sessio::integration::handler_failed(&error);
                if let Some(map) = &on_error {
                    response = map(&error);
                }
            }
            match sessio::integration::finish(&session, plain_http.as_ref()).await {
                Ok(cookies) => {
                    for cookie in cookies {
                        if let Ok(value) = HeaderValue::try_from(cookie) {
                            response.headers_mut().append(SET_COOKIE, value);
                        }
                    }
                }
                Err(error) => {
                    response = match &on_error {
                        Some(map) => map(&error),
                        None => default_error_response(&error),
                    };
                }
            }
            Ok(response)
        })
    }
}

/// The request, if it came over plain HTTP to another machine (see [`PlainHttp`]).
fn plain_http<B>(request: &Request<B>) -> Option<PlainHttp> {
    let headers = request.headers();
    let values = |name| headers.get_all(name).iter().map(HeaderValue::as_bytes);
    PlainHttp::detect(
        request.uri().scheme_str() == Some("https"),
        request
            .uri()
            .host()
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok())),
        values("x-forwarded-proto"),
        values("forwarded"),
    )
}
