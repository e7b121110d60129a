//! # sessio-actix
//!
//! [`sessio`] sessions for actix-web 4: one [`SessionMiddleware`] on the app, one
//! [`Session`] extractor in the handlers. It behaves as sessio-axum does, with the same
//! features (the login guard, named sessions, flash, CSRF, the user's sessions) and the
//! same answers.
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use sessio_actix::{MemoryStore, Session, SessionError, SessionMiddleware};
//!
//! async fn counter(session: Session) -> Result<String, SessionError> {
//!     let n = session.update("foo", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(n.to_string())
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     // One store for every worker: build the middleware once, clone it into each.
//!     let sessions = SessionMiddleware::new(MemoryStore::default());
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/", web::get().to(counter))
//!             .wrap(sessions.clone())
//!     })
//!     .bind("127.0.0.1:8000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! ## What the middleware does
//!
//! Before the handler it reads the session cookie (without touching the store). After the
//! handler it [commits](sessio::Session::commit_cookies): saves what changed, extends the
//! idle timeout of a session that was only read (throttled), and adds `Set-Cookie` only
//! when needed. An untouched session costs no store round trip and no cookie.
//!
//! ## Errors and their responses
//!
//! The status and body come from the engine ([`sessio::Error::status`],
//! [`sessio::Error::public_message`], [`sessio::Error::retry_after`]), so both integrations
//! answer alike: `503` (with `Retry-After: 1` for lock contention) when the store is down
//! or the lock busy, `413` for a session too large, `422` for a value nested too deeply,
//! `501` for a feature the store lacks, `500` otherwise. A bad cookie is not an error: it
//! is a fresh session.
//!
//! A commit that fails replaces the handler's response: a client is never told "ok" for
//! data that was not saved. Handlers return session errors as [`SessionError`] (with `?`),
//! which renders the same mapping; [`SessionMiddleware::on_error`] replaces it for both.
//! If a middleware inside this one fails (answers `Err` rather than a response), nothing
//! is committed: the client gets that error, and nothing it did is saved.
#![warn(missing_docs)]

use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{Error as ActixError, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use actix_web::{HttpResponseBuilder, ResponseError};
use sessio::integration::PlainHttp;

mod login;

pub use login::{LoggedIn, LoginRejection, Unauthenticated};

// What an app names besides this crate's own types: the engine's configuration and the
// modules for logins, typed keys, the user's devices, ids and stores, so that a crate
// depending on this one alone needs no `sessio` line.
#[cfg(feature = "cookie-store")]
pub use sessio::cookie_store;
pub use sessio::{
    self, auth, clock, codec, devices, id, keys, store, Compat, Config, ConfigError, Error,
    MemoryStore, SameSite, SessionLock, SessionManager,
};

/// The session of the current request, as an actix-web extractor. Derefs to
/// [`sessio::Session`], whose methods do the work.
///
/// Extracting it needs a [`SessionMiddleware`] on the app or scope; without one the request
/// fails with `500` and a message saying to add it.
#[derive(Clone, Debug)]
pub struct Session(pub sessio::Session);

impl std::ops::Deref for Session {
    type Target = sessio::Session;
    fn deref(&self) -> &sessio::Session {
        &self.0
    }
}

impl FromRequest for Session {
    type Error = MissingSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(primary(request).map(Session))
    }
}

pub(crate) fn primary(request: &HttpRequest) -> Result<sessio::Session, MissingSessionMiddleware> {
    request
        .extensions()
        .get::<sessio::Session>()
        .cloned()
        .ok_or(MissingSessionMiddleware)
}

/// Rejection of the [`Session`] extractor when no [`SessionMiddleware`] runs on the route.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionMiddleware;

impl std::fmt::Display for MissingSessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no session on this request: add .wrap(SessionMiddleware::new(store)) to the app",
        )
    }
}

impl ResponseError for MissingSessionMiddleware {}

/// A session error returned by a handler, rendered with the middleware's error mapping.
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

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        default_error_response(&self.0)
    }
}

