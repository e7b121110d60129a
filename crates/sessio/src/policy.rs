//! Expiry and touch math: when a session ends, how long a write keeps it, when a read
//! extends it, and what `Max-Age` its cookie gets. Time comes from a
//! [`Clock`](crate::clock::Clock), which tests replace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::unix_millis;
use crate::record::Meta;

/// The longest `Max-Age` a cookie is sent with: 400 days, the cap that RFC 6265bis sets
/// for browsers (Chromium applies it).
pub(crate) const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// The expiry rules of one configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub idle: Duration,
    pub absolute: Option<Duration>,
    pub touch_after: Duration,
    /// Whether creation times are kept (not in the compat format).
    pub keeps_created: bool,
}

impl Policy {
    /// How much of the absolute lifetime is left; `None` without one (or without a known
    /// creation time).
    pub fn remaining_absolute(&self, meta: &Meta, now: SystemTime) -> Option<Duration> {
        let absolute = self.absolute?;
        if meta.created == 0 {
            return None;
        }
        let deadline = UNIX_EPOCH + Duration::from_millis(meta.created) + absolute;
        Some(deadline.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// The idle timeout of this session (its override, or the configured one).
    pub fn idle(&self, meta: &Meta) -> Duration {
        meta.ttl_override
            .map_or(self.idle, |s| Duration::from_secs(s.into()))
    }

    /// How long a record written now should live; `None` if its absolute lifetime is over.
    pub fn ttl(&self, meta: &Meta, now: SystemTime) -> Option<Duration> {
        let idle = self.idle(meta);
        match self.remaining_absolute(meta, now) {
            Some(Duration::ZERO) => None,
            Some(rest) => Some(idle.min(rest)),
            None => Some(idle),
        }
    }

    /// Whether a record with this metadata and store expiry is over at `now`.
    pub fn expired(&self, meta: &Meta, expires_at: Option<SystemTime>, now: SystemTime) -> bool {
        expires_at.is_some_and(|e| e <= now) || self.ttl(meta, now).is_none()
    }

    /// Whether a record expiring at `expires_at` was last extended at least `touch_after`
    /// ago (or cannot tell), so that a read should extend it again.
    pub fn due_for_touch(
        &self,
        expires_at: Option<SystemTime>,
        ttl: Duration,
        now: SystemTime,
    ) -> bool {
        let throttle = self.touch_after.min(ttl / 2);
        match expires_at {
            None => true,
            Some(e) => e + throttle < now + ttl,
        }
    }

    /// Stamps the creation time of a session about to be stored for the first time.
    pub fn stamp_created(&self, meta: &mut Meta, now: SystemTime) {
        if meta.created == 0 && self.keeps_created {
            meta.created = unix_millis(now).max(1);
        }
    }

    /// Stamps the time a new id is issued (not in the compat format).
    pub fn stamp_issued(&self, meta: &mut Meta, now: SystemTime) {
        if self.keeps_created {
            meta.issued = unix_millis(now).max(1);
        }
    }

    /// Whether a persistent cookie is due for renewal: more than half of the `Max-Age` it
    /// was sent with has passed (or, for a record that does not say when its id was
    /// issued, whenever a read would extend the record).
    pub fn cookie_due(
        &self,
        meta: &Meta,
        ttl: Duration,
        due_for_touch: bool,
        now: SystemTime,
    ) -> bool {
        if meta.issued == 0 {
            return due_for_touch;
        }
        let age = unix_millis(now).saturating_sub(meta.issued);
        u128::from(age) * 2 >= Self::max_age(ttl).as_millis()
    }

    /// The cookie's `Max-Age` for a record that lives `ttl`: whole seconds rounded up, so
    /// that a session with 0.8 s left is not sent `Max-Age=0` (which deletes the cookie),
    /// and at most [`MAX_COOKIE_AGE`] (what browsers keep at most; a longer session renews
    /// its cookie when it is used).
    pub fn max_age(ttl: Duration) -> Duration {
        Duration::from_secs(crate::store::support::ttl_secs(ttl)).min(MAX_COOKIE_AGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn cookie_ages_are_whole_seconds_and_capped_at_400_days() {
        assert_eq!(
            Policy::max_age(Duration::from_millis(800)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Policy::max_age(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let forever = Duration::from_secs(u64::from(u32::MAX));
        assert_eq!(Policy::max_age(forever), MAX_COOKIE_AGE);
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn policy(absolute: Option<u64>) -> Policy {
        Policy {
            idle: Duration::from_secs(60),
            absolute: absolute.map(Duration::from_secs),
            touch_after: Duration::from_secs(10),
            keeps_created: true,
        }
    }

    #[test]
    fn the_absolute_lifetime_caps_the_idle_ttl_and_ends_the_session() {
        let p = policy(Some(100));
        let mut meta = Meta::default();
        p.stamp_created(&mut meta, at(T0));
        assert_eq!(meta.created, T0);
        assert_eq!(p.ttl(&meta, at(T0)), Some(Duration::from_secs(60)));
        assert_eq!(p.ttl(&meta, at(T0 + 70_000)), Some(Duration::from_secs(30)));
        assert_eq!(
            p.ttl(&meta, at(T0 + 98_200)),
            Some(Duration::from_millis(1_800))
        );
        assert_eq!(p.ttl(&meta, at(T0 + 100_000)), None);
        assert!(p.expired(&meta, None, at(T0 + 100_000)));
        assert!(!p.expired(&meta, Some(at(T0 + 5)), at(T0)));
        assert!(p.expired(&meta, Some(at(T0)), at(T0)));
    }

    #[test]
    fn a_session_with_less_than_a_second_left_keeps_its_cookie() {
        let p = policy(Some(100));
        let meta = Meta {
            created: T0,
            ..Meta::default()
        };
        let ttl = p.ttl(&meta, at(T0 + 99_200)).unwrap();
        assert_eq!(Policy::max_age(ttl), Duration::from_secs(1));
        let ttl = p.ttl(&meta, at(T0 + 98_200)).unwrap();
        assert_eq!(Policy::max_age(ttl), Duration::from_secs(2));
    }

    #[test]
    fn creation_is_stamped_once_and_never_moved() {
        let p = policy(Some(100));
        let mut meta = Meta::default();
        p.stamp_created(&mut meta, at(T0));
        p.stamp_created(&mut meta, at(T0 + 50_000));
        assert_eq!(meta.created, T0);
        let compat = Policy {
            keeps_created: false,
            ..p
        };
        let mut meta = Meta::default();
        compat.stamp_created(&mut meta, at(T0));
        assert_eq!(meta.created, 0, "the compat format has no room for it");
        assert_eq!(
            compat.ttl(&meta, at(T0 + 10_000_000)),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn touches_are_throttled() {
        let p = policy(None);
        let ttl = Duration::from_secs(60);
        let now = at(T0);
        assert!(!p.due_for_touch(Some(now + ttl), ttl, now), "just written");
        assert!(!p.due_for_touch(Some(now + ttl - Duration::from_secs(9)), ttl, now));
        assert!(p.due_for_touch(Some(now + ttl - Duration::from_secs(11)), ttl, now));
        assert!(p.due_for_touch(None, ttl, now), "unknown expiry");
    }

    #[test]
    fn the_override_replaces_the_idle_timeout() {
        let p = policy(None);
        let meta = Meta {
            ttl_override: Some(5),
            ..Meta::default()
        };
        assert_eq!(p.ttl(&meta, at(T0)), Some(Duration::from_secs(5)));
    }
}
