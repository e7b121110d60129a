//! sessio-actix with sessio-redis on the smallest actix-web app: one route (the demo's
//! `GET /` handler), one session middleware and one worker, the same shape as the
//! actix-session peer (`actix_redis_server`), so the comparison is of the session layers
//! rather than of the apps. Usage: `sessio_actix_redis_server ADDR REDIS_URL`.
use actix_web::{web, App, HttpServer};
use sessio_actix::{Config, Session, SessionError, SessionMiddleware};
use sessio_redis::RedisStore;

async fn index(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

/// The demo's `GET /get/foo`: reads the session, writes nothing.
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<i64>("foo").await?.unwrap_or(0).to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("REDIS_URL");
    let store = RedisStore::connect(&url).await.expect("connect to redis");
    let sessions = SessionMiddleware::with_config(store, Config::default().with_secure(false))
        .expect("a valid config");
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
            .route("/get/foo", web::get().to(read))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
