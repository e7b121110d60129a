//! Custom id generators: one that keeps the guarantees works end to end (new sessions,
//! rotation, a login, strict parsing); ones that cannot show 128 random bits are refused
//! when the configuration is checked.

use sessio::{id::IdGenerator, Config, MemoryStore, SessionManager};

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn hex(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `sid_` and the hex of 16 random bytes (sanic-cookies' `uuid4().hex`, prefixed).
#[derive(Debug)]
struct PrefixedHex;

impl IdGenerator for PrefixedHex {
    fn random_bytes(&self) -> usize {
        16
    }
    fn encode(&self, random: &[u8]) -> String {
        format!("sid_{}", hex(random))
    }
    fn decode(&self, id: &str) -> Option<Vec<u8>> {
        unhex(id.strip_prefix("sid_")?)
    }
}

#[tokio::test]
async fn a_custom_format_works_end_to_end_and_only_its_own_spelling_is_accepted() {
    let manager = SessionManager::new(
        MemoryStore::default(),
        Config::default().with_id_generator(PrefixedHex),
    )
    .unwrap();
    let session = manager.session(std::iter::empty());
    session.insert("n", 1).await.unwrap();
    let cookie = pair(&session.commit().await.unwrap().unwrap());
    let id = cookie.strip_prefix("id=").unwrap();
    assert!(id.starts_with("sid_") && id.len() == 36, "{id}");

    let again = manager.session([cookie.as_bytes()]);
    assert_eq!(again.get::<i32>("n").await.unwrap(), Some(1));
    again.login("ada").await.unwrap();
    let rotated = pair(&again.commit().await.unwrap().expect("a new id"));
    assert_ne!(rotated, cookie);
    assert!(rotated.starts_with("id=sid_"));
    let after = manager.session([rotated.as_bytes()]);
    assert_eq!(
        after.current_user::<String>().await.unwrap().as_deref(),
        Some("ada")
    );

    // Another spelling of the same bytes, another format, garbage: fresh sessions.
    let upper = format!(
        "id=sid_{}",
        rotated.strip_prefix("id=sid_").unwrap().to_uppercase()
    );
    let native = format!("id={}", "A".repeat(43));
    for forged in [
        upper.as_str(),
        native.as_str(),
        "id=sid_",
        "id=sid_zz",
        "id=sid_00.1",
    ] {
        let session = manager.session([forged.as_bytes()]);
        assert_eq!(
            session.current_user::<String>().await.unwrap(),
            None,
            "{forged}"
        );
        assert!(session.is_empty().await.unwrap(), "{forged}");
    }
}

/// Uses only the first 4 of its 16 bytes: 32 bits, whatever its ids look like.
#[derive(Debug)]
struct Lossy;

impl IdGenerator for Lossy {
    fn random_bytes(&self) -> usize {
        16
    }
    fn encode(&self, random: &[u8]) -> String {
        format!("{}{}", hex(&random[..4]), "0".repeat(24))
    }
    fn decode(&self, id: &str) -> Option<Vec<u8>> {
        let mut raw = unhex(id.get(..8)?)?;
        raw.resize(16, 0);
        Some(raw)
    }
}

/// Asks for 8 bytes: 64 bits.
#[derive(Debug)]
struct Short;

impl IdGenerator for Short {
    fn random_bytes(&self) -> usize {
        8
    }
    fn encode(&self, random: &[u8]) -> String {
        hex(random)
    }
    fn decode(&self, id: &str) -> Option<Vec<u8>> {
        unhex(id)
    }
}

/// Writes a `.`, which the cookie uses to separate the write count.
#[derive(Debug)]
struct Dotted;

impl IdGenerator for Dotted {
    fn encode(&self, random: &[u8]) -> String {
        format!("s.{}", hex(random))
    }
    fn decode(&self, id: &str) -> Option<Vec<u8>> {
        unhex(id.strip_prefix("s.")?)
    }
}

fn refusal(config: Config) -> String {
    SessionManager::new(MemoryStore::default(), config)
        .unwrap_err()
        .to_string()
}

#[test]
fn generators_that_cannot_show_128_random_bits_are_refused() {
    let lossy = refusal(Config::default().with_id_generator(Lossy));
    assert!(lossy.contains("decode back"), "{lossy}");
    let short = refusal(Config::default().with_id_generator(Short));
    assert!(short.contains("at least 16"), "{short}");
    let dotted = refusal(Config::default().with_id_generator(Dotted));
    assert!(dotted.contains("A-Z a-z 0-9 - _"), "{dotted}");
    let compat = refusal(Config::sanic_session().with_id_generator(PrefixedHex));
    assert!(compat.contains("with_id_generator"), "{compat}");
}

/// Custom ids with what they meet: a lock taken on one "process", a rotation inside it, a
/// plain write from a second process during the lock, and a logout from the second.
#[tokio::test]
async fn custom_ids_hold_under_a_lock_a_rotation_and_a_second_process() {
    let store = MemoryStore::default();
    let config = Config::default().with_id_generator(PrefixedHex);
    let one = SessionManager::new(store.clone(), config.clone()).unwrap();
    let two = SessionManager::new(store, config).unwrap();
    let first = one.session(std::iter::empty());
    first.insert("n", 1).await.unwrap();
    let cookie = pair(&first.commit().await.unwrap().unwrap());

    let holder = one.session([cookie.as_bytes()]);
    let guard = holder.lock().await.unwrap();
    guard.insert("locked", true).await.unwrap();
    let writer = two.session([cookie.as_bytes()]);
    writer.insert("plain", 2).await.unwrap();
    writer.commit().await.unwrap();
    guard.cycle_id().await.unwrap();
    guard.unlock().await.unwrap();
    let rotated = pair(&holder.commit().await.unwrap().expect("the rotated id"));
    assert!(rotated.starts_with("id=sid_"), "{rotated}");

    let seen = two.session([rotated.as_bytes()]);
    assert_eq!(seen.get::<bool>("locked").await.unwrap(), Some(true));
    assert_eq!(seen.get::<i32>("plain").await.unwrap(), Some(2));
    seen.logout().await.unwrap();
    seen.commit().await.unwrap();
    assert!(one.session([rotated.as_bytes()]).is_empty().await.unwrap());
    assert!(one.session([cookie.as_bytes()]).is_empty().await.unwrap());
}
