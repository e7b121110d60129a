//! # sessio-store-tests
//!
//! The conformance suite of the sessio store contract. Every store runs the same cases, one
//! named test each, so that one failure does not hide the others:
//!
//! ```
//! use sessio_store_tests::{Fixture, Timing};
//!
//! async fn memory() -> Fixture<sessio::MemoryStore> {
//!     Fixture::new(sessio::MemoryStore::default())
//! }
//!
//! sessio_store_tests::basic_suite!(memory, Timing::FAST);
//! sessio_store_tests::locking_suite!(memory, Timing::FAST);
//! sessio_store_tests::devices_suite!(memory, Timing::FAST);
//! # fn main() {}
//! ```
//!
//! [`basic_suite!`] checks the [`Store`] contract and the engine's guarantees over it
//! (no lost writes, destroyed stays destroyed, no fixation, rotation, stale cookies);
//! [`locking_suite!`] the [`LockingStore`](sessio::store::LockingStore) contract and the
//! lock's guarantees (exclusion, fencing, composing with logout, rotation and plain
//! writes); [`devices_suite!`] the user's devices index over the store. The setup function
//! runs once per test and returns the store with whatever must
//! live as long as it (a private server, see the `sessio-test-servers` crate).
//!
//! Each test uses keys under a random prefix, so tests can share one server and run in
//! parallel. A failing test panics with a message naming the broken rule.
#![warn(missing_docs)]

pub mod basic;
pub mod devices;
pub mod locking;
pub mod model;
pub mod pause;
pub mod sessions;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use sessio::store::LeaseToken;
use sessio::{store::Store, Config, Session, SessionManager};

/// How long the store takes to notice expiry, so timing tests wait long enough.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A TTL the store honours precisely enough (records expire after it).
    pub short_ttl: Duration,
    /// How long to sleep to be sure a `short_ttl` record is gone.
    pub past_short_ttl: Duration,
}

impl Timing {
    /// For stores with millisecond expiry (memory, Redis).
    pub const FAST: Timing = Timing {
        short_ttl: Duration::from_millis(300),
        past_short_ttl: Duration::from_millis(700),
    };
    /// For stores with one-second expiry (Memcached, MongoDB with engine checks).
    pub const SECONDS: Timing = Timing {
        short_ttl: Duration::from_secs(1),
        past_short_ttl: Duration::from_millis(2500),
    };
}

/// A store under test and what must outlive it (server processes, temp dirs).
pub struct Fixture<S> {
    /// The store.
    pub store: S,
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl<S> Fixture<S> {
    /// A fixture of `store` alone.
    pub fn new(store: S) -> Self {
        Self {
            store,
            keep: Vec::new(),
        }
    }

    /// Keeps `guard` (a server, say) alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self.keep.push(Box::new(guard));
        self
    }
}

/// Expands to one `#[tokio::test]` per case of the basic part of the suite: the [`Store`]
/// contract and the engine's guarantees over it. `$setup` is an `async fn() -> Fixture<S>`.
#[macro_export]
macro_rules! basic_suite {
    ($setup:path, $timing:expr) => {
        $crate::__cases!($setup, $timing;
            basic::absent_is_not_an_error,
            basic::create_then_load_round_trips,
            basic::create_never_overwrites,
            basic::save_compares_versions,
            basic::save_does_not_resurrect,
            basic::delete_if_compares,
            basic::delete_removes,
            basic::touch_extends_expiry,
            basic::touch_does_not_revive,
            basic::records_expire,
            sessions::concurrent_updates_lose_nothing,
            sessions::disjoint_keys_merge,
            sessions::emptying_merges_with_a_concurrent_write,
            sessions::destroyed_session_is_not_resurrected,
            sessions::unknown_ids_are_never_adopted,
            sessions::rotation_keeps_data_and_the_old_id_follows_unseen,
            sessions::writes_racing_a_rotation_are_kept,
            sessions::writes_racing_a_login_are_refused_not_followed,
            sessions::a_flash_is_taken_exactly_once,
            sessions::stale_cookies_never_touch_the_browser_cookie,
            sessions::a_logout_racing_a_rotation_ends_the_successor,
            sessions::messagepack_sessions_merge_rotate_and_read_back,
        );
    };
}

