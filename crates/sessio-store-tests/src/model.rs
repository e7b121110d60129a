//! A model-based property test: random interleavings of API calls from several requests on
//! one session, checked against a reference model of what must be stored.
//!
//! Up to three requests are open at once on the client's current cookie; each inserts,
//! removes, updates (atomic increment), increments under the lock, rotates the id, logs a
//! user in, or commits, in any order the generator picks. The model applies a request's
//! changes when it commits (an `update` or a locked section saves at once, with everything
//! the request changed before), keyed by key: that is exactly the merge the engine promises
//! (I1, I3). A rotation's new id becomes the client's cookie, and a second rotation of an
//! already rotated session sends none (I8); once a login is done, every write of a request
//! sent before it is refused with `Superseded` and none of it is stored, and so is a login
//! on a session that another request rotated meanwhile (I8). At the end the session read
//! through the client's cookie must equal the model, and no other call may fail or panic
//! (I4).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use sessio_store_tests::model::{check, Op};
//! check(&sessio::MemoryStore::default(), &[Op::Insert(0, 1, 5), Op::Open(1), Op::Rotate(1), Op::Commit(0)]).await;
//! # });
//! ```

use std::collections::BTreeMap;

use proptest::prelude::*;
use sessio::{store::Store, Session};

use crate::{cookie_pair, new_session, request};

/// One step of a request `h` (0..3) on key `k` (0..4).
#[derive(Debug, Clone)]
pub enum Op {
    /// Start request `h` (committing its previous one first) and read the session.
    Open(usize),
    /// `h` sets `k` to a value.
    Insert(usize, usize, i64),
    /// `h` removes `k`.
    Remove(usize, usize),
    /// `h` increments `k` with `update` (saved at once).
    Update(usize, usize),
    /// `h` increments `k` under the lock (saved at unlock).
    LockedIncrement(usize, usize),
    /// `h` rotates the id (applied at its commit).
    Rotate(usize),
    /// `h` logs a user in (a rotation with a login's strictness, applied at its commit):
    /// requests sent before it with the old id are refused once it is done.
    Login(usize),
    /// `h` commits.
    Commit(usize),
}

/// Random sequences of up to 24 steps.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let h = 0..3usize;
    let k = 0..4usize;
    let op = prop_oneof![
        h.clone().prop_map(Op::Open),
        (h.clone(), k.clone(), -5..5i64).prop_map(|(h, k, v)| Op::Insert(h, k, v)),
        (h.clone(), k.clone()).prop_map(|(h, k)| Op::Remove(h, k)),
        (h.clone(), k.clone()).prop_map(|(h, k)| Op::Update(h, k)),
        (h.clone(), k.clone()).prop_map(|(h, k)| Op::LockedIncrement(h, k)),
        h.clone().prop_map(Op::Rotate),
        h.clone().prop_map(Op::Login),
        h.prop_map(Op::Commit),
    ];
    proptest::collection::vec(op, 1..24)
}

struct Request {
    session: Session,
    /// What this request sees: the session when it opened (or last saved), and its changes.
    view: BTreeMap<String, i64>,
    /// Changes not yet saved: key -> new value (`None` = removed).
    pending: BTreeMap<String, Option<i64>>,
    rotate: bool,
    /// The rotation is a login's.
    login: bool,
    /// The cookie the request was sent with.
    sent_with: String,
    /// How many logins had been done when the request was sent.
    logins_seen: usize,
}

/// The ids and logins of the client so far.
struct Client {
    cookie: String,
    logins: usize,
}

impl Client {
    /// Whether `r` can no longer write: a login moved the session on since it was sent,
    /// or it logs in on a session that another request rotated meanwhile. Either way the
    /// engine refuses it with `Superseded`.
    fn refuses(&self, r: &Request) -> bool {
        self.logins > r.logins_seen || (r.login && r.sent_with != self.cookie)
    }
}

fn key(k: usize) -> String {
    format!("k{k}")
}

