//! Peer: tower-sessions 0.14 with tower-sessions-sqlx-store 0.15 (PostgreSQL or SQLite),
//! same handler as the demo's `GET /`. Usage: `tower_sessions_sql_server ADDR URL`, URL
//! `postgres://…` or `sqlite://PATH`.
use axum::{routing::get, Router};
use tower_sessions_014::{Session, SessionManagerLayer};
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous,
};
use tower_sessions_sqlx_store::sqlx::{postgres::PgPoolOptions, sqlite::SqlitePoolOptions};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

async fn index(session: Session) -> String {
    let n = session.get::<i64>("foo").await.unwrap().unwrap_or(0) + 1;
    session.insert("foo", n).await.unwrap();
    n.to_string()
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url = std::env::args().nth(2).expect("URL");
    let app = if url.starts_with("postgres") {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(&url)
            .await
            .expect("connect to PostgreSQL");
        let store = PostgresStore::new(pool);
        store.migrate().await.expect("migrate");
        Router::new()
            .route("/", get(index))
            .layer(SessionManagerLayer::new(store).with_secure(false))
    } else {
        let options: SqliteConnectOptions = url.parse().expect("a sqlite URL");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                // The settings sessio-sqlite uses, so both rows pay for the same durability.
                options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
            .expect("open the SQLite file");
        let store = SqliteStore::new(pool);
        store.migrate().await.expect("migrate");
        Router::new()
            .route("/", get(index))
            .layer(SessionManagerLayer::new(store).with_secure(false))
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
