//! An experiment beside `sessio_actix_redis_server`: the same one-route app, but the Redis
//! store is connected lazily by the first request on each actix-web worker, on that
//! worker's own runtime, so that the request, sessio-redis's batching task and the
//! connection's reader run on one thread. (Connected in `main`, they run on actix's main
//! thread, and every Redis call crosses threads twice.) Its row measures what that
//! crossing costs. Usage: `sessio_actix_redis_per_worker ADDR REDIS_URL`.
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use async_trait::async_trait;
use sessio::store::{Loaded, Outcome, StoreResult, Version};
use sessio_actix::store::Store;
use sessio_actix::{Config, Session, SessionError, SessionMiddleware};
use sessio_redis::RedisStore;

async fn index(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

/// A Redis store connected on first use, on the runtime of that use.
struct OnFirstUse {
    url: Arc<str>,
    store: tokio::sync::OnceCell<RedisStore>,
}

impl OnFirstUse {
    async fn get(&self) -> &RedisStore {
        self.store
            .get_or_init(|| async {
                RedisStore::connect(&self.url)
                    .await
                    .expect("connect to redis")
            })
            .await
    }
}

#[async_trait]
impl Store for OnFirstUse {
    async fn load(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.get().await.load(key).await
    }
    async fn create(&self, key: &str, data: &[u8], ttl: Duration) -> StoreResult<Outcome<Version>> {
        self.get().await.create(key, data, ttl).await
    }
    async fn save(
        &self,
        key: &str,
        expected: &Loaded,
        data: &[u8],
        ttl: Duration,
    ) -> StoreResult<Outcome<Version>> {
        self.get().await.save(key, expected, data, ttl).await
    }
    async fn delete_if(&self, key: &str, expected: &Loaded) -> StoreResult<Outcome<()>> {
        self.get().await.delete_if(key, expected).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.get().await.delete(key).await
    }
    async fn touch(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.get().await.touch(key, ttl).await
    }
    async fn load_fresh(&self, key: &str) -> StoreResult<Option<Loaded>> {
        self.get().await.load_fresh(key).await
    }
    /// As a default `RedisStore` (its near cache is on), known before it connects.
    fn serves_from_cache(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "redis"
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).expect("ADDR");
    let url: Arc<str> = std::env::args().nth(2).expect("REDIS_URL").into();
    HttpServer::new(move || {
        let store = OnFirstUse {
            url: url.clone(),
            store: tokio::sync::OnceCell::new(),
        };
        let sessions = SessionMiddleware::with_config(store, Config::default().with_secure(false))
            .expect("a valid config");
        App::new().wrap(sessions).route("/", web::get().to(index))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
