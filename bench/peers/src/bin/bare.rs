//! Baseline (a): the demo's `GET /` without sessions. Prints nothing per request.
use std::sync::atomic::{AtomicU64, Ordering};

use axum::{routing::get, Router};

static COUNT: AtomicU64 = AtomicU64::new(0);

async fn index() -> String {
    (COUNT.fetch_add(1, Ordering::Relaxed) + 1).to_string()
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".into());
    // `GET /get/foo` too, the read-mostly workload's reads.
    let app = Router::new()
        .route("/", get(index))
        .route("/get/foo", get(index));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
