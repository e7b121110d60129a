//! Peer: axum_session 0.20 with axum_session_sqlx 0.9 (PostgreSQL or SQLite, behind axum_session's
//! own in-memory tier, defaults otherwise), the demo's `GET /`.
//! Usage: `axum_session_sql_server ADDR URL`, URL `postgres://…` or `sqlite://PATH`.
use axum::{routing::get, Router};
use axum_session_020::{DatabasePool, Session, SessionConfig, SessionLayer, SessionStore};
use axum_session_sqlx::{SessionPgPool, SessionSqlitePool};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

async fn index<P: DatabasePool + Clone + std::fmt::Debug + Sync + Send + 'static>(
    session: Session<P>,
) -> String {
    let n = session.get::<i64>("foo").unwrap_or(0) + 1;
    session.set("foo", n);
    n.to_string()
}

/// Its defaults, but a table name of its own: sessio-sql's table, in the same database, is
/// also called `sessions`.
fn config() -> SessionConfig {
    SessionConfig::default().with_table_name("axum_sessions")
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
        let store = SessionStore::<SessionPgPool>::new(Some(pool.into()), config())
            .await
            .expect("set up the sessions table");
        Router::new()
            .route("/", get(index::<SessionPgPool>))
            .layer(SessionLayer::new(store))
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
        let store = SessionStore::<SessionSqlitePool>::new(Some(pool.into()), config())
            .await
            .expect("set up the sessions table");
        Router::new()
            .route("/", get(index::<SessionSqlitePool>))
            .layer(SessionLayer::new(store))
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
