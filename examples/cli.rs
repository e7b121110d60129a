//! The demo servers' command line: the flags, and the sessions they describe. Both demos
//! (`demo`, on axum, and `demo_actix`) parse the same [`Args`] and build the same
//! [`Managers`]; only the framework differs.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use sessio::cookie_store::CookieStore;
use sessio::store::WriteThrough;
use sessio::{codec::Codec, Compat};

use crate::{open_store, DemoOptions, Managers};

#[derive(Debug, Clone, Copy, ValueEnum)]
/// `--compat`: which Python library to share sessions with.
pub enum CompatArg {
    /// Share sessions with Python's sanic_session.
    SanicSession,
    /// Share cookies with Python's sanic-cookies InCookieEncrypted (with --store cookie).
    SanicCookies,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
/// `--codec`: how session data is written in the store.
pub enum CodecArg {
    /// JSON.
    Json,
    /// MessagePack.
    Msgpack,
}

/// The demo servers' flags (the same for the axum and the actix-web demo).
#[derive(Debug, Parser)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Session store: memory | redis://HOST:PORT | redis+cluster://H1:P1,H2:P2 |
    /// redis+sentinel://H1:P1/MASTER | memcached://HOST:PORT[,HOST:PORT...] |
    /// mongodb://HOST:PORT/DB | postgres://USER@HOST:PORT/DB | sqlite://PATH |
    /// mysql://USER@HOST:PORT/DB (SQL stores: the table is migrated at start) |
    /// cookie (the session sealed in the browser's cookies; needs --cookie-key).
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// A key of the cookie store: 32 bytes in base64url. The first seals; later ones (older
    /// keys) only open. Repeatable.
    #[arg(long)]
    pub cookie_key: Vec<String>,
    /// A Fernet key (url-safe base64) for --compat sanic-cookies. Repeatable.
    #[arg(long)]
    pub fernet_key: Vec<String>,
    /// Most cookies one session may be split over (cookie store).
    #[arg(long)]
    pub cookie_max_chunks: Option<usize>,
    /// Idle timeout in seconds.
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Absolute session lifetime in seconds.
    #[arg(long)]
    pub absolute_ttl: Option<u64>,
    /// Compatibility mode.
    #[arg(long, value_enum)]
    pub compat: Option<CompatArg>,
    /// How session data is written in the store.
    #[arg(long, value_enum, default_value = "json")]
    pub codec: CodecArg,
    /// The session cookie's name (`__Host-id`, say, with --secure); not `prefs`, the
    /// demo's second session's cookie.
    #[arg(long, value_parser = main_cookie_name)]
    pub cookie_name: Option<String>,
    /// Mark the cookie Secure.
    #[arg(long)]
    pub secure: bool,
    /// How long /locked waits for the session lock, in milliseconds.
    #[arg(long)]
    pub lock_wait_ms: Option<u64>,
    /// Most sessions the in-memory store keeps.
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// Most sessions per user: a login past it ends the user's least recently active one.
    #[arg(long)]
    pub max_sessions_per_user: Option<usize>,
    /// A write-only secondary store (any --store value) that receives every save, touch
    /// and delete; repeatable.
    #[arg(long)]
    pub secondary: Vec<String>,
    /// A failing secondary fails the request (503) instead of being logged only.
    #[arg(long)]
    pub secondary_required: bool,
    /// Redis Cluster or Sentinel: every write waits until this many replicas have it
    /// (`WAIT`, 250 ms at most), so that an acknowledged write survives a failover.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub redis_replica_acks: Option<u32>,
    /// Redis: the near cache's budget in bytes (32 MiB by default; 0 turns it off). The
    /// benchmark's cold workload sets it below what its sessions take.
    #[arg(long)]
    pub redis_near_cache: Option<usize>,
    /// Redis: how long, in milliseconds, the near cache may serve an entry after Redis last
    /// confirmed it (1000 by default). The tests set it to a few milliseconds so that most
    /// reads take the path of an entry past its window.
    #[arg(long)]
    pub redis_near_cache_trust_ms: Option<u64>,
    /// Serve the session metrics at `GET /metrics` in Prometheus text format.
    #[arg(long)]
    pub metrics: bool,
    /// Worker threads serving requests (Tokio's for `demo`, actix-web's for `demo_actix`);
    /// one per CPU core by default.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

/// A `--cookie-name` that is not the preferences session's cookie (nor its write count's).
fn main_cookie_name(name: &str) -> Result<String, String> {
    match name {
        "prefs" | "prefs.w" => Err(format!(
            "`{name}` is the cookie of the demo's preferences session; choose another name"
        )),
        _ => Ok(name.to_owned()),
    }
}

impl Args {
    /// The session options these flags describe.
    pub fn options(&self) -> DemoOptions {
        DemoOptions {
            ttl: self.ttl,
            absolute_ttl: self.absolute_ttl,
            compat: self.compat.map(|compat| match compat {
                CompatArg::SanicSession => Compat::SanicSession,
                CompatArg::SanicCookies => Compat::SanicCookies,
            }),
            secure: self.secure,
            lock_wait: self.lock_wait_ms.map(std::time::Duration::from_millis),
            max_sessions: self.max_sessions,
            max_sessions_per_user: self.max_sessions_per_user,
            cookie_name: self.cookie_name.clone(),
            redis_replica_acks: self.redis_replica_acks,
            redis_near_cache: self.redis_near_cache,
            redis_near_cache_trust: self
                .redis_near_cache_trust_ms
                .map(std::time::Duration::from_millis),
            codec: match self.codec {
                CodecArg::Json => Codec::Json,
                CodecArg::Msgpack => Codec::MessagePack,
            },
        }
    }

