//! The demo's routes on actix-web, over the same [`routes`] as the axum
//! router: each handler extracts its inputs with sessio-actix's extractors and calls it.

use actix_web::http::header::USER_AGENT;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use sessio_actix::{LoggedIn, NamedSession, Session, SessionError, SessionMiddleware};

use crate::routes::{self, Hold, LoginQuery, Reply};
use crate::{Managers, Prefs};

/// The demo's middlewares: the main session, and the preferences as a named session. Wrap
/// the app in both (`.wrap(main).wrap(prefs)`).
pub fn middlewares(managers: &Managers) -> (SessionMiddleware, SessionMiddleware) {
    (
        SessionMiddleware::from_manager(managers.session.clone()),
        SessionMiddleware::from_manager(managers.prefs.clone()).named::<Prefs>(),
    )
}

/// Registers the demo's routes (the contract in `lib.rs`). Every GET route answers HEAD
/// too, as axum's do.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .get(increment)
                .route(web::head().to(increment)),
        )
        .service(
            web::resource("/get/{key}")
                .get(get_key)
                .route(web::head().to(get_key)),
        )
        .service(web::resource("/set/{key}").put(set_key))
        .service(web::resource("/clear").post(clear))
        .service(web::resource("/rotate").post(rotate))
        .service(
            web::resource("/locked")
                .get(locked)
                .route(web::head().to(locked)),
        )
        .service(web::resource("/login/{user}").post(login))
        // OPTIONS reaches the guard, which exempts it (a CORS preflight carries no cookie).
        .service(
            web::resource("/me")
                .get(me)
                .route(web::head().to(me))
                .route(web::method(Method::OPTIONS).to(me)),
        )
        .service(web::resource("/logout").post(logout))
        .service(
            web::resource("/flash")
                .post(add_flash)
                .get(take_flashes)
                .route(web::head().to(take_flashes)),
        )
        .service(
            web::resource("/csrf")
                .get(csrf_token)
                .route(web::head().to(csrf_token)),
        )
        .service(web::resource("/transfer").post(transfer))
        .service(
            web::resource("/prefs/{key}")
                .get(get_pref)
                .route(web::head().to(get_pref))
                .put(set_pref),
        )
        .service(
            web::resource("/sessions")
                .get(list_sessions)
                .route(web::head().to(list_sessions)),
        )
        .service(web::resource("/sessions/revoke-others").post(revoke_others))
        .service(web::resource("/sessions/{handle}").delete(revoke_session));
}

/// A reply as an actix-web response.
fn answer(reply: Reply) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK))
        .content_type(reply.content_type)
        .body(reply.body)
}

type Handled = Result<HttpResponse, SessionError>;

async fn increment(session: Session) -> Handled {
    Ok(answer(routes::increment(&session).await?))
}

async fn get_key(session: Session, key: web::Path<String>) -> Handled {
    Ok(answer(routes::get_key(&session, &key).await?))
}

/// The request body, or the contract's answer to one that cannot be read.
fn body_or_reply(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, Reply> {
    body.map_err(|error| {
        let status = error.as_response_error().status_code().as_u16();
        routes::unreadable_body(status)
    })
}

async fn set_key(
    session: Session,
    key: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(answer(reply)),
    };
    Ok(answer(routes::set_key(&session, &key, &body).await?))
}

async fn get_pref(prefs: NamedSession<Prefs>, key: web::Path<String>) -> Handled {
    Ok(answer(routes::get_key(&prefs, &key).await?))
}

async fn set_pref(
    prefs: NamedSession<Prefs>,
    key: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(answer(reply)),
    };
    Ok(answer(routes::set_key(&prefs, &key, &body).await?))
}

async fn clear(session: Session) -> Handled {
    Ok(answer(routes::clear(&session).await?))
}

async fn rotate(session: Session) -> Handled {
    Ok(answer(routes::rotate(&session).await?))
}

async fn locked(session: Session, hold: web::Query<Hold>) -> Handled {
    Ok(answer(routes::locked(&session, &hold).await?))
}

async fn login(
    session: Session,
    user: web::Path<String>,
    query: web::Query<LoginQuery>,
    request: HttpRequest,
) -> Handled {
    let agent = request.headers().get(USER_AGENT).map(|v| v.as_bytes());
    Ok(answer(routes::login(&session, &user, &query, agent).await?))
}

async fn me(LoggedIn(user): LoggedIn<String>) -> String {
    user
}

async fn logout(session: Session) -> Handled {
    Ok(answer(routes::logout(&session).await?))
}

async fn add_flash(session: Session, body: Result<web::Bytes, actix_web::Error>) -> Handled {
    let body = match body_or_reply(body) {
        Ok(body) => body,
        Err(reply) => return Ok(answer(reply)),
    };
    Ok(answer(routes::add_flash(&session, &body).await?))
}

async fn take_flashes(session: Session) -> Handled {
    Ok(answer(routes::take_flashes(&session).await?))
}

async fn csrf_token(session: Session) -> Handled {
    Ok(answer(routes::csrf_token(&session).await?))
}

async fn transfer(session: Session, request: HttpRequest) -> Handled {
    let presented = request.headers().get("x-csrf-token").map(|v| v.as_bytes());
    Ok(answer(routes::transfer(&session, presented).await?))
}

async fn list_sessions(LoggedIn(_): LoggedIn<String>, session: Session) -> Handled {
    Ok(answer(routes::list_sessions(&session).await?))
}

async fn revoke_others(LoggedIn(_): LoggedIn<String>, session: Session) -> Handled {
    Ok(answer(routes::revoke_others(&session).await?))
}

async fn revoke_session(
    LoggedIn(_): LoggedIn<String>,
    session: Session,
    handle: web::Path<String>,
) -> Handled {
    Ok(answer(routes::revoke_session(&session, &handle).await?))
}
