//! The driver comparison behind sessio-sql's SQLite backend: the statements a keep-cookie
//! request runs (a load by key, then a conditional update) on one WAL database file, with
//! 4 connections and statements prepared once per connection, with 1 and 32 concurrent
//! callers, through sqlx (its own worker thread per connection), through rusqlite on
//! `spawn_blocking`, and through rusqlite on 4 threads that each own a connection and share
//! one queue (what sessio-sql does). Usage: `sqlite_drivers PATH SECONDS`; prints one line
//! per driver and concurrency: `driver callers requests/s`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOAD: &str = "SELECT data, version, expires_at FROM drivers WHERE session_key = ?1";
const SAVE: &str = "UPDATE drivers SET data = ?2, version = version + 1, expires_at = ?3 \
                    WHERE session_key = ?1 AND version >= 0";
const KEYS: usize = 256;
const CONNECTIONS: usize = 4;

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

fn open(path: &str) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(1)).unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c
}

fn load(c: &rusqlite::Connection, k: &str) -> (Vec<u8>, i64, i64) {
    c.prepare_cached(LOAD)
        .unwrap()
        .query_row([k], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
}

fn save(c: &rusqlite::Connection, k: &str) {
    c.prepare_cached(SAVE)
        .unwrap()
        .execute(rusqlite::params![k, &b"{\"foo\":2}"[..], 1_i64])
        .unwrap();
}

type Job = Box<dyn FnOnce(&rusqlite::Connection) + Send>;

async fn on_worker<T: Send + 'static>(
    jobs: &flume::Sender<Job>,
    f: impl FnOnce(&rusqlite::Connection) -> T + Send + 'static,
) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    jobs.send(Box::new(move |c| {
        let _ = tx.send(f(c));
    }))
    .unwrap();
    rx.await.unwrap()
}

type Pool = Arc<(Mutex<Vec<rusqlite::Connection>>, tokio::sync::Semaphore)>;

async fn on_blocking<T: Send + 'static>(
    pool: &Pool,
    f: impl FnOnce(&rusqlite::Connection) -> T + Send + 'static,
) -> T {
    let _permit = pool.1.acquire().await.unwrap();
    let c = pool.0.lock().unwrap().pop().unwrap();
    let (c, out) = tokio::task::spawn_blocking(move || {
        let out = f(&c);
        (c, out)
    })
    .await
    .unwrap();
    pool.0.lock().unwrap().push(c);
    out
}

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).expect("PATH");
    let secs: u64 = std::env::args().nth(2).map_or(5, |s| s.parse().unwrap());
    let _ = std::fs::remove_file(&path);
    let options: sqlx::sqlite::SqliteConnectOptions = format!("sqlite://{path}").parse().unwrap();
    let options = options
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(1));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(CONNECTIONS as u32)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .expect("open with sqlx");
    sqlx::query(
        "CREATE TABLE drivers (session_key TEXT PRIMARY KEY, data BLOB, version BIGINT, \
         expires_at BIGINT)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for i in 0..KEYS {
        sqlx::query("INSERT INTO drivers VALUES (?1, ?2, 1, 0)")
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
    let blocking: Pool = Arc::new((
        Mutex::new((0..CONNECTIONS).map(|_| open(&path)).collect()),
        tokio::sync::Semaphore::new(CONNECTIONS),
    ));
    for callers in [1, 32] {
        let p = blocking.clone();
        let rps = run(callers, secs, move |i| {
            let p = p.clone();
            async move {
                let (k, k2) = (key(i), key(i));
                let _row = on_blocking(&p, move |c| load(c, &k)).await;
                on_blocking(&p, move |c| save(c, &k2)).await;
            }
        })
        .await;
        println!("rusqlite-spawn_blocking {callers} {rps:.0}");
    }
    let (jobs, queue) = flume::unbounded::<Job>();
    for _ in 0..CONNECTIONS {
        let (queue, c) = (queue.clone(), open(&path));
        std::thread::spawn(move || {
            while let Ok(job) = queue.recv() {
                job(&c);
            }
        });
    }
    for callers in [1, 32] {
        let jobs = jobs.clone();
        let rps = run(callers, secs, move |i| {
            let jobs = jobs.clone();
            async move {
                let (k, k2) = (key(i), key(i));
                let _row = on_worker(&jobs, move |c| load(c, &k)).await;
                on_worker(&jobs, move |c| save(c, &k2)).await;
            }
        })
        .await;
        println!("rusqlite-threads {callers} {rps:.0}");
    }
}
