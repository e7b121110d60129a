//! sanic_session's hello world in Rust: a counter kept in the session, on the in-memory
//! store.
//!
//! ```text
//! cargo run --example counter
//! curl -c jar -b jar localhost:8000/    # 1
//! curl -c jar -b jar localhost:8000/    # 2
//! ```

use axum::{routing::get, Router};
use sessio_axum::{MemoryStore, Session, SessionError, SessionLayer};

async fn index(session: Session) -> Result<String, SessionError> {
    // An atomic read-modify-write of one key: two tabs counting at once lose no visit
    // (a `get` then an `insert` could).
    let count = session
        .update("foo", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(count.to_string())
}

#[tokio::main]
async fn main() {
    let app = Router::new()
        .route("/", get(index))
        .layer(SessionLayer::new(MemoryStore::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000")
        .await
        .expect("port 8000 is free");
    println!("counter listening on http://127.0.0.1:8000");
    axum::serve(listener, app).await.expect("server runs");
}
