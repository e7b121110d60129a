//! Baseline for the actix-web rows: the demo's `GET /` on actix-web 4 without sessions,
//! one worker, as the actix peers have. Whatever a session layer costs, an actix-web app
//! with one cannot serve more than this. Usage: `actix_bare_server ADDR`.
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, App, HttpServer};

static COUNT: AtomicU64 = AtomicU64::new(0);

async fn index() -> String {
    (COUNT.fetch_add(1, Ordering::Relaxed) + 1).to_string()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).expect("ADDR");
    HttpServer::new(|| {
        App::new()
            .route("/", web::get().to(index))
            .route("/get/foo", web::get().to(index))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