/// The default mapping from a session error to a response (see the crate docs): the
/// status of [`sessio::Error::status`], its public message as the body, and `Retry-After`
/// where retrying soon helps.
pub fn default_error_response(error: &sessio::Error) -> HttpResponse {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponseBuilder::new(status);
    response.insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"));
    if let Some(after) = error.retry_after() {
        response.insert_header((RETRY_AFTER, after.as_secs().max(1)));
    }
    response.body(error.public_message())
}

type ErrorMapper = Arc<dyn Fn(&sessio::Error) -> HttpResponse + Send + Sync>;
pub(crate) type LoginResponder = Arc<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>;

/// The middleware that gives every request a [`Session`] and commits it afterwards.
///
/// Build it once, outside `HttpServer::new`'s closure, and clone it into each worker's
/// app: the clones share one manager and so one store (a [`MemoryStore`] built inside the
/// closure would be one store per worker).
///
/// ```
/// use actix_web::{http::StatusCode, HttpResponse};
/// use sessio_actix::{Config, MemoryStore, SessionMiddleware};
/// use std::time::Duration;
///
/// let config = Config::default()
///     .with_cookie_name("sid")
///     .with_idle_timeout(Duration::from_secs(3600));
/// let sessions = SessionMiddleware::with_config(MemoryStore::default(), config)?
///     .on_error(|error| HttpResponse::ServiceUnavailable().body(format!("try again: {error}")));
/// # Ok::<(), sessio::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    manager: SessionManager,
    on_error: Option<ErrorMapper>,
    on_login_required: Option<LoginResponder>,
    /// Where the request's session goes: as the [`Session`], or as a [`NamedSession`].
    slot: fn(&mut actix_web::dev::Extensions, sessio::Session),
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

fn primary_slot(extensions: &mut actix_web::dev::Extensions, session: sessio::Session) {
    extensions.insert(session);
}

fn named_slot<N: 'static>(extensions: &mut actix_web::dev::Extensions, session: sessio::Session) {
    extensions.insert(Tagged::<N>(session, PhantomData));
}

/// A named session in the request's extensions.
struct Tagged<N>(sessio::Session, PhantomData<fn() -> N>);

impl SessionMiddleware {
    /// A middleware over `store` with the default [`Config`].
    pub fn new(store: impl store::Store) -> Self {
        Self::from_manager(
            SessionManager::new(store, Config::default()).expect("the default config is valid"),
        )
    }

    /// A middleware over `store` with `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the option to change if the options do not fit together.
    pub fn with_config(store: impl store::Store, config: Config) -> Result<Self, ConfigError> {
        Ok(Self::from_manager(SessionManager::new(store, config)?))
    }

    /// A middleware over an existing manager.
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
        F: Fn(&sessio::Error) -> HttpResponse + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(map));
        self
    }

    /// What [`LoggedIn`] answers when nobody is logged in, instead of `401 login
    /// required`: for an HTML app, typically a redirect to the login page.
    ///
    /// ```
    /// use actix_web::{http::header::LOCATION, HttpResponse};
    /// use sessio_actix::{MemoryStore, SessionMiddleware};
    ///
    /// let sessions = SessionMiddleware::new(MemoryStore::default()).on_login_required(|request| {
    ///     let back = request.path().to_owned();
    ///     HttpResponse::SeeOther()
    ///         .insert_header((LOCATION, format!("/login?next={back}")))
    ///         .finish()
    /// });
    /// ```
    pub fn on_login_required<F>(mut self, respond: F) -> Self
    where
        F: Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static,
    {
        self.on_login_required = Some(Arc::new(respond));
        self
    }

    /// Makes this middleware's session a [`NamedSession<N>`] instead of the request's
    /// [`Session`]: a second session beside the main one, with this middleware's store and
    /// config. Give it its own cookie name ([`Config::with_cookie_name`]), and on a store
    /// shared with another session its own key prefix ([`Config::with_key_prefix`]).
    pub fn named<N: 'static>(mut self) -> Self {
        self.slot = named_slot::<N>;
        self
    }

    /// The session manager.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ActixError> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = ActixError;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(SessionService {
            inner: Rc::new(inner),
            middleware: self.clone(),
        }))
    }
}

/// The service made by [`SessionMiddleware`].
pub struct SessionService<S> {
    inner: Rc<S>,
    middleware: SessionMiddleware,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("middleware", &self.middleware)
            .finish_non_exhaustive()
    }
}

