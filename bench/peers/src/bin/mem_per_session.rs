//! Heap bytes per stored session, by a counting allocator: `mem_per_session sessio|tower N`.
//!
//! Each session holds `{"foo": 1}`, created the way a request would create it.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let which = std::env::args().nth(1).expect("sessio | tower");
    let n: usize = std::env::args()
        .nth(2)
        .map_or(200_000, |s| s.parse().expect("a count"));
    let per_session = match which.as_str() {
        "sessio" => {
            let store = sessio::MemoryStore::builder().max_sessions(n).build();
            let manager =
                sessio::SessionManager::new(store.clone(), sessio::Config::default()).unwrap();
            let before = LIVE.load(Ordering::Relaxed);
            for _ in 0..n {
                let session = manager.session(std::iter::empty());
                session.insert("foo", 1).await.unwrap();
                session.commit().await.unwrap();
            }
            assert_eq!(store.len(), n);
            (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64
        }
        "tower" => {
            use tower_sessions::session::{Id, Record};
            use tower_sessions::{MemoryStore, SessionStore};
            let store = MemoryStore::default();
            let before = LIVE.load(Ordering::Relaxed);
            for _ in 0..n {
                let mut data = std::collections::HashMap::new();
                data.insert("foo".to_string(), serde_json::json!(1));
                let mut record = Record {
                    id: Id::default(),
                    data,
                    expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(14),
                };
                store.create(&mut record).await.unwrap();
            }
            (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64
        }
        other => panic!("unknown store {other}: sessio | tower"),
    };
    println!("{per_session:.0}");
}
