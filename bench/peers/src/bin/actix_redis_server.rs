//! Peer: actix-web 4 with actix-session 0.11's RedisSessionStore, same handler as the demo's
//! `GET /`. Usage: `actix_redis_server ADDR REDIS_URL`.
use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let n = session.get::<i64>("foo")?.unwrap_or(0) + 1;
    session.insert("foo", n)?;
    Ok(n.to_string())
}

/// The demo's `GET /get/foo`: reads the session, writes nothing.
async fn read(session: Session) -> actix_web::Result<String> {
    Ok(session.get::<i64>("foo")?.unwrap_or(0).to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("REDIS_URL");
    let store = RedisSessionStore::new(url).await.expect("connect to redis");
    let key = Key::generate();
    HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/", web::get().to(index))
            .route("/get/foo", web::get().to(read))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
