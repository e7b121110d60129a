//! sessio's encrypted cookie store on the smallest axum app: one route (the demo's `GET /`
//! handler) and one session layer, the same shape as the actix-session peer, so the
//! comparison is of the session layers rather than of the apps. Usage:
//! `sessio_cookie_server ADDR`.
use axum::{routing::get, Router};
use sessio::cookie_store::CookieStore;
use sessio_axum::{Config, Session, SessionError, SessionLayer, SessionManager};

async fn index(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let key = CookieStore::generate_key().expect("a random key");
    let store = CookieStore::from_base64_keys([key]).expect("a key");
    let manager = SessionManager::with_cookie_store(store, Config::default().with_secure(false))
        .expect("a cookie-store manager");
    let app = Router::new()
        .route("/", get(index))
        .layer(SessionLayer::from_manager(manager));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
