//! "A 2xx on a write means it is on disk": writers call [`Durability::wait`] after their
//! write and before answering. Concurrent writers share one flush (group commit): each
//! takes a ticket; whoever holds the lock flushes once for every ticket issued so far, and
//! writers whose ticket is already covered return without flushing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
}

impl Durability {
    pub fn new(flush: impl Fn() -> Result<(), StoreError> + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                issued: AtomicU64::new(0),
                flushed: tokio::sync::Mutex::new(0),
                flushes: AtomicU64::new(0),
                flush: Box::new(flush),
            }),
        }
    }

    /// Returns once every write made before this call is flushed to disk.
    pub async fn wait(&self) -> Result<(), StoreError> {
        let ticket = self.inner.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.inner.flushed.lock().await;
        if *flushed >= ticket {
            return Ok(());
        }
        let target = self.inner.issued.load(Ordering::SeqCst);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || (inner.flush)())
            .await
            .map_err(|e| StoreError::Io(format!("flush task failed: {e}")))??;
        self.inner.flushes.fetch_add(1, Ordering::Relaxed);
        *flushed = target;
        Ok(())
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
    }
}
