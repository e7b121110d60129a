//! The demo server on axum: every feature of sessio behind a small HTTP API (see `lib.rs`;
//! `demo_actix` serves the same routes and flags on actix-web).
//!
//! ```text
//! cargo run --release --example demo -- --addr 127.0.0.1:3000 --store memory [--ttl S]
//!     [--absolute-ttl S] [--compat sanic-session] [--secure] [--max-sessions-per-user N]
//!     [--codec json|msgpack] [--secondary STORE ...] [--secondary-required] [--metrics]
//! cargo run --release --example demo -- --store cookie --cookie-key KEY [--cookie-key OLDER ...]
//!     [--cookie-max-chunks N]
//! cargo run --release --example demo -- --store cookie --compat sanic-cookies --fernet-key KEY
//! ```

use std::process::ExitCode;

use clap::Parser;
use sessio_examples::cli::{init_tracing, install_metrics, Args, PROMETHEUS_TEXT};
use sessio_examples::routes;

fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers.into());
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(serve(args)),
        Err(error) => {
            eprintln!("demo: cannot start the Tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> ExitCode {
    // The recorder first: the managers export their counters at 0 when they are built.
    let metrics = match install_metrics(&args) {
        Ok(metrics) => metrics,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    let managers = match args.managers().await {
        Ok(managers) => managers,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    let mut router = routes(managers);
    if let Some(handle) = metrics {
        // Outside the session layers: a scrape neither reads nor makes a session.
        router = router.route(
            "/metrics",
            axum::routing::get(move || {
                let headers = [(axum::http::header::CONTENT_TYPE, PROMETHEUS_TEXT)];
                std::future::ready((headers, handle.render()))
            }),
        );
    }
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("demo: cannot listen on {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.addr);
    // Tests and the benchmark read this line to learn the port (with --addr 127.0.0.1:0).
    println!("demo listening on http://{addr}");
    if let Err(error) = axum::serve(listener, router).await {
        eprintln!("demo: server failed: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
