//! The sled writer: one thread that runs the write transactions of concurrent callers
//! together, several changes in one sled transaction.
//!
//! Why: every sled transaction seals its own log buffer at commit (so that the batch is
//! recovered atomically), and sled writes each sealed buffer with a `pwrite` and a waiting
//! `sync_file_range`. Committed one by one, 64 concurrent writers cost 64 device writes
//! before the group-committed flush; committed together they cost one. sled runs at most
//! one transaction at a time anyway (a transaction holds its global write lock from the
//! first read to the commit), so the writer gives up no parallelism, and it keeps the
//! transactions off the async runtime's threads.
//!
//! A change is a closure over [`Tx`], the transactional view of every tree. The writer
//! takes what is queued (up to [`MAX_BATCH`]) and runs the changes in order in one
//! transaction, each seeing the writes of those before it, then flushes once and answers
//! them all: a change's answer means "on disk". The changes that arrive while a batch
//! commits and flushes make the next batch (group commit), so under load a batch costs
//! two log writes (the transaction's and the flush's) whatever its size. When one of them aborts (a
//! conflict the caller reports, such as a taken login), the whole transaction is dropped
//! and each change runs again in a transaction of its own, so that one refusal never
//! refuses another caller's change. Changes are `Fn` and may run more than once, as sled's
//! own transaction closures may.
//!
//! The caller's export gate (`SledStore::writes`) travels with its change and is released
//! after the commit, so an export never starts while a queued change is still to land,
//! even if the caller has gone away.

use std::cell::RefCell;
use std::ops::Index;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use sled::transaction::TransactionalTree;
use sled::{Transactional, Tree};

use super::audit::Staging;
use super::{tx_err, TxResult};
use crate::store::{Durability, StoreError, StoreResult};

/// Changes committed in one transaction at most: bounds a batch's latency and the memory
/// of its pending writes.
pub(crate) const MAX_BATCH: usize = 128;

macro_rules! trees {
    ($($variant:ident => $name:literal,)*) => {
        /// Every tree of the database, by name (the writer's transactions span them all).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum T {
            $($variant,)*
        }

        /// The trees' names in sled, in [`T`]'s order.
        pub(crate) const TREE_NAMES: &[&str] = &[$($name,)*];
    };
}

trees! {
    Users => "users",
    ByLogin => "users_by_login",
    ByEmail => "users_by_email",
    ByUid => "users_by_uid",
    Orgs => "orgs",
    OrgsByName => "orgs_by_name",
    OrgAddresses => "org_addresses",
    OrgMembers => "org_members",
    UsersBySeen => "users_by_seen",
    Counters => "counters",
    Meta => "meta",
    Sessions => "sessions",
    SessionsByHash => "sessions_by_hash",
    SessionsByUser => "sessions_by_user",
    ApiKeys => "api_keys",
    ApiKeysByHash => "api_keys_by_hash",
    ApiKeysByName => "api_keys_by_name",
    Deks => "deks",
    Secrets => "secrets",
    SecretDeks => "secret_deks",
    Datasources => "datasources",
    DsByUid => "datasources_by_uid",
    DsByName => "datasources_by_name",
    Settings => "settings_overrides",
    License => "license",
    Dashboards => "dashboards",
    Folders => "folders",
    Alerts => "alerts",
    AlertsByPanel => "alerts_by_panel",
    PluginSettings => "plugin_settings",
    Notifiers => "alert_notifications",
    Roles => "roles",
    RolesByName => "roles_by_name",
    ProvisioningRuns => "provisioning_runs",
    Quotas => "quotas",
    ActivitySeries => "activity_series",
    Audit => "audit",
}

/// A change's view of the database inside the writer's transaction: `tx[T::Users]`.
pub(crate) struct Tx<'a>(&'a [TransactionalTree]);

impl Index<T> for Tx<'_> {
    type Output = TransactionalTree;

    fn index(&self, tree: T) -> &TransactionalTree {
        &self.0[tree as usize]
    }
}

