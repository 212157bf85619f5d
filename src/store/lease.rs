//! A lock-free "still good" flag with an expiry on the monotonic clock: renewed after
//! each success, read on hot paths (the PostgreSQL row cache's liveness, sled's health
//! read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Lease {
    epoch: Instant,
    /// Milliseconds after `epoch` until which the lease holds; 0: never renewed.
    until_ms: AtomicU64,
}

impl Lease {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the last renewal has not expired yet.
    pub(crate) fn live(&self) -> bool {
        self.now_ms() < self.until_ms.load(Ordering::Acquire)
    }

    /// Holds until `period` from now.
    pub(crate) fn renew(&self, period: Duration) {
        let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        self.until_ms
            .store(self.now_ms().saturating_add(period), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_for_its_period_after_a_renewal_only() {
        let lease = Lease::new();
        assert!(!lease.live(), "never renewed");
        lease.renew(Duration::from_secs(1));
        assert!(lease.live());
        // A renewal for no time has expired at once (expiry without waiting).
        lease.renew(Duration::ZERO);
        assert!(!lease.live());
        // One renewed for a second, 5 s ago.
        let old = Lease {
            epoch: Instant::now()
                .checked_sub(Duration::from_secs(5))
                .unwrap_or_else(Instant::now),
            until_ms: AtomicU64::new(1_000),
        };
        assert!(!old.live());
    }
}
