//! Makes new sessions through a server, fast: `mint HOST:PORT COUNT FILE [CONNECTIONS]`.
//!
//! Sends COUNT cookie-less `GET /` over CONNECTIONS (32) keep-alive HTTP/1.1 connections and
//! writes one line per response to FILE: the `name=value` of each cookie it set, joined with
//! `; ` (a `Cookie` header's form), so a response that sets two cookies (sessio-redis's `id`
//! and `id.w`) stays one session. Responses that set no cookie write no line.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{HOST, SET_COOKIE};
use hyper::Request;
use tokio::net::TcpStream;

async fn connection(addr: String, left: Arc<AtomicUsize>) -> Vec<String> {
    let stream = TcpStream::connect(&addr)
        .await
        .expect("connect to the server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let mut lines = Vec::new();
    while left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        let request = Request::get("/")
            .header(HOST, &addr)
            .body(Empty::<Bytes>::new())
            .expect("a request");
        let response = sender.send_request(request).await.expect("a response");
        let cookies: Vec<&str> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or("").trim())
            .collect();
        if !cookies.is_empty() {
            lines.push(cookies.join("; "));
        }
        response.into_body().collect().await.expect("the body");
    }
    lines
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: mint HOST:PORT COUNT FILE [CONNECTIONS]";
    let addr = args.next().expect(usage);
    let count: usize = args.next().expect(usage).parse().expect("COUNT: a number");
    let file = args.next().expect(usage);
    let conns: usize = args
        .next()
        .map_or(32, |n| n.parse().expect("CONNECTIONS: a number"));
    let left = Arc::new(AtomicUsize::new(count));
    let tasks: Vec<_> = (0..conns.max(1))
        .map(|_| tokio::spawn(connection(addr.clone(), left.clone())))
        .collect();
    let mut out = String::new();
    for task in tasks {
        for line in task.await.expect("a connection's task") {
            out.push_str(&line);
            out.push('\n');
        }
    }
    std::fs::write(&file, out).expect("write the cookies file");
}
