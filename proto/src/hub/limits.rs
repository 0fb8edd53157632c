//! Bounds on what one device may ask of the hub's feed: how many documents
//! and erasures one push may carry, and how many one device may send in a
//! day. Every erasure is sent to every laptop of the org, so without a
//! bound one enrolled laptop (or a stolen token) could fill the feed with
//! hundreds of thousands of them at will.
//!
//! Pure: the caller passes the clock in and keeps the [`DeviceQuotas`]
//! (the hub server holds one per process, behind a mutex).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

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
        "this laptop has sent {used} {what} in the last 24 hours and the hub accepts at most {limit} a day from one laptop; nothing of this push was applied. Sync again tomorrow, or ask the hub's admin to raise max_{what}_per_device_per_day"
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

#[derive(Debug, Clone, Copy)]
struct Day {
    started: DateTime<Utc>,
    docs: u64,
    erasures: u64,
}

/// Per-device counts over a day (a fixed window starting at the device's
/// first push in it).
#[derive(Debug, Default)]
pub struct DeviceQuotas {
    days: HashMap<String, Day>,
}

impl DeviceQuotas {
    /// Counts a push of `docs` documents and `erasures` erasures by
    /// `device` at `now`, or refuses it whole (counting nothing) when it
    /// would pass a daily bound.
    pub fn take(
        &mut self,
        limits: &FeedLimits,
        device: &str,
        docs: u64,
        erasures: u64,
        now: DateTime<Utc>,
    ) -> Result<(), LimitError> {
        // Forget finished windows now and then, so the map holds only
        // devices active today.
        if self.days.len() > 10_000 {
            self.days
                .retain(|_, d| now - d.started < TimeDelta::days(1));
        }
        let day = self.days.entry(device.to_string()).or_insert(Day {
            started: now,
            docs: 0,
            erasures: 0,
        });
        if now - day.started >= TimeDelta::days(1) || now < day.started {
            *day = Day {
                started: now,
                docs: 0,
                erasures: 0,
            };
        }
        if day.docs + docs > limits.docs_per_device_per_day {
            return Err(LimitError::PerDay {
                what: "documents",
                used: day.docs,
                limit: limits.docs_per_device_per_day,
            });
        }
        if day.erasures + erasures > limits.erasures_per_device_per_day {
            return Err(LimitError::PerDay {
                what: "erasures",
                used: day.erasures,
                limit: limits.erasures_per_device_per_day,
            });
        }
        day.docs += docs;
        day.erasures += erasures;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_of_erasures_is_bounded_per_device_and_refused_whole() {
        let limits = FeedLimits {
            erasures_per_device_per_day: 10,
            ..FeedLimits::default()
        };
        let mut q = DeviceQuotas::default();
        let t0 = DateTime::parse_from_rfc3339("2025-03-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        q.take(&limits, "a", 0, 8, t0).unwrap();
        let err = q.take(&limits, "a", 0, 3, t0).unwrap_err();
        assert!(err.to_string().contains("max_erasures_per_device_per_day"));
        q.take(&limits, "a", 0, 2, t0).unwrap();
        q.take(&limits, "b", 0, 10, t0).unwrap();
        q.take(&limits, "a", 0, 10, t0 + TimeDelta::days(1))
            .unwrap();
    }
}
