//! The Lua scripts behind the multi-step operations (load, conditional save and delete,
//! lock, fenced writes, release), and the helpers that build their keys and read their answers.

use redis::Script;
use sessio::store::{AfterWrite, Outcome};

pub(crate) struct Scripts {
    pub(crate) load: Script,
    pub(crate) create: Script,
    pub(crate) save: Script,
    pub(crate) delete_if: Script,
    pub(crate) acquire: Script,
    pub(crate) save_locked: Script,
    pub(crate) delete_locked: Script,
    pub(crate) release: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            load: Script::new("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"),
            // 2 = conflict (the key exists), 3 = stored. With the near cache: like `save`,
            // it ends with a read, so that Redis tracks the new key for this connection and
            // the session's next request is served from the cache. Only ids this process
            // generated reach it, so no forged id is ever tracked.
            create: Script::new(
                r"if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
                redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
                redis.call('PTTL', KEYS[1])
                return 3",
            ),
            // 1 = missing, 2 = conflict, 3 = stored (the codes of `fenced`). The closing
            // read makes Redis track the key for this connection again (a write ends
            // tracking): see `near`.
            save: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[1] then return 2 end
                redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                redis.call('PTTL', KEYS[1])
                return 3",
            ),
            // 1 = missing, 2 = conflict, 3 = deleted.
            delete_if: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[1] then return 2 end
                redis.call('DEL', KEYS[1])
                return 3",
            ),
            // {0} = held by another; {1, value, pttl} = granted
            acquire: Script::new(
                r"local holder = redis.call('GET', KEYS[2])
                if holder and holder ~= ARGV[1] then return {0} end
                redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
                return {1, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}",
            ),
            // 0 = lease lost, 1 = missing, 2 = conflict, 3 = done. ARGV[2] is the expected
            // bytes, or empty with ARGV[5] = '1' for "only if absent".
            save_locked: Script::new(
                r"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
                local cur = redis.call('GET', KEYS[1])
                if ARGV[5] == '1' then
                    if cur then return 2 end
                else
                    if not cur then return 1 end
                    if cur ~= ARGV[2] then return 2 end
                end
                redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
                if ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
                redis.call('PTTL', KEYS[1])
                return 3",
            ),
            delete_locked: Script::new(
                r"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
                local cur = redis.call('GET', KEYS[1])
                if not cur then return 1 end
                if cur ~= ARGV[2] then return 2 end
                redis.call('DEL', KEYS[1])
                if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
                return 3",
            ),
            release: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                    return redis.call('DEL', KEYS[1])
                end
                return 0",
            ),
        }
    }
}

pub(crate) fn lock_key(key: &str) -> String {
    format!("{{{key}}}:lock")
}

pub(crate) fn flag(then: AfterWrite) -> &'static str {
    match then {
        AfterWrite::Release => "1",
        AfterWrite::KeepLease => "0",
    }
}

/// The answer of a write script: 0 = lease lost, 1 = missing, 2 = conflict, 3 = done.
pub(crate) fn fenced<T>(code: i64, done: T) -> Outcome<T> {
    match code {
        3 => Outcome::Done(done),
        2 => Outcome::Conflict,
        1 => Outcome::Missing,
        _ => Outcome::LeaseLost,
    }
}