/// The marker the login responder travels in, in the request's extensions.
#[derive(Clone)]
pub(crate) struct OnLoginRequired(pub(crate) LoginResponder);

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ActixError> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = ActixError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let headers = request.headers();
        let session = self
            .middleware
            .manager
            .session(headers.get_all(COOKIE).map(HeaderValue::as_bytes));
        let plain_http = if PlainHttp::warned() {
            None
        } else {
            let info = request.connection_info();
            PlainHttp::detect(
                info.scheme() == "https",
                Some(info.host()),
                headers
                    .get_all("x-forwarded-proto")
                    .map(HeaderValue::as_bytes),
                headers.get_all("forwarded").map(HeaderValue::as_bytes),
            )
        };
        {
            let mut extensions = request.extensions_mut();
            (self.middleware.slot)(&mut extensions, session.clone());
            if let Some(respond) = &self.middleware.on_login_required {
                extensions.insert(OnLoginRequired(respond.clone()));
            }
        }
        let inner = Rc::clone(&self.inner);
        let on_error = self.middleware.on_error.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let handler_error =
                response
                    .response()
                    .error()
                    .and_then(session_error_in)
                    .map(|error| {
                        sessio::integration::handler_failed(error);
                        on_error.as_ref().map(|map| map(error))
                    });
            let mut response = match handler_error.flatten() {
                Some(mapped) => response.into_response(mapped.map_into_right_body()),
                None => response.map_into_left_body(),
            };
            match sessio::integration::finish(&session, plain_http.as_ref()).await {
                Ok(cookies) => {
                    for cookie in cookies {
                        if let Ok(value) = HeaderValue::try_from(cookie) {
                            response.headers_mut().append(SET_COOKIE, value);
                        }
                    }
                }
                Err(error) => {
                    let mapped = match &on_error {
                        Some(map) => map(&error),
                        None => default_error_response(&error),
                    };
                    response = response.into_response(mapped.map_into_right_body());
                }
            }
            Ok(response)
        })
    }
}

/// The session error inside a handler's error, if it is one of ours.
fn session_error_in(error: &ActixError) -> Option<&sessio::Error> {
    if let Some(SessionError(error)) = error.as_error::<SessionError>() {
        return Some(error);
    }
    match error.as_error::<LoginRejection>() {
        Some(LoginRejection::Session(SessionError(error))) => Some(error),
        _ => None,
    }
}

/// One more session per request, beside the [`Session`]: its own cookie, config and store
/// (sanic_session's `session_name`), made by a [`SessionMiddleware::named`] middleware and
/// reached by the marker type `N`. Derefs to [`sessio::Session`].
///
/// ```
/// use actix_web::{web, App};
/// use sessio_actix::{Config, MemoryStore, NamedSession, Session, SessionError, SessionMiddleware};
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
///     .with_key_prefix("prefs:")
///     .with_idle_timeout(std::time::Duration::from_secs(365 * 86_400));
/// let prefs = SessionMiddleware::with_config(MemoryStore::default(), prefs)?.named::<Prefs>();
/// let app = App::new()
///     .route("/theme", web::get().to(theme))
///     .wrap(SessionMiddleware::new(MemoryStore::default()))
///     .wrap(prefs);
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

impl<N: 'static> FromRequest for NamedSession<N> {
    type Error = MissingNamedSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Tagged<N>>()
                .map(|tagged| NamedSession(tagged.0.clone(), PhantomData))
                .ok_or(MissingNamedSessionMiddleware {
                    name: std::any::type_name::<N>(),
                }),
        )
    }
}

/// Rejection of [`NamedSession<N>`] when no middleware made with `.named::<N>()` runs on
/// the route: `500`, naming the type.
#[derive(Debug, Clone, Copy)]
pub struct MissingNamedSessionMiddleware {
    name: &'static str,
}

impl std::fmt::Display for MissingNamedSessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no {} session on this request: add .wrap(SessionMiddleware::with_config(store, \
             config)?.named::<{}>()) to the app",
            self.name, self.name
        )
    }
}

impl ResponseError for MissingNamedSessionMiddleware {}
