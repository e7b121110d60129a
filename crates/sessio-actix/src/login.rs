//! The login guard: [`LoggedIn`], and what it answers when nobody is logged in.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use crate::{primary, LoginResponder, MissingSessionMiddleware, OnLoginRequired, SessionError};

/// The logged-in user of the request (see [`sessio::Session::login`]), as an extractor: a
/// handler that takes it runs only when someone is logged in.
///
/// Otherwise the request is answered with a [`LoginRejection`]: `401 login required` (or
/// what [`SessionMiddleware::on_login_required`](crate::SessionMiddleware::on_login_required) answers), `503` if the session store is
/// down. `OPTIONS` requests (CORS preflights, which carry no cookie) are answered `204 No
/// Content` without running the handler.
///
/// ```
/// use actix_web::{web, App};
/// use sessio_actix::{LoggedIn, MemoryStore, SessionMiddleware};
///
/// async fn me(LoggedIn(user): LoggedIn<String>) -> String {
///     format!("hello, {user}")
/// }
///
/// let app = App::new()
///     .route("/me", web::get().to(me))
///     .wrap(SessionMiddleware::new(MemoryStore::default()));
/// ```
#[derive(Debug, Clone)]
pub struct LoggedIn<U>(pub U);

/// Why [`LoggedIn`] did not extract. Each variant knows its response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRejection {
    /// Nobody is logged in: `401 login required`, or what
    /// [`SessionMiddleware::on_login_required`](crate::SessionMiddleware::on_login_required) answers.
    #[error("login required")]
    Unauthenticated(Unauthenticated),
    /// An `OPTIONS` request (a CORS preflight): `204 No Content`, never a `401`.
    #[error("a preflight request is not checked")]
    Preflight,
    /// The session could not be read (the store is down, or the stored user is not a
    /// `U`); answered with the middleware's error mapping.
    #[error("{0}")]
    Session(#[source] SessionError),
    /// No [`SessionMiddleware`](crate::SessionMiddleware) runs on the route: `500`, saying so.
    #[error("{0}")]
    MissingMiddleware(MissingSessionMiddleware),
}

/// The request nobody is logged in on, and what answers it.
pub struct Unauthenticated {
    request: HttpRequest,
    respond: Option<LoginResponder>,
}

impl std::fmt::Debug for Unauthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unauthenticated")
            .field("path", &self.request.path())
            .finish_non_exhaustive()
    }
}

impl ResponseError for LoginRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            LoginRejection::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            LoginRejection::Preflight => StatusCode::NO_CONTENT,
            LoginRejection::Session(error) => error.status_code(),
            LoginRejection::MissingMiddleware(missing) => missing.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            LoginRejection::Unauthenticated(Unauthenticated { request, respond }) => {
                match respond {
                    Some(respond) => respond(request),
                    None => HttpResponse::Unauthorized()
                        .content_type("text/plain; charset=utf-8")
                        .body("login required"),
                }
            }
            LoginRejection::Preflight => HttpResponse::NoContent().finish(),
            LoginRejection::Session(error) => error.error_response(),
            LoginRejection::MissingMiddleware(missing) => missing.error_response(),
        }
    }
}

impl<U: DeserializeOwned + 'static> FromRequest for LoggedIn<U> {
    type Error = LoginRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, LoginRejection>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            if request.method() == Method::OPTIONS {
                return Err(LoginRejection::Preflight);
            }
            let session = primary(&request).map_err(LoginRejection::MissingMiddleware)?;
            match session.current_user::<U>().await {
                Ok(Some(user)) => Ok(LoggedIn(user)),
                Ok(None) => {
                    let respond = request
                        .extensions()
                        .get::<OnLoginRequired>()
                        .map(|OnLoginRequired(respond)| respond.clone());
                    Err(LoginRejection::Unauthenticated(Unauthenticated {
                        request,
                        respond,
                    }))
                }
                Err(error) => Err(LoginRejection::Session(SessionError(error))),
            }
        })
    }
}
