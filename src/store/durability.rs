//! "A 2xx on a write means it is on disk": writers call [`Durability::wait`] after their
//! write and before answering. Concurrent writers share one flush (group commit): each
//! takes a ticket; whoever holds the lock flushes once for every ticket issued so far, and
//! writers whose ticket is already covered return without flushing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::StoreError;

type FlushFn = dyn Fn() -> Result<(), StoreError> + Send + Sync;

#[derive(Clone)]
pub struct Durability {
    inner: Arc<Inner>,
}

struct Inner {
    issued: AtomicU64,
    flushed: tokio::sync::Mutex<u64>,
    flushes: AtomicU64,
    flush: Box<FlushFn>,
    /// How long each physical flush took.
    flush_latency: Latency,
    /// How long each writer waited for its write to be on disk.
    wait_latency: Latency,
}

/// Upper bounds (seconds) of the latency buckets: 0.5 ms to 2.5 s.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// A latency histogram kept with atomics (no lock on the write path).
#[derive(Default)]
pub struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A reading of a [`Latency`]: cumulative bucket counts, the count and the sum (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Latency {
    pub fn observe(&self, started: Instant) {
        let d = started.elapsed();
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        LatencySnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// The store's write and flush latencies (`tollgate_store_*_seconds`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreLatency {
    /// From a write's end to its being durable (the group-commit wait).
    pub write: LatencySnapshot,
    /// One physical flush.
    pub flush: LatencySnapshot,
}

impl Durability {
    pub fn new(flush: impl Fn() -> Result<(), StoreError> + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                issued: AtomicU64::new(0),
                flushed: tokio::sync::Mutex::new(0),
                flushes: AtomicU64::new(0),
                flush: Box::new(flush),
                flush_latency: Latency::default(),
                wait_latency: Latency::default(),
            }),
        }
    }

    /// Returns once every write made before this call is flushed to disk.
    pub async fn wait(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let ticket = self.inner.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.inner.flushed.lock().await;
        if *flushed >= ticket {
            self.inner.wait_latency.observe(started);
            return Ok(());
        }
        let target = self.inner.issued.load(Ordering::SeqCst);
        let inner = self.inner.clone();
        let flush_started = Instant::now();
        tokio::task::spawn_blocking(move || (inner.flush)())
            .await
            .map_err(|e| StoreError::Io(format!("flush task failed: {e}")))??;
        self.inner.flush_latency.observe(flush_started);
        self.inner.flushes.fetch_add(1, Ordering::Relaxed);
        *flushed = target;
        self.inner.wait_latency.observe(started);
        Ok(())
    }

    /// The write-wait and flush latencies so far.
    pub fn latency(&self) -> StoreLatency {
        StoreLatency {
            write: self.inner.wait_latency.snapshot(),
            flush: self.inner.flush_latency.snapshot(),
        }
    }

    /// Blocking variant for CLI commands.
    pub fn wait_blocking(&self) -> Result<(), StoreError> {
        (self.inner.flush)()
    }

    /// How many physical flushes ran (tests show group commit with it).
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_flushes() {
        let d = Durability::new(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(())
        });
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move { d.wait().await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(d.flush_count() < 50, "flushes: {}", d.flush_count());
        assert!(d.flush_count() >= 1);
        let l = d.latency();
        assert_eq!(l.write.count, 50, "every waiter is timed");
        assert_eq!(l.flush.count, d.flush_count(), "every flush is timed");
        // Each flush slept 20 ms: none lands at or below 10 ms, all at or below 25 ms.
        let le = |s: &LatencySnapshot, bound: f64| {
            s.buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map(|(_, n)| *n)
                .unwrap()
        };
        assert_eq!(le(&l.flush, 0.01), 0);
        assert_eq!(le(&l.flush, 0.025), l.flush.count);
        assert!(l.flush.sum >= 0.02 * l.flush.count as f64);
    }
}
