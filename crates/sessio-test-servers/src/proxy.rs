//! [`LossyProxy`]: a TCP proxy that loses the reply to chosen commands.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TCP proxy on 127.0.0.1 to a server, which breaks a connection right after a command
/// reached the server, before its reply comes back: what a network failure at the worst
/// moment does. Every `every`-th client write that contains `marker` is passed on, then
/// the client's connection is closed. Runs until the test process ends.
#[derive(Debug)]
pub struct LossyProxy {
    /// The proxy's port.
    pub port: u16,
    cuts: Arc<AtomicUsize>,
}

impl LossyProxy {
    /// Listens on `port` (see [`free_port`](crate::free_port)) and forwards to `target`.
    pub fn start(port: u16, target: u16, marker: &'static [u8], every: usize) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the proxy's port");
        let (seen, cuts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counted = cuts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (seen, cuts) = (seen.clone(), counted.clone());
                // Set once a command is to lose its reply: nothing more goes back.
                let cut = Arc::new(AtomicBool::new(false));
                let cutting = cut.clone();
                let (mut from_client, mut to_server) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = from_client.read(&mut buf) {
                        if n == 0 || to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        let hit = buf[..n].windows(marker.len()).any(|w| w == marker);
                        if hit && (seen.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(every) {
                            // Let the server run it, then drop both ends; its reply is
                            // held back meanwhile.
                            cutting.store(true, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            cuts.fetch_add(1, Ordering::SeqCst);
                            let _ = from_client.shutdown(Shutdown::Both);
                            let _ = to_server.shutdown(Shutdown::Both);
                            break;
                        }
                    }
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = from_server.read(&mut buf) {
                        if n == 0
                            || cut.load(Ordering::SeqCst)
                            || to_client.write_all(&buf[..n]).is_err()
                        {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(Shutdown::Both);
                });
            }
        });
        Self { port, cuts }
    }

    /// How many connections it has cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}
