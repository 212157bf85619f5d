//! A lock-free "still good" flag with an expiry on the coarse monotonic clock
//! ([`coarse_monotonic_ms`]: no timestamp-counter read, so a check costs an atomic load
//! and a few nanoseconds): renewed after each success, read on hot paths (the PostgreSQL
//! row cache's liveness, sled's health read). Expiry is exact to a scheduler tick, which
//! is nothing against the periods of a second or more it is used with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::time::coarse_monotonic_ms;

pub(crate) struct Lease {
    /// Coarse monotonic milliseconds until which the lease holds; 0: never renewed.
    until_ms: AtomicU64,
}

impl Lease {
    pub(crate) fn new() -> Self {
        Self {
            until_ms: AtomicU64::new(0),
        }
    }

    /// Whether the last renewal has not expired yet.
    pub(crate) fn live(&self) -> bool {
        coarse_monotonic_ms() < self.until_ms.load(Ordering::Acquire)
    }

    /// Holds until `period` from now.
    pub(crate) fn renew(&self, period: Duration) {
        let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        self.until_ms.store(
            coarse_monotonic_ms().saturating_add(period),
            Ordering::Release,
        );
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
            until_ms: AtomicU64::new(coarse_monotonic_ms().saturating_sub(4_000)),
        };
        assert!(!old.live());
    }

    /// The coarse clock is the monotonic clock, at most a tick (10 ms at HZ=100) behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_coarse_clock_is_the_monotonic_clock_within_a_tick() {
        use crate::domain::time::clock_ms;
        let precise_ms = || clock_ms(rustix::time::ClockId::Monotonic);
        for _ in 0..1000 {
            let before = precise_ms();
            let coarse = coarse_monotonic_ms();
            let after = precise_ms();
            assert!(coarse <= after, "coarse {coarse} ahead of {after}");
            assert!(coarse + 10 >= before, "coarse {coarse} behind {before}");
        }
    }
}