    /// The demo's sessions: on the cookie store, or on the server-side store (with its
    /// secondaries, if any).
    ///
    /// # Errors
    /// What is wrong with the flags, said for the user.
    pub async fn managers(&self) -> Result<Managers, String> {
        let options = self.options();
        if self.store != "cookie" {
            return self.server_managers(&options).await;
        }
        if !self.secondary.is_empty() {
            return Err("the cookie store keeps nothing on the server, so it has no secondaries; remove --secondary".into());
        }
        let store = if self.fernet_key.is_empty() {
            CookieStore::from_base64_keys(&self.cookie_key)
        } else {
            CookieStore::fernet(&self.fernet_key)
        };
        let store = store.map_err(|error| format!("--store cookie needs --cookie-key KEY (or --fernet-key with --compat sanic-cookies): {error}"))?;
        let store = match self.cookie_max_chunks {
            Some(max) => store.with_max_chunks(max),
            None => store,
        };
        // A Fernet token names no cookie: the preferences get a key of their own (the
        // native format, whose seal names its cookie), `--cookie-key` if given, else one
        // made for this process.
        let prefs = if !store.is_fernet() {
            store.clone()
        } else if !self.cookie_key.is_empty() {
            CookieStore::from_base64_keys(&self.cookie_key).map_err(|e| e.to_string())?
        } else {
            let key = CookieStore::generate_key().map_err(|e| e.to_string())?;
            CookieStore::from_base64_keys([key]).map_err(|e| e.to_string())?
        };
        Managers::cookie(store, prefs, &options).map_err(|e| e.to_string())
    }

    async fn server_managers(&self, options: &DemoOptions) -> Result<Managers, String> {
        if !self.cookie_key.is_empty() || !self.fernet_key.is_empty() {
            return Err("--cookie-key and --fernet-key go with --store cookie".into());
        }
        let mut store = open_store(&self.store, options)
            .await
            .map_err(|e| e.to_string())?;
        if !self.secondary.is_empty() {
            let mut through = WriteThrough::from_arc(store).required(self.secondary_required);
            for spec in &self.secondary {
                let secondary = open_store(spec, options)
                    .await
                    .map_err(|e| format!("secondary {spec}: {e}"))?;
                through = through.with_secondary_arc(secondary);
            }
            store = std::sync::Arc::new(through);
        }
        Managers::new(store, options).map_err(|e| e.to_string())
    }
}

/// Logs to stderr, at `warn` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}

/// The `Content-Type` of `GET /metrics`: Prometheus's text exposition format, version 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// With `--metrics`: installs the Prometheus recorder, and returns the handle that renders
/// `GET /metrics`.
///
/// # Errors
/// If a recorder is installed already.
pub fn install_metrics(
    args: &Args,
) -> Result<Option<metrics_exporter_prometheus::PrometheusHandle>, String> {
    if !args.metrics {
        return Ok(None);
    }
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map(Some)
        .map_err(|e| format!("--metrics: {e}"))
}