/// A queued change, type-erased.
trait Job: Send {
    /// Runs the change inside a transaction, keeping its value for [`Job::succeed`].
    fn run(&self, tx: &Tx<'_>) -> TxResult<()>;
    /// After the commit (or the refusal): releases the caller's export gate.
    fn committed(&mut self);
    /// After the flush: hands the value to the caller.
    fn succeed(self: Box<Self>);
    fn fail(self: Box<Self>, e: StoreError);
}

struct Change<F, R, G> {
    f: F,
    value: RefCell<Option<R>>,
    reply: tokio::sync::oneshot::Sender<StoreResult<R>>,
    /// The caller's export gate, released once the change is committed or refused.
    gate: Option<G>,
}

impl<F, R, G> Job for Change<F, R, G>
where
    F: Fn(&Tx<'_>) -> TxResult<R> + Send,
    R: Send,
    G: Send,
{
    fn run(&self, tx: &Tx<'_>) -> TxResult<()> {
        let value = (self.f)(tx)?;
        *self.value.borrow_mut() = Some(value);
        Ok(())
    }

    fn committed(&mut self) {
        self.gate.take();
    }

    fn succeed(self: Box<Self>) {
        let answer = self
            .value
            .into_inner()
            .ok_or_else(|| StoreError::Io("a committed change kept no value".into()));
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// The handle the store keeps; dropping the last one stops the thread and waits for it,
/// so that the database is closed when the store is.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// `trees` in [`T`]'s order; `durability` flushes their database; `changes` moves
    /// after each batch's commit.
    pub(crate) fn start(
        trees: Vec<Tree>,
        durability: Durability,
        changes: Arc<AtomicU64>,
    ) -> StoreResult<Self> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tollgate-sled-writer".into())
            .spawn(move || run(&trees, &durability, &changes, &jobs))
            .map_err(|e| StoreError::Io(format!("cannot start the sled writer: {e}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `f` and returns its value once it is committed and flushed. `gate` is held
    /// until it is committed.
    pub(crate) async fn write<R, F, G>(&self, gate: G, f: F) -> StoreResult<R>
    where
        F: Fn(&Tx<'_>) -> TxResult<R> + Send + 'static,
        R: Send + 'static,
        G: Send + 'static,
    {
        self.queue(gate, f)?.await
    }

    /// Queues `f` now; the future answers as [`Writer::write`] does. Dropping it does not
    /// withdraw the change.
    fn queue<R, F, G>(
        &self,
        gate: G,
        f: F,
    ) -> StoreResult<impl std::future::Future<Output = StoreResult<R>>>
    where
        F: Fn(&Tx<'_>) -> TxResult<R> + Send + 'static,
        R: Send + 'static,
        G: Send + 'static,
    {
        let stopped = || StoreError::Io("the sled writer has stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Change {
            f,
            value: RefCell::new(None),
            reply,
            gate: Some(gate),
        });
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        Ok(async move {
            answer
                .await
                .map_err(|_| StoreError::Io("a change failed in the sled writer".into()))?
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    trees: &[Tree],
    durability: &Durability,
    changes: &AtomicU64,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A change that panics drops its caller's answer (the caller sees an error); the
        // writer goes on with the next batch.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let done = commit(trees, batch);
            changes.fetch_add(1, Ordering::Release);
            answer(done, durability);
        }));
    }
}

/// Runs the batch: together, or each alone once one of them aborts. Each change's gate is
/// released here, as soon as it is committed or refused.
fn commit(trees: &[Tree], batch: Vec<Box<dyn Job>>) -> Vec<(Box<dyn Job>, StoreResult<()>)> {
    if batch.len() > 1 {
        let together = trees.transaction(|views| {
            let tx = Tx(views);
            let staging = Staging::begin();
            batch.iter().try_for_each(|job| job.run(&tx))?;
            staging.finish(&tx[T::Audit])
        });
        if together.is_ok() {
            return batch
                .into_iter()
                .map(|mut job| {
                    job.committed();
                    (job, Ok(()))
                })
                .collect();
        }
    }
    batch
        .into_iter()
        .map(|mut job| {
            let r = trees
                .transaction(|views| {
                    let tx = Tx(views);
                    let staging = Staging::begin();
                    job.run(&tx)?;
                    staging.finish(&tx[T::Audit])
                })
                .map_err(tx_err);
            job.committed();
            (job, r)
        })
        .collect()
}

/// One flush for the batch, then every caller's answer.
fn answer(done: Vec<(Box<dyn Job>, StoreResult<()>)>, durability: &Durability) {
    let written = done.iter().filter(|(_, r)| r.is_ok()).count();
    let flushed = if written > 0 {
        durability.flush_batch(Instant::now(), written)
    } else {
        Ok(())
    };
    for (job, r) in done {
        match (r, &flushed) {
            (Ok(()), Ok(())) => job.succeed(),
            (Ok(()), Err(e)) => job.fail(StoreError::Io(e.to_string())),
            (Err(e), _) => job.fail(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A writer on a fresh database, and its durability (to count flushes).
    fn writer(dir: &std::path::Path) -> (Writer, Durability, Vec<Tree>) {
        let db = sled::Config::new().path(dir).open().unwrap();
        let trees: Vec<Tree> = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n).unwrap())
            .collect();
        let flusher = db.clone();
        let durability =
            Durability::new(move || flusher.flush().map(|_| ()).map_err(StoreError::from));
        let w = Writer::start(trees.clone(), durability.clone(), Arc::default()).unwrap();
        (w, durability, trees)
    }

    /// Queues a change that holds the writer until the returned sender is sent to, and
    /// returns once the writer runs it: what is queued next makes one batch.
    async fn hold(w: &Writer) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = std::sync::mpsc::channel::<()>();
        let (held, running) = (Mutex::new(held), Mutex::new(running));
        let answer = w
            .queue((), move |_| {
                let _ = running.lock().unwrap().send(());
                let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(10));
                Ok(())
            })
            .unwrap();
        let task = tokio::spawn(async move { answer.await.unwrap() });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        (release, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_changes_commit_and_flush_together_and_a_refusal_refuses_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (w, durability, trees) = writer(dir.path());
        let (release, holder) = hold(&w).await;
        let flushes_before = durability.flush_count();

        let mut calls = Vec::new();
        for i in 0u64..20 {
            calls.push(
                w.queue((), move |tx| {
                    let users = &tx[T::Users];
                    users.insert(&i.to_be_bytes(), &[1])?;
                    if i == 7 {
                        // Refused after writing: its write must not land, the others must.
                        return super::super::abort(StoreError::Conflict("login"));
                    }
                    // Each change sees the ones before it in the batch.
                    let seen = (0..i).filter(|j| *j != 7).all(|j| {
                        users
                            .get(j.to_be_bytes())
                            .map(|v| v.is_some())
                            .unwrap_or(false)
                    });
                    Ok(seen)
                })
                .unwrap(),
            );
        }
        release.send(()).unwrap();
        holder.await.unwrap();
        for (i, call) in calls.into_iter().enumerate() {
            let r = call.await;
            if i == 7 {
                assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
            } else {
                assert!(r.unwrap(), "change {i} saw the ones queued before it");
            }
        }
        let users = &trees[T::Users as usize];
        for i in 0u64..20 {
            assert_eq!(
                users.get(i.to_be_bytes()).unwrap().is_some(),
                i != 7,
                "key {i}"
            );
        }
        // The hold's flush and one for the twenty (the refusal made them run one by one,
        // still under one flush).
        assert_eq!(durability.flush_count() - flushes_before, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_change_keeps_its_gate_until_committed_even_when_its_caller_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _durability, trees) = writer(dir.path());
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let (release, holder) = hold(&w).await;

        let guard = gate.clone().read_owned().await;
        let queued = w
            .queue(guard, |tx| {
                tx[T::Meta].insert("late", &[1])?;
                Ok(())
            })
            .unwrap();
        // The caller is gone.
        drop(queued);
        assert!(
            gate.try_write().is_err(),
            "an export may not start while the change is queued"
        );
        release.send(()).unwrap();
        holder.await.unwrap();
        let _export = tokio::time::timeout(Duration::from_secs(5), gate.write())
            .await
            .expect("the gate is released after the commit");
        assert!(trees[T::Meta as usize].get("late").unwrap().is_some());
    }

    #[tokio::test]
    async fn the_last_handle_stops_the_thread_and_closes_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _durability, trees) = writer(dir.path());
        w.write((), |tx| {
            tx[T::Meta].insert("k", &[1])?;
            Ok(())
        })
        .await
        .unwrap();
        drop(trees);
        drop(w);
        drop(_durability);
        // Every handle on the database is gone (the thread's trees included): it opens
        // again, with the change.
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        assert!(db.open_tree("meta").unwrap().get("k").unwrap().is_some());
    }
}
