//! Peer: actix-web 4 with actix-session 0.11's CookieSessionStore (the session encrypted
//! in the cookie, its default "private" content security), same handler as the demo's
//! `GET /`. Usage: `actix_cookie_server ADDR`.
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let n = session.get::<i64>("foo")?.unwrap_or(0) + 1;
    session.insert("foo", n)?;
    Ok(n.to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).expect("ADDR");
    let key = Key::generate();
    HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/", web::get().to(index))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
