//! Peer (c): tower-sessions 0.15 with its MemoryStore, same handler as the demo's `GET /`.
use axum::{routing::get, Router};
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

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
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3002".into());
    let layer = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let app = Router::new()
        .route("/", get(index))
        .route("/get/foo", get(read))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