/// Runs `ops` against `store` and against the model, and panics on any difference.
pub async fn check<S: Store + Clone>(store: &S, ops: &[Op]) {
    // "seed" is never touched, so the session never empties (an emptied session ends).
    let (manager, cookie) = new_session(store, "model").await;
    let mut client = Client { cookie, logins: 0 };
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let mut open: [Option<Request>; 3] = [None, None, None];

    async fn finish(r: Request, model: &mut BTreeMap<String, i64>, client: &mut Client) {
        let result = crate::commit(&r.session).await;
        if client.refuses(&r) && (r.rotate || !r.pending.is_empty()) {
            if r.pending.is_empty() && !r.login && matches!(result, Ok(None)) {
                // Nothing but a plain rotation of a session another request rotated
                // already: the engine drops it before it reaches the store.
                return;
            }
            assert!(
                matches!(result, Err(sessio::Error::Superseded)),
                "a write sent before a login, or a login on a rotated session: {result:?}"
            );
            return;
        }
        let set = result.expect("commit must succeed");
        for (k, v) in r.pending {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        if r.rotate && r.sent_with == client.cookie {
            client.cookie = cookie_pair(&set.expect("a rotation sends the new id"));
            if r.login {
                client.logins += 1;
            }
        } else if r.rotate {
            // Another request rotated the session since this one was sent: this rotation
            // is done already, and its answer must not race that one for the cookie.
            assert_eq!(
                set, None,
                "a second rotation of a rotated session sent a cookie"
            );
        }
    }

    /// A save with a rotation pending moved the session: the old id is dead from now on,
    /// so the request answers now and the client takes the new cookie (a request the
    /// client starts later with the old one would get a fresh session).
    async fn finish_if_rotated(
        slot: &mut Option<Request>,
        model: &mut BTreeMap<String, i64>,
        client: &mut Client,
    ) {
        if slot.as_ref().is_some_and(|r| r.rotate) {
            let r = slot.take().expect("checked");
            finish(r, model, client).await;
        }
    }

    fn apply_pending(r: &mut Request, model: &mut BTreeMap<String, i64>) {
        for (k, v) in std::mem::take(&mut r.pending) {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
    }

    for op in ops {
        let h = match op {
            Op::Open(h) | Op::Insert(h, ..) | Op::Remove(h, _) | Op::Update(h, _) => *h,
            Op::LockedIncrement(h, _) | Op::Rotate(h) | Op::Login(h) | Op::Commit(h) => *h,
        };
        if matches!(op, Op::Open(_)) || open[h].is_none() {
            if let Some(previous) = open[h].take() {
                finish(previous, &mut model, &mut client).await;
            }
            let session = request(&manager, &client.cookie);
            session.len().await.expect("a read must succeed");
            open[h] = Some(Request {
                session,
                view: model.clone(),
                pending: BTreeMap::new(),
                rotate: false,
                login: false,
                sent_with: client.cookie.clone(),
                logins_seen: client.logins,
            });
            if matches!(op, Op::Open(_)) {
                continue;
            }
        }
        match op {
            Op::Open(_) => unreachable!("handled above"),
            Op::Insert(_, k, v) => {
                let r = open[h].as_mut().expect("open");
                r.session.insert(&key(*k), v).await.expect("insert");
                // Writing what the request already sees is no change: it takes effect as
                // of the request's start, before any concurrent write.
                if r.view.get(&key(*k)) != Some(v) {
                    r.view.insert(key(*k), *v);
                    r.pending.insert(key(*k), Some(*v));
                }
            }
            Op::Remove(_, k) => {
                let r = open[h].as_mut().expect("open");
                let removed = r.session.remove::<i64>(&key(*k)).await.expect("remove");
                assert_eq!(removed, r.view.remove(&key(*k)), "remove saw another value");
                if removed.is_some() {
                    r.pending.insert(key(*k), None);
                }
            }
            Op::Update(_, k) => {
                let r = open[h].as_mut().expect("open");
                let updated = r
                    .session
                    .update(&key(*k), |n: Option<i64>| n.unwrap_or(0) + 1)
                    .await;
                if client.refuses(r) {
                    assert!(
                        matches!(updated, Err(sessio::Error::Superseded)),
                        "an update sent before a login: {updated:?}"
                    );
                    open[h] = None;
                    continue;
                }
                let n = updated.expect("update");
                // With its own change of the key pending, `update` starts from that change
                // and, if the record moved meanwhile, from the fresh value: both are fine.
                let own = r.pending.remove(&key(*k));
                apply_pending(r, &mut model);
                let expected = model.get(&key(*k)).copied().unwrap_or(0) + 1;
                if own.is_none() {
                    assert_eq!(n, expected, "update saw a stale value");
                }
                model.insert(key(*k), n);
                r.view = model.clone();
                finish_if_rotated(&mut open[h], &mut model, &mut client).await;
            }
            Op::LockedIncrement(_, k) => {
                let r = open[h].as_mut().expect("open");
                let refused = client.refuses(r);
                let locked = async {
                    let guard = r.session.lock().await?;
                    let n: i64 = guard.get(&key(*k)).await?.unwrap_or(0);
                    guard.insert(&key(*k), n + 1).await?;
                    guard.unlock().await?;
                    Ok::<i64, sessio::Error>(n)
                }
                .await;
                if refused {
                    assert!(
                        matches!(locked, Err(sessio::Error::Superseded)),
                        "a locked section sent before a login: {locked:?}"
                    );
                    open[h] = None;
                    continue;
                }
                let n = locked.expect("the locked increment");
                // Under the lock the request sees the fresh record with its own changes.
                let own = r.pending.remove(&key(*k));
                apply_pending(r, &mut model);
                let base = match own {
                    Some(mine) => mine,
                    None => model.get(&key(*k)).copied(),
                };
                assert_eq!(n + 1, base.unwrap_or(0) + 1, "the lock saw a stale value");
                let _ = n;
                model.insert(key(*k), n + 1);
                r.view = model.clone();
                finish_if_rotated(&mut open[h], &mut model, &mut client).await;
            }
            Op::Rotate(_) => {
                let r = open[h].as_mut().expect("open");
                r.session.cycle_id().await.expect("cycle_id");
                r.rotate = true;
            }
            Op::Login(_) => {
                let r = open[h].as_mut().expect("open");
                r.session.login("ada").await.expect("login");
                r.rotate = true;
                r.login = true;
            }
            Op::Commit(_) => {
                let r = open[h].take().expect("open");
                finish(r, &mut model, &mut client).await;
            }
        }
    }
    for r in open.iter_mut().filter_map(Option::take) {
        finish(r, &mut model, &mut client).await;
    }
    let after = request(&manager, &client.cookie);
    for k in 0..4 {
        assert_eq!(
            after.get::<i64>(&key(k)).await.expect("read"),
            model.get(&key(k)).copied(),
            "k{k} differs from the model after {ops:?}"
        );
    }
    assert_eq!(after.get::<bool>("seed").await.expect("read"), Some(true));
}
