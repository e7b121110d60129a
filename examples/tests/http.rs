//! HTTP-level tests of the axum demo in process over real TCP on 127.0.0.1, with the
//! in-memory store: the cases that look inside the store (record counts, a failing store).
//! The contract every demo must keep runs against both demo binaries in `contract.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{COOKIE, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sessio::memory::{MemoryStore, WhenFull};
use sessio_axum::SessionLayer;
use sessio_examples::{app, DemoOptions};

/// A server on a free loopback port, stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server { addr, task }
}

async fn demo(options: DemoOptions) -> (Server, MemoryStore) {
    let store = MemoryStore::default();
    let router = app(Arc::new(store.clone()), &options).unwrap();
    (serve(router).await, store)
}

struct Answer {
    status: StatusCode,
    body: String,
    set_cookie: Vec<String>,
}

impl Answer {
    /// The `name=value` of the single session cookie set, if any.
    fn cookie(&self) -> Option<String> {
        assert!(
            self.set_cookie.len() <= 1,
            "more than one Set-Cookie: {:?}",
            self.set_cookie
        );
        self.set_cookie
            .first()
            .map(|c| c.split(';').next().unwrap().to_string())
    }

    fn removes_cookie(&self) -> bool {
        self.set_cookie.iter().any(|c| c.contains("Max-Age=0"))
    }
}

#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    fn new(server: &Server) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{}", server.addr),
        }
    }

    async fn send(&self, method: Method, path: &str, cookie: Option<&[u8]>, body: &str) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(
                COOKIE,
                hyper::header::HeaderValue::from_bytes(cookie).unwrap(),
            );
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = self
            .client
            .request(request)
            .await
            .expect("request over TCP");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            set_cookie,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        self.send(Method::GET, path, cookie.map(str::as_bytes), "")
            .await
    }

    async fn post(&self, path: &str, cookie: Option<&str>) -> Answer {
        self.send(Method::POST, path, cookie.map(str::as_bytes), "")
            .await
    }

    async fn put(&self, path: &str, cookie: Option<&str>, body: &str) -> Answer {
        self.send(Method::PUT, path, cookie.map(str::as_bytes), body)
            .await
    }
}

async fn start(options: DemoOptions) -> (Server, MemoryStore, Http) {
    let (server, store) = demo(options).await;
    let http = Http::new(&server);
    (server, store, http)
}

