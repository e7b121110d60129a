//! The demo server: every feature of sessio behind a small HTTP API (see `lib.rs`).
//!
//! ```text
//! cargo run --release --example demo -- --addr 127.0.0.1:3000 --store memory [--ttl S]
//!     [--absolute-ttl S] [--compat sanic-session] [--secure] [--max-sessions-per-user N]
//!     [--codec json|msgpack] [--secondary STORE ...] [--secondary-required]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sessio::store::WriteThrough;
use sessio::{Codec, Compat};
use sessio_examples::{app, open_store, DemoOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompatArg {
    /// Share sessions with Python's sanic_session.
    SanicSession,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CodecArg {
    /// JSON.
    Json,
    /// MessagePack.
    Msgpack,
}

/// sessio demo server.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Session store: memory | redis://HOST:PORT | redis+cluster://H1:P1,H2:P2 |
    /// redis+sentinel://H1:P1/MASTER | memcached://HOST:PORT[,HOST:PORT...] |
    /// mongodb://HOST:PORT/DB | postgres://USER@HOST:PORT/DB | sqlite://PATH |
    /// mysql://USER@HOST:PORT/DB (SQL stores: the table is migrated at start).
    #[arg(long, default_value = "memory")]
    store: String,
    /// Idle timeout in seconds.
    #[arg(long)]
    ttl: Option<u64>,
    /// Absolute session lifetime in seconds.
    #[arg(long)]
    absolute_ttl: Option<u64>,
    /// Compatibility mode.
    #[arg(long, value_enum)]
    compat: Option<CompatArg>,
    /// How session data is written in the store.
    #[arg(long, value_enum, default_value = "json")]
    codec: CodecArg,
    /// Mark the cookie Secure.
    #[arg(long)]
    secure: bool,
    /// How long /locked waits for the session lock, in milliseconds.
    #[arg(long)]
    lock_wait_ms: Option<u64>,
    /// Most sessions the in-memory store keeps.
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Most sessions per user: a login past it ends the user's least recently active one.
    #[arg(long)]
    max_sessions_per_user: Option<usize>,
    /// A write-only secondary store (any --store value) that receives every save, touch
    /// and delete; repeatable.
    #[arg(long)]
    secondary: Vec<String>,
    /// A failing secondary fails the request (503) instead of being logged only.
    #[arg(long)]
    secondary_required: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let options = DemoOptions {
        ttl: args.ttl,
        absolute_ttl: args.absolute_ttl,
        compat: args
            .compat
            .map(|CompatArg::SanicSession| Compat::SanicSession),
        secure: args.secure,
        lock_wait: args.lock_wait_ms.map(std::time::Duration::from_millis),
        max_sessions: args.max_sessions,
        max_sessions_per_user: args.max_sessions_per_user,
        codec: match args.codec {
            CodecArg::Json => Codec::Json,
            CodecArg::Msgpack => Codec::MessagePack,
        },
    };
    let mut store = match open_store(&args.store, &options).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("demo: {error}");
            return ExitCode::from(2);
        }
    };
    if !args.secondary.is_empty() {
        let mut through = WriteThrough::from_arc(store).required(args.secondary_required);
        for spec in &args.secondary {
            match open_store(spec, &options).await {
                Ok(secondary) => through = through.with_secondary_arc(secondary),
                Err(error) => {
                    eprintln!("demo: secondary {spec}: {error}");
                    return ExitCode::from(2);
                }
            }
        }
        store = std::sync::Arc::new(through);
    }
    let router = match app(store, &options) {
        Ok(router) => router,
        Err(error) => {
            eprintln!("demo: {error}");
            return ExitCode::from(2);
        }
    };
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
