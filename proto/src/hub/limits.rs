//! Bounds on what one device may ask of the hub's feed: how many documents
//! and erasures one push may carry, and how many one device may send in a
//! day. Every erasure is sent to every laptop of the org, so without a
//! bound one enrolled laptop (or a stolen token) could fill the feed with
//! hundreds of thousands of them at will.
//!
//! Pure: the clock is passed in, and the counts live in the hub's
//! storage (`RateTake`s, applied atomically by the store's `rate_take`),
//! so every hub node on one database counts the same device and address
//! (issue 14: nothing node-local that matters). Windows are fixed and
//! numbered from the Unix epoch (UTC days, minutes): every node computes
//! the same window from its own clock without talking to the others.

use chrono::{DateTime, Utc};

use crate::sync::{MAX_ERASURES_PER_PUSH, PushRequest};

/// The hub's bounds (settings `max_*` in `hub.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    pub docs_per_push: usize,
    pub erasures_per_push: usize,
    pub docs_per_device_per_day: u64,
    pub erasures_per_device_per_day: u64,
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            // What a laptop sends at most in one batch (DEFAULT_PUSH_BATCH).
            docs_per_push: crate::sync::DEFAULT_PUSH_BATCH,
            erasures_per_push: MAX_ERASURES_PER_PUSH,
            // An import of old spreadsheets is the largest legitimate day;
            // 100,000 records is DESIGN §7's largest laptop.
            docs_per_device_per_day: 200_000,
            erasures_per_device_per_day: 5_000,
        }
    }
}

/// Why a push was refused before any of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The request itself is larger than the hub accepts.
    #[error(
        "this push carries {got} {what}, more than the {limit} the hub accepts in one request; update outpost on this laptop (it sends smaller batches)"
    )]
    PerPush {
        what: &'static str,
        got: usize,
        limit: usize,
    },
    /// The device has sent its day's worth.
    #[error(
        "this laptop has sent {used} {what} today (UTC) and the hub accepts at most {limit} a day from one laptop; nothing of this push was applied. Sync again tomorrow, or ask the hub's admin to raise max_{what}_per_device_per_day"
    )]
    PerDay {
        what: &'static str,
        used: u64,
        limit: u64,
    },
}

impl FeedLimits {
    /// Checks one push against the per-request bounds.
    pub fn check_push(&self, req: &PushRequest) -> Result<(), LimitError> {
        if req.docs.len() > self.docs_per_push {
            return Err(LimitError::PerPush {
                what: "documents",
                got: req.docs.len(),
                limit: self.docs_per_push,
            });
        }
        if req.erased.len() > self.erasures_per_push {
            return Err(LimitError::PerPush {
                what: "erasures",
                got: req.erased.len(),
                limit: self.erasures_per_push,
            });
        }
        Ok(())
    }
}

/// One counter to add to in the hub's storage: `key` in window `period`
/// (a window number), which ends at `expires` (Unix seconds; the store
/// may forget it after that). `add` is counted unless the counter would
/// then pass `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTake {
    pub key: String,
    pub period: i64,
    pub expires: i64,
    pub add: u64,
    pub limit: u64,
}

/// What the store answers to a set of takes, applied all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateTaken {
    /// Every counter was added to; their new values, in order.
    Taken(Vec<u64>),
    /// Take `index` would have passed its limit with the counter at
    /// `used`; nothing was added to any counter.
    Refused { index: usize, used: u64 },
}

const DAY_SECS: i64 = 24 * 3600;
const MINUTE_SECS: i64 = 60;

/// The fixed window of `len` seconds that `now` falls in: (number, end).
fn window(now: DateTime<Utc>, len: i64) -> (i64, i64) {
    let n = now.timestamp().div_euclid(len);
    (n, (n + 1) * len)
}

impl FeedLimits {
    /// The counters a push of `docs` documents and `erasures` erasures by
    /// `device` at `now` takes: the device's documents and erasures of
    /// this UTC day. Apply them with the store's `rate_take`; a refusal
    /// becomes [`FeedLimits::push_refused`].
    pub fn push_quota(
        &self,
        device: &str,
        docs: u64,
        erasures: u64,
        now: DateTime<Utc>,
    ) -> Vec<RateTake> {
        let (period, expires) = window(now, DAY_SECS);
        vec![
            RateTake {
                key: format!("push-docs:{device}"),
                period,
                expires,
                add: docs,
                limit: self.docs_per_device_per_day,
            },
            RateTake {
                key: format!("push-erasures:{device}"),
                period,
                expires,
                add: erasures,
                limit: self.erasures_per_device_per_day,
            },
        ]
    }

