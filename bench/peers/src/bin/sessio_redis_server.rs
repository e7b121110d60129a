//! sessio-axum with sessio-redis on the smallest axum app: the demo's `GET /` and
//! `GET /get/foo` handlers and one session layer, the shape of the tower-sessions and
//! axum_session peers (the demo itself has seventeen routes and a second session layer),
//! so the comparison is of the session layers rather than of the apps.
//! Usage: `sessio_redis_server ADDR REDIS_URL [NEAR_CACHE_BYTES]`.
use axum::{routing::get, Router};
use sessio_axum::{Config, Session, SessionError, SessionLayer};
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

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("REDIS_URL");
    let mut builder = RedisStore::builder();
    if let Some(bytes) = std::env::args().nth(3) {
        builder = builder.near_cache(bytes.parse().expect("NEAR_CACHE_BYTES"));
    }
    let store = builder.connect(&url).await.expect("connect to redis");
    let layer = SessionLayer::with_config(store, Config::default().with_secure(false))
        .expect("a valid config");
    let app = Router::new()
        .route("/", get(index))
        .route("/get/foo", get(read))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
