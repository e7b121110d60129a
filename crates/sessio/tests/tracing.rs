//! The tracing a session emits: one span per session operation and per store call, with
//! the store's name and the outcome, and never a session id or a store key in any field.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sessio::{id::IdFormat, id::SessionId, Config, MemoryStore, SessionManager};
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything the subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn id_of(cookie: &str) -> String {
    cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("id=")
        .split('.')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn login_rotate_and_logout_are_traced_without_ids_or_keys() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let manager = SessionManager::new(MemoryStore::default(), Config::default()).unwrap();
    let mut ids = Vec::new();
    let mut cookie = {
        let session = manager.session([]);
        session.insert("cart", &["book"]).await.unwrap();
        session
            .commit()
            .await
            .unwrap()
            .expect("a new session's cookie")
    };
    ids.push(id_of(&cookie));
    for step in ["login", "rotate", "lock", "logout"] {
        let header = cookie.split(';').next().unwrap().to_string();
        let session = manager.session([header.as_bytes()]);
        match step {
            "login" => session.login("ada").await.unwrap(),
            "rotate" => session.cycle_id().await.unwrap(),
            "lock" => {
                let guard = session.lock().await.unwrap();
                guard.insert("n", &1).await.unwrap();
                guard.unlock().await.unwrap();
            }
            _ => session.logout().await.unwrap(),
        }
        if let Some(next) = session.commit().await.unwrap() {
            cookie = next;
            // A logout's removal cookie carries no id.
            let id = id_of(&cookie);
            if !id.is_empty() {
                ids.push(id);
            }
        }
    }
    drop(_default);
    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();

    for span in [
        "sessio.load",
        "sessio.login",
        "sessio.rotate",
        "sessio.lock",
        "sessio.logout",
        "sessio.commit",
        "sessio.store",
    ] {
        assert!(output.contains(span), "no {span} span in:\n{output}");
    }
    for field in [
        "store=\"sessio::memory::MemoryStore\"",
        "op=\"load\"",
        "op=\"create\"",
        "op=\"save\"",
        "op=\"delete_if\"",
        "op=\"acquire\"",
        "op=\"save_locked\"",
        "outcome=\"found\"",
        "outcome=\"done\"",
    ] {
        assert!(output.contains(field), "no {field} in:\n{output}");
    }
    assert!(ids.len() >= 3, "login and rotate each issue an id: {ids:?}");
    for id in &ids {
        let parsed = SessionId::parse(id, IdFormat::Native).expect("a native id");
        for secret in [
            id.clone(),
            parsed.store_key("session:", true),
            parsed.store_key("session:", false),
        ] {
            assert!(
                !output.contains(&secret),
                "{secret} appears in the trace:\n{output}"
            );
        }
    }
}
