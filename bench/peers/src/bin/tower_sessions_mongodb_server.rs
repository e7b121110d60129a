//! Peer: tower-sessions 0.11 with tower-sessions-mongodb-store 0.11 (the newest; mongodb
//! driver 2), same handler as the demo's `GET /`. Usage:
//! `tower_sessions_mongodb_server ADDR MONGODB_URL DATABASE`.
use axum::{routing::get, Extension, Router};
use tower_sessions_011::{Session, SessionManagerLayer};
use tower_sessions_mongodb_store::{mongodb::Client, MongoDBStore};

// tower-sessions 0.11 implements its extractor for axum 0.7; under axum 0.8 the session
// is taken from the request's extensions, where its layer puts it (what that extractor does).
async fn index(Extension(session): Extension<Session>) -> String {
    let n = session.get::<i64>("foo").await.unwrap().unwrap_or(0) + 1;
    session.insert("foo", n).await.unwrap();
    n.to_string()
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("MONGODB_URL");
    let database = std::env::args().nth(3).expect("DATABASE");
    let client = Client::with_uri_str(&url).await.expect("a MongoDB client");
    let layer = SessionManagerLayer::new(MongoDBStore::new(client, database)).with_secure(false);
    let app = Router::new().route("/", get(index)).layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