/// Expands to one `#[tokio::test]` per case of the locking part of the suite: the
/// `LockingStore` contract and the lock's guarantees. `$setup` is an
/// `async fn() -> Fixture<S>`.
#[macro_export]
macro_rules! locking_suite {
    ($setup:path, $timing:expr) => {
        $crate::__cases!($setup, $timing;
            locking::lock_excludes_and_returns_the_record,
            locking::dead_holders_lease_lapses,
            locking::saves_under_a_lease_are_fenced,
            locking::locked_writes_are_conditional,
            locking::release_is_compare_and_delete,
            locking::delete_under_a_lease_is_fenced,
            locking::lock_serializes_read_modify_write,
            locking::a_logout_during_a_lock_stays_a_logout,
            locking::plain_writes_during_a_lock_are_kept,
            locking::rotating_inside_the_lock_moves_it,
            locking::destroying_inside_the_lock_ends_it,
            locking::a_rotation_by_another_request_ends_the_lock,
            locking::a_lock_holder_never_overwrites_a_concurrent_write_of_its_key,
        );
    };
}

/// Expands to one `#[tokio::test]` per case of the user's devices index
/// ([`sessio::devices`]) over the store: for stores that keep records until they expire
/// (not Memcached). `$setup` is an `async fn() -> Fixture<S>`.
#[macro_export]
macro_rules! devices_suite {
    ($setup:path, $timing:expr) => {
        $crate::__cases!($setup, $timing;
            devices::revoke_others_ends_every_other_session_of_the_user,
            devices::a_revocation_racing_a_rotation_ends_the_rotated_session,
            devices::the_maximum_ends_the_least_recently_active,
            devices::concurrent_logins_past_the_maximum_leave_exactly_the_maximum,
            devices::entries_expire_with_their_sessions,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($setup:path, $timing:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = $setup().await;
                $crate::$module::$case(&fixture.store, $timing).await;
            }
        )*
    };
}

pub(crate) const LONG: Duration = Duration::from_secs(60);

pub(crate) fn unique(name: &str) -> String {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).expect("OS random number generator");
    let tag: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("sessio-test:{tag}:{name}")
}

pub(crate) fn token() -> LeaseToken {
    LeaseToken::generate().expect("OS random number generator")
}

pub(crate) fn manager<S: Store + Clone>(store: &S, name: &str) -> SessionManager {
    // 40 requests racing on one session: the last may lose up to 39 rounds, and the last of
    // 20 lock holders waits for 19 others. The suite checks that nothing is lost and nothing
    // overlaps, not how fast a slow server resolves contention, so it allows enough retries
    // and a long lock wait.
    let config = Config::default()
        .with_key_prefix(format!("{}:", unique(name)))
        .with_max_retries(200)
        .with_lock_wait(Duration::from_secs(120));
    SessionManager::from_arc(Arc::new(store.clone()), config).expect("valid config")
}

/// Runs `n` concurrent requests on the session of `cookie`, request `i` being
/// `work(i, session)` on its own task, and returns their results in order.
pub(crate) async fn concurrently<T, F, Fut>(
    manager: &SessionManager,
    cookie: &str,
    n: usize,
    work: F,
) -> Vec<T>
where
    F: Fn(usize, Session) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(work(i, request(manager, cookie))))
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("a request panicked"));
    }
    results
}

/// The `name=value` part of a `Set-Cookie` value.
/// Commits as an integration does ([`Session::commit_cookies`]) and returns the session
/// cookie, if any. The write-count cookie that a caching store's sessions add (`<name>.w`)
/// is left out: it never carries an id.
pub(crate) async fn commit(session: &Session) -> Result<Option<String>, sessio::Error> {
    let cookies = session.commit_cookies().await?;
    let mut ids = cookies.into_iter().filter(|c| {
        let name = c.split('=').next().unwrap_or_default();
        !name.ends_with(".w")
    });
    let first = ids.next();
    assert!(ids.next().is_none(), "one response, two session cookies");
    Ok(first)
}

pub(crate) fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

pub(crate) fn request(manager: &SessionManager, cookie: &str) -> Session {
    manager.session([cookie.as_bytes()])
}

pub(crate) async fn new_session<S: Store + Clone>(
    store: &S,
    name: &str,
) -> (SessionManager, String) {
    let manager = manager(store, name);
    let first = manager.session(std::iter::empty());
    first.insert("seed", &true).await.unwrap();
    let cookie = commit(&first)
        .await
        .unwrap()
        .expect("a new session sets a cookie");
    (manager, cookie_pair(&cookie))
}
