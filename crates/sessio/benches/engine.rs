//! The engine's cost per request on the in-memory store, without HTTP: what sessio adds to
//! a handler, and the record codecs side by side.
//! `cargo bench -p sessio --bench engine --features msgpack`.

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

/// JSON against MessagePack on a session of realistic shape (a user, a cart of 20 items,
/// preferences, a CSRF token: about 1 KiB as JSON): a read and a write of it per request,
/// and its size in the store, printed beside the timings.
#[cfg(feature = "msgpack")]
fn codecs(c: &mut Criterion) {
    use sessio::codec::Codec;
    let rt = runtime();
    let cart: Vec<_> = (0..20)
        .map(
            |i| serde_json::json!({"sku": format!("SKU-{i:05}"), "qty": i % 3 + 1, "price": 19.99}),
        )
        .collect();
    for (name, codec) in [("json", Codec::Json), ("msgpack", Codec::MessagePack)] {
        let store = MemoryStore::default();
        let manager =
            SessionManager::new(store.clone(), Config::default().with_codec(codec)).unwrap();
        let cookie = rt.block_on(async {
            let session = manager.session(std::iter::empty());
            session
                .insert(
                    "user",
                    serde_json::json!({"id": 42, "name": "Ada Lovelace"}),
                )
                .await
                .unwrap();
            session.insert("cart", &cart).await.unwrap();
            session
                .insert(
                    "prefs",
                    serde_json::json!({"theme": "dark", "lang": "en-GB"}),
                )
                .await
                .unwrap();
            session.csrf_token().await.unwrap();
            let set = session.commit().await.unwrap().unwrap();
            set.split(';').next().unwrap().to_string()
        });
        eprintln!("codec {name}: the session takes {} bytes in the memory store (key, record and bookkeeping)", store.bytes());
        c.bench_function(&format!("codec {name}: read the cart + commit"), |b| {
            b.to_async(&rt).iter(|| async {
                let session = manager.session([cookie.as_bytes()]);
                let cart: Option<serde_json::Value> = session.get("cart").await.unwrap();
                session.commit().await.unwrap();
                cart
            })
        });
        c.bench_function(&format!("codec {name}: update a counter + commit"), |b| {
            b.to_async(&rt).iter(|| async {
                let session = manager.session([cookie.as_bytes()]);
                session
                    .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                    .await
                    .unwrap();
                session.commit().await.unwrap()
            })
        });
    }
}

#[cfg(not(feature = "msgpack"))]
fn codecs(_: &mut Criterion) {
    eprintln!("the codec rows need `--features msgpack`");
}

criterion_group!(benches, engine, codecs);
criterion_main!(benches);
