//! A Redis Cluster connection that breaks after a save reached the server but before its
//! reply came back: the outcome is unknown, so the request must fail (a store error) and
//! must never count its change twice. (The cluster client used to send the save again on a
//! new connection; the second send found the first one's bytes, reported a conflict, and
//! the engine re-ran the increment: `GET /` answered `200` two higher.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessio::{Config, SessionManager};
use sessio_redis::RedisStore;
use sessio_test_servers::{free_port, wait_for_port, Process};

/// Forwards `listen` to `target`; once `armed`, the first client write that contains
/// `marker` is passed on and the client's connection is closed before any reply returns.
fn proxy(listen: TcpListener, target: u16, marker: &'static [u8], armed: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for client in listen.incoming().flatten() {
            let server = TcpStream::connect(("127.0.0.1", target)).expect("the server");
            let (mut from_client, mut to_server) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut from_server, mut to_client) = (server, client);
            let armed = armed.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = from_client.read(&mut buf) {
                    if n == 0 || to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let hit = buf[..n].windows(marker.len()).any(|w| w == marker);
                    if hit && armed.swap(false, Ordering::SeqCst) {
                        // The server has the command; its answer never comes back.
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = from_client.shutdown(std::net::Shutdown::Both);
                        let _ = to_server.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_whose_reply_is_lost_is_an_error_and_never_applied_twice() {
    // A one-node cluster that tells clients to reach it through the proxy.
    let (port, proxy_port) = (free_port(), free_port());
    let dir = sessio_test_servers::TempDir::new("lost-reply");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &dir.path.join("nodes.conf").display().to_string(),
        "--cluster-announce-port",
        &proxy_port.to_string(),
        "--cluster-announce-bus-port",
        &free_port().to_string(),
        "--dir",
        &dir.path.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _server = Process::start("redis-server", &args, "apt-get install -y redis-server");
    wait_for_port(port, Duration::from_secs(10), "redis-server");
    cli(port, &["cluster", "addslotsrange", "0", "16383"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cli(port, &["cluster", "info"]).contains("cluster_state:ok") {
        assert!(
            Instant::now() < deadline,
            "the one-node cluster did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let armed = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind(("127.0.0.1", proxy_port)).expect("the proxy's port");
    // Round 3's save: the only command that carries the new value 4.
    proxy(listener, port, b"\"n\":4", armed.clone());

    let store = RedisStore::connect(&format!("redis+cluster://127.0.0.1:{proxy_port}"))
        .await
        .expect("connect through the proxy");
    let manager = SessionManager::new(store, Config::default()).unwrap();
    let first = manager.session(std::iter::empty());
    first.insert("n", 0_i64).await.unwrap();
    let set = first.commit_cookies().await.unwrap();
    let cookie = set[0].split(';').next().unwrap().to_string();

    // Each round increments once and is answered, or fails (the cut save, and perhaps the
    // next command, which may meet the broken connection).
    let (mut answered, mut failed) = (0_i64, 0_i64);
    for round in 0..6 {
        let session = manager.session([cookie.as_bytes()]);
        if round == 3 {
            armed.store(true, Ordering::SeqCst);
        }
        let result = async {
            session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await?;
            session.commit_cookies().await
        }
        .await;
        match result {
            Ok(_) => answered += 1,
            Err(error) => {
                assert!(error.is_unavailable(), "round {round}: {error}");
                failed += 1;
            }
        }
        if round == 3 {
            assert!(!armed.load(Ordering::SeqCst), "the proxy never cut a save");
        }
    }
    let last = manager.session([cookie.as_bytes()]);
    let stored: i64 = last.get("n").await.unwrap().unwrap();
    // The initial insert counts 0; a failed round may or may not have been applied.
    assert!(
        stored >= answered && stored <= answered + failed,
        "{answered} increments answered and {failed} failed, but the store counts {stored}"
    );
}
