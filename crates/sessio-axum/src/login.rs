//! The login guard: [`LoggedIn`], and what it answers when nobody is logged in.

use std::sync::Arc;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::{MissingSessionLayer, SessionError};

/// The logged-in user of the request (see [`sessio::Session::login`]), as an extractor: a
/// handler that takes it runs only when someone is logged in.
///
/// Otherwise the request is answered with a [`LoginRejection`]: `401 login required` (or
/// what [`SessionLayer::on_login_required`](crate::SessionLayer::on_login_required)
/// answers, such as a redirect to the login page), `503` if the session store is down.
/// `OPTIONS` requests are exempt from the check: a CORS preflight carries no cookie, so
/// it is answered `204 No Content` rather than `401`, without running the handler.
///
/// ```
/// use axum::{routing::get, Router};
/// use sessio_axum::{LoggedIn, MemoryStore, SessionLayer};
///
/// async fn me(LoggedIn(user): LoggedIn<String>) -> String {
///     format!("hello, {user}")
/// }
///
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(SessionLayer::new(MemoryStore::default()));
/// ```
///
/// With the app's own error type: take `Result<LoggedIn<U>, LoginRejection>` and convert
/// the rejection with `?`.
///
/// ```
/// use axum::response::{IntoResponse, Redirect, Response};
/// use sessio_axum::{LoggedIn, LoginRejection};
///
/// enum AppError {
///     LoginFirst,
///     Session(Response),
/// }
///
/// impl From<LoginRejection> for AppError {
///     fn from(rejection: LoginRejection) -> Self {
///         match rejection {
///             LoginRejection::Unauthenticated(_) => AppError::LoginFirst,
///             other => AppError::Session(other.into_response()),
///         }
///     }
/// }
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         match self {
///             AppError::LoginFirst => Redirect::to("/login").into_response(),
///             AppError::Session(response) => response,
///         }
///     }
/// }
///
/// async fn account(user: Result<LoggedIn<u64>, LoginRejection>) -> Result<String, AppError> {
///     let LoggedIn(id) = user?;
///     Ok(format!("account {id}"))
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(account);
/// ```
#[derive(Debug, Clone)]
pub struct LoggedIn<U>(pub U);

/// Why [`LoggedIn`] did not extract. Each variant knows its response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRejection {
    /// Nobody is logged in. The response is `401 login required`, or the one
    /// [`SessionLayer::on_login_required`](crate::SessionLayer::on_login_required) made.
    #[error("login required")]
    Unauthenticated(Response),
    /// An `OPTIONS` request (a CORS preflight): `204 No Content`, never a `401`.
    #[error("a preflight request is not checked")]
    Preflight,
    /// The session could not be read (the store is down, or the stored user is not a
    /// `U`); answered with the layer's error mapping.
    #[error("{0}")]
    Session(#[source] SessionError),
    /// No [`SessionLayer`](crate::SessionLayer) runs on the route: `500`, saying so.
    #[error("no SessionLayer on this route")]
    MissingLayer(MissingSessionLayer),
}

impl IntoResponse for LoginRejection {
    fn into_response(self) -> Response {
        match self {
            LoginRejection::Unauthenticated(response) => response,
            LoginRejection::Preflight => StatusCode::NO_CONTENT.into_response(),
            LoginRejection::Session(error) => error.into_response(),
            LoginRejection::MissingLayer(missing) => missing.into_response(),
        }
    }
}

/// What the layer answers when nobody is logged in; put in each request's extensions.
#[derive(Clone)]
pub(crate) struct OnLoginRequired(pub(crate) Arc<dyn Fn(&Parts) -> Response + Send + Sync>);

/// The default answer when nobody is logged in.
fn unauthenticated() -> Response {
    (StatusCode::UNAUTHORIZED, "login required").into_response()
}

impl<U, S> FromRequestParts<S> for LoggedIn<U>
where
    U: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = LoginRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.method == Method::OPTIONS {
            return Err(LoginRejection::Preflight);
        }
        let session = parts
            .extensions
            .get::<sessio::Session>()
            .cloned()
            .ok_or(LoginRejection::MissingLayer(MissingSessionLayer))?;
        match session.current_user::<U>().await {
            Ok(Some(user)) => Ok(LoggedIn(user)),
            Ok(None) => Err(LoginRejection::Unauthenticated(
                match parts.extensions.get::<OnLoginRequired>() {
                    Some(OnLoginRequired(respond)) => respond(parts),
                    None => unauthenticated(),
                },
            )),
            Err(error) => Err(LoginRejection::Session(SessionError(error))),
        }
    }
}
