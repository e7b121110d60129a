//! Peer: axum_session 0.22 with axum_session_redispool 0.13 (Redis behind its own in-memory
//! tier, defaults otherwise), the demo's `GET /` and `GET /get/foo`.
//! Usage: `axum_session_redis_server ADDR REDIS_URL`.
use axum::{routing::get, Router};
use axum_session::{Session, SessionConfig, SessionLayer, SessionStore};
use axum_session_redispool::SessionRedisPool;
use redis_pool::RedisPool;

async fn index(session: Session<SessionRedisPool>) -> String {
    let n = session.get::<i64>("foo").unwrap_or(0) + 1;
    session.set("foo", n);
    n.to_string()
}

/// The demo's `GET /get/foo`: reads the session, writes nothing.
async fn read(session: Session<SessionRedisPool>) -> String {
    session.get::<i64>("foo").unwrap_or(0).to_string()
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("REDIS_URL");
    let client = redis::Client::open(url).expect("a redis URL");
    let pool = RedisPool::from(client);
    let store = SessionStore::<SessionRedisPool>::new(Some(pool.into()), SessionConfig::default())
        .await
        .expect("connect to redis");
    let app = Router::new()
        .route("/", get(index))
        .route("/get/foo", get(read))
        .layer(SessionLayer::new(store));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
