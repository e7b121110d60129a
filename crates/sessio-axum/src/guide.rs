//! # A guide: sessions, logins and errors in an axum app
//!
//! This page builds a small shop: a cart for anonymous visitors, a login that keeps the
//! cart, "remember me", pages only for logged-in users, flash messages, a CSRF-checked
//! form, the user's devices, and what happens when the store fails. Every example
//! compiles (they are tests).
//!
//! ## 1. The layer and the extractor
//!
//! Put a [`SessionLayer`](crate::SessionLayer) on the router and take a
//! [`Session`](crate::Session) in handlers. The session is a map of JSON values; nothing is
//! read from the store until a handler uses it, and nothing is written (and no cookie set)
//! unless something changed.
//!
//! ```no_run
//! use axum::{routing::{get, post}, Router};
//! use sessio_axum::{MemoryStore, Session, SessionError, SessionLayer};
//!
//! async fn add_to_cart(session: Session, item: String) -> Result<String, SessionError> {
//!     // `update` is an atomic read-modify-write: two tabs adding at once both count.
//!     let cart = session
//!         .update("cart", |cart: Option<Vec<String>>| {
//!             let mut cart = cart.unwrap_or_default();
//!             cart.push(item.clone());
//!             cart
//!         })
//!         .await?;
//!     Ok(format!("{} items", cart.len()))
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let app = Router::new()
//!         .route("/cart", post(add_to_cart))
//!         .layer(SessionLayer::new(MemoryStore::default()));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//!     axum::serve(listener, app).await.unwrap();
//! }
//! ```
//!
//! For a store shared by several processes, swap `MemoryStore` for `sessio_redis::RedisStore`
//! or `sessio_sql::PostgresStore` (each crate's docs show how to connect).
//!
//! ## 2. Typed keys
//!
//! A [`SessionKey`](sessio::keys::SessionKey) names a key and its type once, so a typo is a
//! compile error and every handler agrees on the shape:
//!
//! ```
//! use sessio_axum::keys::SessionKey;
//! use sessio_axum::{Session, SessionError};
//!
//! const CART: SessionKey<Vec<String>> = SessionKey::new("cart");
//!
//! async fn cart_size(session: Session) -> Result<String, SessionError> {
//!     Ok(session.get(&CART).await?.unwrap_or_default().len().to_string())
//! }
//! # let _: axum::routing::MethodRouter = axum::routing::get(cart_size);
//! ```
//!
//! If a later release changes a key's type, make the key
//! [`lenient`](sessio::keys::SessionKey::lenient): an old value then reads as absent (with
//! a warning in the log) instead of failing requests until old sessions expire.
//!
//! ## 3. Logging in and out
//!
//! [`Session::login`](sessio::Session::login) rotates the session id (an id an attacker
//! planted before the login is worthless after it) and stores the user; the cart stays.
//! [`Login`](sessio::auth::Login) chooses "remember me" and this login's idle timeout.
//! [`Session::logout`](sessio::Session::logout) ends the whole session.
//!
//! ```
//! use std::time::Duration;
//! use axum::extract::Form;
//! use sessio_axum::auth::Login;
//! use sessio_axum::{Session, SessionError};
//!
//! #[derive(serde::Deserialize)]
//! struct Credentials {
//!     user: String,
//!     password: String,
//!     remember: Option<String>,
//! }
//!
//! # fn check_password(_: &str, _: &str) -> Option<u64> { Some(1) }
//! async fn login(session: Session, Form(form): Form<Credentials>) -> Result<&'static str, SessionError> {
//!     let Some(user_id) = check_password(&form.user, &form.password) else {
//!         session.flash("wrong user or password").await?;
//!         return Ok("try again");
//!     };
//!     let login = match form.remember {
//!         // Remembered: a persistent cookie, kept 30 days while used.
//!         Some(_) => Login::new().remember(true).idle(Duration::from_secs(30 * 86_400)),
//!         // Not remembered: the cookie dies with the browser.
//!         None => Login::new().remember(false),
//!     };
//!     session.login_with(&user_id, login).await?;
//!     Ok("welcome")
//! }
//!
//! async fn logout(session: Session) -> Result<&'static str, SessionError> {
//!     session.logout().await?;
//!     Ok("bye")
//! }
//! # let _: axum::Router = axum::Router::new().route("/login", axum::routing::post(login)).route("/logout", axum::routing::post(logout));
//! ```
//!
//! ## 4. Pages for logged-in users only
//!
//! Take [`LoggedIn<U>`](crate::LoggedIn): the handler runs only when someone is logged in;
//! otherwise the answer is `401 login required`, or whatever
//! [`SessionLayer::on_login_required`](crate::SessionLayer::on_login_required) says, such
//! as a redirect to the login page. `OPTIONS` requests (CORS preflights) are exempt.
//!
//! ```
//! use axum::response::{IntoResponse, Redirect};
//! use axum::{routing::get, Router};
//! use sessio_axum::{LoggedIn, MemoryStore, SessionLayer};
//!
//! async fn account(LoggedIn(user_id): LoggedIn<u64>) -> String {
//!     format!("account of user {user_id}")
//! }
//!
//! let app: Router = Router::new().route("/account", get(account)).layer(
//!     SessionLayer::new(MemoryStore::default())
//!         .on_login_required(|_| Redirect::to("/login").into_response()),
//! );
//! ```
//!
//! With an error type of the app's own, take `Result<LoggedIn<U>, LoginRejection>` and
//! convert the rejection with `?` (see [`LoggedIn`](crate::LoggedIn)).
//!
//! ## 5. Flash messages and CSRF
//!
//! [`Session::flash`](sessio::Session::flash) keeps a message for the next page;
//! [`Session::take_flashes`](sessio::Session::take_flashes) reads them once. For forms that
//! change something, put [`Session::csrf_token`](sessio::Session::csrf_token) in the form
//! and check it with [`Session::verify_csrf`](sessio::Session::verify_csrf):
//!
//! ```
//! use axum::extract::Form;
//! use axum::http::StatusCode;
//! use sessio_axum::{Session, SessionError};
//!
//! async fn form(session: Session) -> Result<String, SessionError> {
//!     let token = session.csrf_token().await?;
//!     let messages: Vec<String> = session.take_flashes().await?;
//!     Ok(format!(
//!         "{messages:?}<form method=post><input type=hidden name=csrf value={token}></form>"
//!     ))
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Transfer {
//!     csrf: String,
//! }
//!
//! async fn transfer(session: Session, Form(form): Form<Transfer>) -> Result<StatusCode, SessionError> {
//!     if !session.verify_csrf(&form.csrf).await? {
//!         return Ok(StatusCode::FORBIDDEN);
//!     }
//!     session.flash("sent").await?;
//!     Ok(StatusCode::SEE_OTHER)
//! }
//! # let _: axum::Router = axum::Router::new().route("/form", axum::routing::get(form).post(transfer));
//! ```
//!
//! ## 6. The user's devices
//!
//! Turn on the devices index ([`Config::with_devices`](sessio::Config::with_devices))
//! and each login gets a *handle*, a public name for that session that is not its id. A
//! user can then list their sessions, end one, or end all but the current one ("log out
//! other devices", after a password change); a maximum per user ends the least recently
//! active session at the login past it. Revocation works across processes: the revoked
//! session is logged out at its next request, wherever it lands. See [`devices`](crate::devices) for
//! what it stores and costs.
//!
//! ```
//! use axum::extract::Path;
//! use axum::http::{header::USER_AGENT, HeaderMap, StatusCode};
//! use axum::routing::{delete, get, post};
//! use axum::{Json, Router};
//! use sessio_axum::auth::Login;
//! use sessio_axum::devices::Devices;
//! use sessio_axum::{Config, LoggedIn, MemoryStore, Session, SessionError, SessionLayer};
//!
//! async fn login(session: Session, headers: HeaderMap) -> Result<&'static str, SessionError> {
//!     let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
//!     session.login_with(&42_u64, Login::new().label(agent)).await?;
//!     Ok("welcome")
//! }
//!
//! /// Each device: its handle, whether it is this one, its label.
//! async fn devices(
//!     _: LoggedIn<u64>,
//!     session: Session,
//! ) -> Result<Json<Vec<(String, bool, Option<String>)>>, SessionError> {
//!     let list = session.devices().await?;
//!     Ok(Json(list.into_iter().map(|s| (s.handle, s.current, s.label)).collect()))
//! }
//!
//! async fn log_out_others(_: LoggedIn<u64>, session: Session) -> Result<String, SessionError> {
//!     Ok(format!("{} other sessions ended", session.revoke_others().await?))
//! }
//!
//! async fn end_one(
//!     _: LoggedIn<u64>,
//!     session: Session,
//!     Path(handle): Path<String>,
//! ) -> Result<StatusCode, SessionError> {
//!     // Only the user's own handles count: anything else is "not found".
//!     Ok(match session.revoke(&handle).await? {
//!         true => StatusCode::OK,
//!         false => StatusCode::NOT_FOUND,
//!     })
//! }
//!
//! let config = Config::default().with_devices(Devices::new().max_per_user(10));
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/devices", get(devices))
//!     .route("/devices/others", delete(log_out_others))
//!     .route("/devices/{handle}", delete(end_one))
//!     .layer(SessionLayer::with_config(MemoryStore::default(), config).unwrap());
//! ```
//!
//! The store must keep records until they expire: Memcached, a cache, is refused when the
//! index is on, and without the index these calls fail with
//! [`Error::DevicesOff`](sessio::Error::DevicesOff) (`501`).
//!
//! ## 7. When things fail
//!
//! Session calls return [`sessio::Error`]; return it from handlers with `?` as a
//! [`SessionError`](crate::SessionError), and the layer answers with the error's status (a
//! store that is down is `503`, never an empty session; a session over the size limit
//! `413`; a value of the wrong type `500`) and logs it once. A failure to save after the
//! handler replaces the handler's answer, so no client is told "ok" for data that was not
//! saved. [`SessionLayer::on_error`](crate::SessionLayer::on_error) changes the answers.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax` and `Secure` by default. Browsers drop `Secure`
//! cookies on plain HTTP except on `localhost`; the layer warns once if it sees that
//! happen. For local development on another host name, use
//! `Config::default().with_secure(false)`.
//!
//! ## 8. No server state: the cookie store
//!
//! With the `cookie-store` feature of `sessio-axum`
//! (`sessio-axum = { git = "https://github.com/sessio-rs/sessio", features = ["cookie-store"] }`),
//! the whole session can travel sealed in the browser's cookies instead (AES-256-GCM-SIV; the expiry sealed inside). Every handler
//! above works unchanged, except what needs the server to remember: `lock()` answers `501`
//! and the devices index is refused at start. A logout expires the cookies but cannot
//! revoke a copy someone kept, and two tabs writing at once are last-write-wins, so keep
//! such sessions small and short-lived (see `sessio::cookie_store`).
//!
//! ```
//! use axum::{routing::get, Router};
//! use sessio_axum::cookie_store::CookieStore;
//! use sessio_axum::{Config, Session, SessionError, SessionLayer, SessionManager};
//!
//! async fn visits(session: Session) -> Result<String, SessionError> {
//!     let n = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(n.to_string())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The first key seals; older ones, listed after it, still open (key rotation).
//! let keys = ["AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"]; // from your secrets store
//! let store = CookieStore::from_base64_keys(keys)?.with_max_chunks(2);
//! let manager = SessionManager::with_cookie_store(store, Config::default())?;
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::from_manager(manager));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
