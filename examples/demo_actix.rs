//! The demo server on actix-web 4 with sessio-actix: the same routes, flags and answers as
//! `demo` (axum), so one HTTP contract suite runs against both.
//!
//! ```text
//! cargo run --release --example demo_actix -- --addr 127.0.0.1:3000 --store redis://127.0.0.1:6379
//! ```

use std::process::ExitCode;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use sessio_examples::actix::{configure, middlewares};
use sessio_examples::cli::{init_tracing, install_metrics, Args, PROMETHEUS_TEXT};

fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    actix_web::rt::System::new().block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    // The recorder first: the managers export their counters at 0 when they are built.
    let metrics = match install_metrics(&args) {
        Ok(metrics) => metrics,
        Err(message) => {
            eprintln!("demo_actix: {message}");
            return ExitCode::from(2);
        }
    };
    let managers = match args.managers().await {
        Ok(managers) => managers,
        Err(message) => {
            eprintln!("demo_actix: {message}");
            return ExitCode::from(2);
        }
    };
    // Built once: every worker's app shares these managers, and so one store.
    let (session, prefs) = middlewares(&managers);
    let server = HttpServer::new(move || {
        // Outside the session middlewares: a scrape neither reads nor makes a session.
        let metrics = metrics.clone();
        App::new()
            // axum's default body limit (2 MiB) rather than actix-web's 256 KiB, so both demos
            // take the same PUT bodies.
            .app_data(web::PayloadConfig::new(2 << 20))
            .service(web::resource("/metrics").get(move || {
                let body = metrics.as_ref().map(|h| h.render());
                async move {
                    match body {
                        Some(body) => HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(body),
                        None => HttpResponse::NotFound().body("start with --metrics\n"),
                    }
                }
            }))
            .service(
                web::scope("")
                    .configure(configure)
                    .wrap(session.clone())
                    .wrap(prefs.clone()),
            )
    });
    let server = match args.workers {
        Some(workers) => server.workers(workers.into()),
        None => server,
    };
    let server = match server.bind(args.addr) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("demo_actix: cannot listen on {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = server.addrs().first().copied().unwrap_or(args.addr);
    // Tests and the benchmark read this line to learn the port (with --addr 127.0.0.1:0).
    println!("demo listening on http://{addr}");
    if let Err(error) = server.run().await {
        eprintln!("demo_actix: server failed: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
