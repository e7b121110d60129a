//! The driver comparison behind sessio-sql's choice: the statements a keep-cookie request
//! runs on sessio-postgres (a load by key, then a conditional update), through sqlx (what
//! sessio-sql uses) and through tokio-postgres (the other maintained async PostgreSQL
//! driver), each with 16 connections and statements prepared once per connection, with 1
//! and with 32 concurrent callers. Usage: `pg_drivers URL SECONDS`; prints one line per
//! driver and concurrency: `driver callers requests/s`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOAD: &str = "SELECT data, version, expires_at FROM drivers WHERE session_key = $1";
const SAVE: &str = "UPDATE drivers SET data = $2, version = version + 1, expires_at = $3 \
                    WHERE session_key = $1 AND version >= 0";
const KEYS: usize = 256;

fn key(i: usize) -> String {
    format!("session:{i:043}")
}

async fn run<F, Fut>(callers: usize, secs: u64, one: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (one, done) = (one.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = c;
                while Instant::now() < until {
                    one(i % KEYS).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += callers;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().nth(1).expect("URL");
    let secs: u64 = std::env::args().nth(2).map_or(5, |s| s.parse().unwrap());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        // As sessio-sql configures it: no ping before every statement.
        .test_before_acquire(false)
        .connect(&url)
        .await
        .expect("connect with sqlx");
    sqlx::query("DROP TABLE IF EXISTS drivers")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE drivers (session_key TEXT PRIMARY KEY, data BYTEA, version BIGINT, \
         expires_at BIGINT)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for i in 0..KEYS {
        sqlx::query("INSERT INTO drivers VALUES ($1, $2, 1, 0)")
            .bind(key(i))
            .bind(&b"{\"foo\":1}"[..])
            .execute(&pool)
            .await
            .unwrap();
    }
    for callers in [1, 32] {
        let p = pool.clone();
        let rps = run(callers, secs, move |i| {
            let p = p.clone();
            async move {
                let k = key(i);
                let _row: (Vec<u8>, i64, i64) =
                    sqlx::query_as(LOAD).bind(&k).fetch_one(&p).await.unwrap();
                sqlx::query(SAVE)
                    .bind(&k)
                    .bind(&b"{\"foo\":2}"[..])
                    .bind(1_i64)
                    .execute(&p)
                    .await
                    .unwrap();
            }
        })
        .await;
        println!("sqlx {callers} {rps:.0}");
    }
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect with tokio-postgres");
        tokio::spawn(conn);
        let load = client.prepare(LOAD).await.unwrap();
        let save = client.prepare(SAVE).await.unwrap();
        clients.push(Arc::new((client, load, save)));
    }
    let clients = Arc::new(clients);
    for callers in [1, 32] {
        let cs = clients.clone();
        let rps = run(callers, secs, move |i| {
            let c = cs[i % cs.len()].clone();
            async move {
                let (client, load, save) = &*c;
                let k = key(i);
                let _row = client.query_one(load, &[&k]).await.unwrap();
                let data: &[u8] = b"{\"foo\":2}";
                client.execute(save, &[&k, &data, &1_i64]).await.unwrap();
            }
        })
        .await;
        println!("tokio-postgres {callers} {rps:.0}");
    }
}
