//! Peer: tower-sessions 0.14 with tower-sessions-redis-store 0.16 (fred), same handler as
//! the demo's `GET /`. Usage: `tower_sessions_redis_server ADDR REDIS_URL`.
use axum::{routing::get, Router};
use tower_sessions_014::{Session, SessionManagerLayer};
use tower_sessions_redis_store::fred::prelude::*;
use tower_sessions_redis_store::RedisStore;

async fn index(session: Session) -> String {
    let n = session.get::<i64>("foo").await.unwrap().unwrap_or(0) + 1;
    session.insert("foo", n).await.unwrap();
    n.to_string()
}

/// The demo's `GET /get/foo`: reads the session, writes nothing.
async fn read(session: Session) -> String {
    let n = session.get::<i64>("foo").await.unwrap().unwrap_or(0);
    n.to_string()
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("REDIS_URL");
    let config = Config::from_url(&url).expect("a redis URL");
    let pool = Pool::new(config, None, None, None, 4).expect("a fred pool");
    let _task = pool.connect();
    pool.wait_for_connect().await.expect("connect to redis");
    let layer = SessionManagerLayer::new(RedisStore::new(pool)).with_secure(false);
    let app = Router::new()
        .route("/", get(index))
        .route("/get/foo", get(read))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