#[tokio::test]
async fn attacker_chosen_ids_are_replaced() {
    let (_server, store, http) = start(DemoOptions::default()).await;
    let forged = sessio::id::SessionId::generate().unwrap();
    let cookie = format!("id={}", forged.as_str());
    let answer = http.get("/", Some(&cookie)).await;
    assert_eq!(answer.body, "1");
    let issued = answer.cookie().expect("a new id is issued");
    assert_ne!(issued, cookie, "the attacker's id was adopted");
    assert_eq!(http.get("/", Some(&issued)).await.body, "2");
    // The forged id still leads nowhere.
    assert_eq!(
        http.get("/get/foo", Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn untouched_and_empty_sessions_send_no_cookie_and_store_nothing() {
    let store = MemoryStore::default();
    let router = Router::new()
        .route("/plain", get(|| async { "no session here" }))
        .merge(app(Arc::new(store.clone()), &DemoOptions::default()).unwrap())
        .layer(SessionLayer::new(store.clone()));
    let server = serve(router).await;
    let http = Http::new(&server);
    let plain = http.get("/plain", None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.set_cookie.is_empty());
    let read = http.get("/get/foo", None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);
    assert!(
        read.set_cookie.is_empty(),
        "reading an empty session sets no cookie"
    );
    let me = http.get("/me", None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert!(me.set_cookie.is_empty());
    assert_eq!(
        store.len(),
        0,
        "nothing was stored for visitors with empty sessions"
    );
}

#[tokio::test]
async fn clear_deletes_the_record_and_expires_the_cookie() {
    let (_server, store, http) = start(DemoOptions {
        secure: true,
        ..Default::default()
    })
    .await;
    let cookie = http.put("/set/a", None, "[1,2]").await.cookie().unwrap();
    assert_eq!(http.get("/get/a", Some(&cookie)).await.body, "[1,2]");
    assert_eq!(store.len(), 1);
    let cleared = http.post("/clear", Some(&cookie)).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert!(
        cleared.removes_cookie(),
        "cookie not expired: {:?}",
        cleared.set_cookie
    );
    let removal = &cleared.set_cookie[0];
    for attribute in ["Path=/", "Secure", "SameSite=Lax", "HttpOnly"] {
        assert!(
            removal.contains(attribute),
            "removal cookie lacks {attribute}: {removal}"
        );
    }
    assert_eq!(store.len(), 0, "the store entry was not deleted");
    assert_eq!(
        http.get("/get/a", Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rotate_keeps_data_and_the_old_id_follows_unseen() {
    let (_server, store, http) = start(DemoOptions::default()).await;
    let old = http
        .put("/set/cart", None, "\"book\"")
        .await
        .cookie()
        .unwrap();
    let rotated = http.post("/rotate", Some(&old)).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new = rotated.cookie().expect("rotation sends the new id");
    assert_ne!(new, old);
    assert_eq!(http.get("/get/cart", Some(&new)).await.body, "\"book\"");
    // The old id follows the rotation (for requests that were in flight), unseen.
    let late = http.get("/get/cart", Some(&old)).await;
    assert_eq!(
        (late.status, late.body.as_str()),
        (StatusCode::OK, "\"book\"")
    );
    assert_eq!(late.cookie(), None);
    // The successor, and the old id's short-lived forward (the rotation grace).
    assert_eq!(store.len(), 2, "the old record was not retired");
}

#[tokio::test]
async fn login_rotates_and_logout_destroys() {
    let (_server, store, http) = start(DemoOptions::default()).await;
    let anonymous = http.get("/", None).await.cookie().unwrap();
    let login = http.post("/login/ada", Some(&anonymous)).await;
    let user = login.cookie().expect("login issues a new id");
    assert_ne!(user, anonymous);
    assert_eq!(http.get("/me", Some(&user)).await.body, "ada");
    assert_eq!(
        http.get("/get/foo", Some(&user)).await.body,
        "1",
        "data survives login"
    );
    assert_eq!(
        http.get("/me", Some(&anonymous)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let logout = http.post("/logout", Some(&user)).await;
    assert!(logout.removes_cookie());
    assert_eq!(
        http.get("/me", Some(&user)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        store.len(),
        1,
        "only the login's forward of the anonymous id is left"
    );
}

#[tokio::test]
async fn reads_extend_the_idle_timeout() {
    let (_server, _store, http) = start(DemoOptions {
        ttl: Some(2),
        ..Default::default()
    })
    .await;
    let first = http.put("/set/k", None, "1").await.cookie().unwrap();
    let mut cookie = first.clone();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let read = http.get("/get/k", Some(&cookie)).await;
        assert_eq!(
            read.status,
            StatusCode::OK,
            "a read-only session expired while in use"
        );
        // Past half its age the persistent cookie is renewed, always with a new id; the
        // client keeps it, as a browser does.
        if let Some(renewed) = read.cookie() {
            assert_ne!(renewed, cookie, "a cookie was re-sent with its old id");
            cookie = renewed;
        }
    }
    assert_ne!(cookie, first, "the cookie was never renewed");
}

#[tokio::test]
async fn hostile_cookies_get_a_fresh_session_never_a_5xx() {
    let (_server, _store, http) = start(DemoOptions::default()).await;
    let real = http.get("/", None).await.cookie().unwrap();
    let real_id = real.trim_start_matches("id=").to_string();
    let forged = sessio::id::SessionId::generate().unwrap();
    let long = "A".repeat(8000);
    let hostile: Vec<Vec<u8>> = vec![
        b"id=".to_vec(),
        b"id".to_vec(),
        b"id=garbage".to_vec(),
        format!("id={long}").into_bytes(),
        format!("id={}", forged.as_str()).into_bytes(),
        b"id=0123456789abcdef0123456789abcdef".to_vec(),
        format!("id={}x", real_id).into_bytes(),
        format!("id={}", &real_id[..42]).into_bytes(),
        // A quote on one side only (RFC 6265 quotes the whole value, which is accepted).
        format!("id=\"{real_id}").into_bytes(),
        format!(
            "id={}",
            real_id.replace(|c: char| c.is_ascii_alphabetic(), "%41")
        )
        .into_bytes(),
        b"id=\xff\xfe\xfd".to_vec(),
        "id=\u{00e9}\u{00e9}".as_bytes().to_vec(),
        b";;;=;=id==;".to_vec(),
        b"id=a; id=b; id=c".to_vec(),
        b"=id".to_vec(),
        b"id=../../etc/passwd".to_vec(),
        b"id=*".to_vec(),
        b"id=\t \t".to_vec(),
        format!("id={}", "=".repeat(43)).into_bytes(),
        format!("{}=1", "x".repeat(4000)).into_bytes(),
    ];
    assert_eq!(hostile.len(), 20);
    for value in &hostile {
        let answer = http.send(Method::GET, "/", Some(value), "").await;
        assert!(
            !answer.status.is_server_error(),
            "{} for cookie {:?}",
            answer.status,
            String::from_utf8_lossy(value)
        );
        assert_eq!(
            answer.body,
            "1",
            "hostile cookie {:?} reached a session",
            String::from_utf8_lossy(value)
        );
        let issued = answer.cookie().expect("a fresh session is issued");
        assert_ne!(issued, real);
    }
    assert_eq!(
        http.get("/", Some(&real)).await.body,
        "2",
        "the real session is intact"
    );
}

#[tokio::test]
async fn invalid_json_is_a_400() {
    let (_server, store, http) = start(DemoOptions::default()).await;
    let answer = http.put("/set/k", None, "{not json").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("invalid JSON"));
    assert!(answer.set_cookie.is_empty());
    assert_eq!(store.len(), 0);
    let ok = http.put("/set/k", None, "{\"a\": [1, null]}").await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn a_failing_store_answers_503_without_a_cookie() {
    // A real store failure: a full MemoryStore that refuses new sessions.
    let store = MemoryStore::builder()
        .max_sessions(1)
        .shards(1)
        .when_full(WhenFull::Reject)
        .build();
    let router = app(Arc::new(store.clone()), &DemoOptions::default()).unwrap();
    let server = serve(router).await;
    let http = Http::new(&server);
    let first = http.get("/", None).await;
    assert_eq!(first.status, StatusCode::OK);
    let refused = http.get("/", None).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.set_cookie.is_empty(),
        "no cookie for a session that was not saved"
    );
    assert!(
        refused.body.contains("session store unavailable"),
        "{}",
        refused.body
    );
    // The session that exists keeps working.
    assert_eq!(
        http.get("/", Some(&first.cookie().unwrap())).await.body,
        "2"
    );
}
