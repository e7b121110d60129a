//! The engine's cost per request on the in-memory store, without HTTP: what sessio adds to
//! a handler. `cargo bench -p sessio --bench engine`.

use criterion::{criterion_group, criterion_main, Criterion};
use sessio::{Config, MemoryStore, SessionManager};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn engine(c: &mut Criterion) {
    let rt = runtime();
    let manager = rt.block_on(async {
        SessionManager::new(MemoryStore::default(), Config::default()).unwrap()
    });
    let cookie = rt.block_on(async {
        let session = manager.session(std::iter::empty());
        session.insert("foo", 0).await.unwrap();
        let set = session.commit().await.unwrap().unwrap();
        set.split(';').next().unwrap().to_string()
    });

    c.bench_function("keep-cookie: update foo + commit", |b| {
        b.to_async(&rt).iter(|| async {
            let session = manager.session([cookie.as_bytes()]);
            session
                .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await
                .unwrap();
            session.commit().await.unwrap()
        })
    });

    c.bench_function("keep-cookie: read foo + commit", |b| {
        b.to_async(&rt).iter(|| async {
            let session = manager.session([cookie.as_bytes()]);
            let n: Option<i64> = session.get("foo").await.unwrap();
            session.commit().await.unwrap();
            n
        })
    });

    c.bench_function("no cookie: new session + commit", |b| {
        b.to_async(&rt).iter(|| async {
            let session = manager.session(std::iter::empty());
            session
                .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await
                .unwrap();
            session.commit().await.unwrap()
        })
    });

    c.bench_function("untouched session", |b| {
        b.to_async(&rt).iter(|| async {
            let session = manager.session([cookie.as_bytes()]);
            session.commit().await.unwrap()
        })
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