    /// Why take `index` of [`FeedLimits::push_quota`] was refused.
    pub fn push_refused(&self, index: usize, used: u64) -> LimitError {
        if index == 0 {
            LimitError::PerDay {
                what: "documents",
                used,
                limit: self.docs_per_device_per_day,
            }
        } else {
            LimitError::PerDay {
                what: "erasures",
                used,
                limit: self.erasures_per_device_per_day,
            }
        }
    }
}

/// Wrong enrolment codes, counted per client address and for all
/// addresses together in one-minute windows: an address is refused for
/// the rest of the minute once it has sent `per_addr`, and everyone once
/// ten times that came from all addresses (a spread-out guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolFailures {
    pub per_addr: u32,
    /// Whose counters: enrolment codes and dashboard sign-in codes are
    /// counted apart, so wrong codes of one kind do not lock out the other.
    pub scope: &'static str,
}

impl EnrolFailures {
    /// Wrong enrolment codes.
    pub fn enrolment(per_addr: u32) -> EnrolFailures {
        EnrolFailures {
            per_addr,
            scope: "enrol-failures",
        }
    }

    /// Wrong dashboard sign-in codes.
    pub fn signin(per_addr: u32) -> EnrolFailures {
        EnrolFailures {
            per_addr,
            scope: "signin-failures",
        }
    }

    /// The counters of `addr` at `now`: (key, window) pairs to read with
    /// the store's `rate_counts` before trying a code.
    pub fn keys(&self, addr: &str, now: DateTime<Utc>) -> [(String, i64); 2] {
        let (period, _) = window(now, MINUTE_SECS);
        [
            (format!("{}:{addr}", self.scope), period),
            (format!("{}:*", self.scope), period),
        ]
    }

    /// Whether `addr` may try a code, given the counts of
    /// [`EnrolFailures::keys`].
    pub fn blocked(&self, counts: &[u64]) -> bool {
        let per_addr = u64::from(self.per_addr);
        counts.first().is_some_and(|&n| n >= per_addr)
            || counts.get(1).is_some_and(|&n| n >= per_addr * 10)
    }

    /// The takes that count one wrong code from `addr` at `now` (never
    /// refused: counting is what blocks the next try).
    pub fn failure(&self, addr: &str, now: DateTime<Utc>) -> Vec<RateTake> {
        let (_, expires) = window(now, MINUTE_SECS);
        self.keys(addr, now)
            .into_iter()
            .map(|(key, period)| RateTake {
                key,
                period,
                expires,
                add: 1,
                limit: u64::MAX,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_push_takes_the_devices_counters_of_the_utc_day() {
        let limits = FeedLimits {
            erasures_per_device_per_day: 10,
            ..FeedLimits::default()
        };
        let morning = limits.push_quota("a", 3, 2, at("2025-03-04T00:00:00Z"));
        let night = limits.push_quota("a", 0, 0, at("2025-03-04T23:59:59Z"));
        let next = limits.push_quota("a", 0, 0, at("2025-03-05T00:00:00Z"));
        assert_eq!(morning[0].period, night[0].period, "one UTC day");
        assert_eq!(next[0].period, morning[0].period + 1);
        assert_eq!(morning[0].expires, at("2025-03-05T00:00:00Z").timestamp());
        assert_eq!((morning[0].add, morning[1].add), (3, 2));
        assert_eq!(morning[1].limit, 10);
        assert_ne!(morning[0].key, morning[1].key);
        assert_ne!(
            morning[0].key,
            limits.push_quota("b", 0, 0, at("2025-03-04T10:00:00Z"))[0].key
        );
        let err = limits.push_refused(1, 9);
        assert!(err.to_string().contains("max_erasures_per_device_per_day"));
        assert!(err.to_string().contains('9'));
    }

    #[test]
    fn an_address_is_blocked_at_its_limit_and_everyone_at_ten_times_it() {
        let f = EnrolFailures::enrolment(5);
        assert!(!f.blocked(&[4, 49]));
        assert!(f.blocked(&[5, 5]));
        assert!(f.blocked(&[0, 50]));
        let now = at("2025-03-04T10:00:30Z");
        let takes = f.failure("10.0.0.1", now);
        let keys = f.keys("10.0.0.1", now);
        assert_eq!(takes.len(), 2);
        for (take, (key, period)) in takes.iter().zip(&keys) {
            assert_eq!((&take.key, take.period), (key, *period));
            assert_eq!(take.expires, at("2025-03-04T10:01:00Z").timestamp());
        }
        assert_ne!(
            f.keys("10.0.0.1", at("2025-03-04T10:01:00Z"))[0].1,
            keys[0].1,
            "a new minute, a new window"
        );
        let signin = EnrolFailures::signin(5);
        assert!(
            signin
                .keys("10.0.0.1", now)
                .iter()
                .all(|k| !keys.contains(k)),
            "sign-in codes are counted apart from enrolment codes"
        );
    }
}
