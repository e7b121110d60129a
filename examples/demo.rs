//! The demo server: every feature of sessio behind a small HTTP API (see `lib.rs`).
//!
//! ```text
//! cargo run --release --example demo -- --addr 127.0.0.1:3000 --store memory [--ttl S]
//!     [--absolute-ttl S] [--compat sanic-session] [--secure] [--max-sessions-per-user N]
//!     [--codec json|msgpack] [--secondary STORE ...] [--secondary-required]
//! cargo run --release --example demo -- --store cookie --cookie-key KEY [--cookie-key OLDER ...]
//!     [--cookie-max-chunks N]
//! cargo run --release --example demo -- --store cookie --compat sanic-cookies --fernet-key KEY
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sessio::cookie_store::CookieStore;
use sessio::store::WriteThrough;
use sessio::{Codec, Compat};
use sessio_examples::{app, cookie_app, open_store, DemoOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompatArg {
    /// Share sessions with Python's sanic_session.
    SanicSession,
    /// Share cookies with Python's sanic-cookies InCookieEncrypted (with --store cookie).
    SanicCookies,
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
    /// mysql://USER@HOST:PORT/DB (SQL stores: the table is migrated at start) |
    /// cookie (the session sealed in the browser's cookies; needs --cookie-key).
    #[arg(long, default_value = "memory")]
    store: String,
    /// A key of the cookie store: 32 bytes in base64url. The first seals; later ones (older
    /// keys) only open. Repeatable.
    #[arg(long)]
    cookie_key: Vec<String>,
    /// A Fernet key (url-safe base64) for --compat sanic-cookies. Repeatable.
    #[arg(long)]
    fernet_key: Vec<String>,
    /// Most cookies one session may be split over (cookie store).
    #[arg(long)]
    cookie_max_chunks: Option<usize>,
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
        compat: args.compat.map(|compat| match compat {
            CompatArg::SanicSession => Compat::SanicSession,
            CompatArg::SanicCookies => Compat::SanicCookies,
        }),
        secure: args.secure,
        lock_wait: args.lock_wait_ms.map(std::time::Duration::from_millis),
        max_sessions: args.max_sessions,
        max_sessions_per_user: args.max_sessions_per_user,
        codec: match args.codec {
            CodecArg::Json => Codec::Json,
            CodecArg::Msgpack => Codec::MessagePack,
        },
    };
    let router = if args.store == "cookie" {
        if !args.secondary.is_empty() {
            eprintln!("demo: the cookie store keeps nothing on the server, so it has no secondaries; remove --secondary");
            return ExitCode::from(2);
        }
        let store = if args.fernet_key.is_empty() {
            CookieStore::from_base64_keys(&args.cookie_key)
        } else {
            CookieStore::fernet(&args.fernet_key)
        };
        let store = match store {
            Ok(store) => store,
            Err(error) => {
                eprintln!("demo: --store cookie needs --cookie-key KEY (or --fernet-key with --compat sanic-cookies): {error}");
                return ExitCode::from(2);
            }
        };
        let store = match args.cookie_max_chunks {
            Some(max) => store.with_max_chunks(max),
            None => store,
        };
        // A Fernet token names no cookie: the preferences get a key of their own (the
        // native format, whose seal names its cookie), `--cookie-key` if given, else one
        // made for this process.
        let prefs = if !store.is_fernet() {
            Ok(store.clone())
        } else if !args.cookie_key.is_empty() {
            CookieStore::from_base64_keys(&args.cookie_key).map_err(|e| e.to_string())
        } else {
            CookieStore::generate_key()
                .map_err(|e| e.to_string())
                .and_then(|key| CookieStore::from_base64_keys([key]).map_err(|e| e.to_string()))
        };
        prefs.and_then(|prefs| cookie_app(store, prefs, &options).map_err(|e| e.to_string()))
    } else {
        server_app(&args, &options).await
    };
    let router = match router {
        Ok(router) => router,
        Err(message) => {
            eprintln!("demo: {message}");
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

/// The demo on a server-side store (with its secondaries, if any).
async fn server_app(args: &Args, options: &DemoOptions) -> Result<axum::Router, String> {
    if !args.cookie_key.is_empty() || !args.fernet_key.is_empty() {
        return Err("--cookie-key and --fernet-key go with --store cookie".into());
    }
    let mut store = open_store(&args.store, options)
        .await
        .map_err(|e| e.to_string())?;
    if !args.secondary.is_empty() {
        let mut through = WriteThrough::from_arc(store).required(args.secondary_required);
        for spec in &args.secondary {
            let secondary = open_store(spec, options)
                .await
                .map_err(|e| format!("secondary {spec}: {e}"))?;
            through = through.with_secondary_arc(secondary);
        }
        store = std::sync::Arc::new(through);
    }
    app(store, options).map_err(|e| e.to_string())
}
