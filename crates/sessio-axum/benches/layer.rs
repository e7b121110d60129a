//! The layer's cost per request in-process (no TCP): a bare router against the same router
//! with `SessionLayer`, for the demo's counter handler, without a metrics recorder (the
//! `metrics` calls are no-ops) and with a Prometheus recorder installed (for this thread,
//! so the rows before it run without one). `cargo bench -p sessio-axum`.

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use sessio_axum::{MemoryStore, Session, SessionError, SessionLayer};
use tower::ServiceExt;

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("foo", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = Router::new().route("/", get(|| async { "1".to_string() }));
    let sessions = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(MemoryStore::default()));
    let cookie = rt.block_on(async {
        let response = sessions
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let set = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        set.split(';').next().unwrap().to_string()
    });
    // `GET /` with the session's cookie, through `router`.
    let keep_cookie = |b: &mut criterion::Bencher, router: &Router| {
        b.to_async(&rt).iter(|| async {
            let request = Request::get("/")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request).await.unwrap()
        })
    };
    c.bench_function("bare router", |b| keep_cookie(b, &bare));
    c.bench_function("router + SessionLayer, keep-cookie counter", |b| {
        keep_cookie(b, &sessions)
    });
    // What each of a request's few metrics calls costs when nothing records them.
    c.bench_function("one metrics counter + histogram call, no recorder", |b| {
        b.iter(|| {
            metrics::counter!("sessio_sessions_saved_total").increment(1);
            metrics::histogram!("sessio_store_call_seconds", "store" => "memory", "op" => "save")
                .record(std::hint::black_box(0.000_01));
        })
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        c.bench_function(
            "router + SessionLayer, keep-cookie counter, Prometheus recorder",
            |b| keep_cookie(b, &sessions),
        );
    });
    // The recorder row measured what it says: the recorder counted the saves.
    let text = handle.render();
    assert!(
        text.contains("sessio_sessions_saved_total"),
        "the recorder saw no sessions: {text}"
    );
}

criterion_group!(benches, layer);
criterion_main!(benches);
