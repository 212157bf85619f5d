//! The audit log in sled: the `audit` tree holds the events under `e` + the number of the
//! first (big-endian, so keys sort by number) and the [`AuditChain`] under `chain`. A
//! record is one event (`e` + its number, 9 bytes) or the run of events that one writer
//! transaction appended (`e` + first + last number, 17 bytes; the value is the list). A
//! stored event's *position* is its key's number, plus its index in a run: in an intact
//! log, its `seq`. Readers go by position, so a tampered record is read where it is stored.
//!
//! A mutating method takes a [`Pending`] before its transaction, adds the `audit` tree to
//! the transaction and calls [`Pending::record`] where it knows it changes something; the
//! event then commits with the change or not at all. Every append reads and writes the
//! `chain` record inside its transaction, so two concurrent appends conflict and one of
//! them retries after the other: the numbers have no gaps and the chain never forks.
//!
//! Why runs: the writer commits many changes in one transaction, and each sled insert of a
//! new key costs a lookup for the old value, a page delta and, every few appends at the
//! log's tail, a split that rewrites the tail page and its parent. One record per
//! transaction took the writer's CPU per audited write from 14 to 9 us, and audited
//! durable writes from 0.75 to 0.81 of unaudited ones (bench/README, session 20). The
//! writer opens a [`Staging`] around each
//! transaction attempt; [`append_in`] on its thread adds to it, and the staging writes the
//! run and the chain once, before the commit.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{IVec, Tree};

use super::writer::T;
use super::{dec, enc, get, read_u64, tx_err, SledStore, TxResult};
use crate::store::audit::{self, AuditChain, AuditEntry, AuditEvent, AuditQuery, AuditStore};
use crate::store::{codec, StoreResult};

pub(crate) const CHAIN: &[u8] = b"chain";
const EVENT: u8 = b'e';
/// The key of a run: `e`, first and last number.
const RUN_KEY_LEN: usize = 17;
/// Events removed per transaction when pruning many (the last one appends the pruning's
/// own event).
const PRUNE_BATCH: u64 = 10_000;

pub(crate) fn event_key(seq: u64) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn run_key(first: u64, last: u64) -> [u8; RUN_KEY_LEN] {
    let mut k = [EVENT; RUN_KEY_LEN];
    k[1..9].copy_from_slice(&first.to_be_bytes());
    k[9..].copy_from_slice(&last.to_be_bytes());
    k
}

/// The position of a record's first event.
fn key_position(key: &[u8]) -> u64 {
    read_u64(key.get(1..9))
}

/// A stored record's events with their positions.
fn record_events(key: &[u8], value: &[u8]) -> StoreResult<Vec<(u64, AuditEvent)>> {
    let first = key_position(key);
    if key.len() == RUN_KEY_LEN {
        let run: Vec<AuditEvent> = codec::decode(value)?;
        Ok((first..).zip(run).collect())
    } else {
        Ok(vec![(first, codec::decode(value)?)])
    }
}

/// Stores `events` (consecutive, oldest first) as one record from position `first`: a
/// single event's key for one, a run's for more.
fn insert_events(tree: &TransactionalTree, first: u64, events: &[AuditEvent]) -> TxResult<()> {
    match events {
        [] => {}
        [one] => {
            tree.insert(&event_key(first), enc(one)?)?;
        }
        [..] => {
            let last = first + (events.len() as u64 - 1);
            tree.insert(&run_key(first, last), enc(&events)?)?;
        }
    }
    Ok(())
}

/// The records holding events at positions `from` and after, in key order: a run that
/// starts before `from` and reaches it, then every record from `from` on.
fn records_from(tree: &Tree, from: u64) -> impl Iterator<Item = sled::Result<(IVec, IVec)>> {
    let straddling = tree
        .range(event_key(0)..event_key(from))
        .next_back()
        .filter(|item| {
            item.as_ref().map_or(true, |(k, _)| {
                k.len() == RUN_KEY_LEN && read_u64(k.get(9..)) >= from
            })
        });
    straddling
        .into_iter()
        .chain(tree.range(event_key(from)..).take_while(|item| {
            item.as_ref()
                .map_or(true, |(k, _)| k.first() == Some(&EVENT))
        }))
}

/// The stored events at positions `from` and after, in storage order, with their positions.
fn events_from(tree: &Tree, from: u64) -> impl Iterator<Item = StoreResult<(u64, AuditEvent)>> {
    records_from(tree, from).flat_map(move |item| {
        let events = item
            .map_err(Into::into)
            .and_then(|(k, v)| record_events(&k, &v));
        let (ok, err) = match events {
            Ok(events) => (events, None),
            Err(e) => (Vec::new(), Some(Err(e))),
        };
        ok.into_iter()
            .filter(move |(pos, _)| *pos >= from)
            .map(Ok)
            .chain(err)
    })
}

fn chain_in(tree: &TransactionalTree) -> TxResult<AuditChain> {
    match tree.get(CHAIN)? {
        Some(v) => dec(&v),
        None => Ok(AuditChain::default()),
    }
}

/// What the writer's current transaction attempt appended, not yet in its tree.
#[derive(Default)]
struct Staged {
    /// The chain after the staged events (read from the tree at the first append).
    chain: Option<AuditChain>,
    events: Vec<AuditEvent>,
}

thread_local! {
    /// Set on the writer's thread for the span of a transaction attempt (see [`Staging`]).
    static STAGED: RefCell<Option<Staged>> = const { RefCell::new(None) };
}

/// The writer's guard around one transaction attempt: the events its changes append are
/// collected, and [`Staging::finish`] stores them as one record with the chain. Dropped
/// without `finish` (an abort, a panic), the attempt's events go with it.
pub(crate) struct Staging(());

impl Staging {
    pub(crate) fn begin() -> Self {
        STAGED.with_borrow_mut(|s| *s = Some(Staged::default()));
        Staging(())
    }

    /// Before the commit: writes the attempt's events and the chain.
    pub(crate) fn finish(self, tree: &TransactionalTree) -> TxResult<()> {
        let staged = STAGED.with_borrow_mut(Option::take).unwrap_or_default();
        if let Some(chain) = staged.chain {
            if let Some(first) = staged.events.first() {
                insert_events(tree, first.seq, &staged.events)?;
            }
            tree.insert(CHAIN, enc(&chain)?)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        STAGED.with_borrow_mut(|s| *s = None);
    }
}

/// Appends `entry` after the chain's head inside a transaction that holds the audit tree
/// (staged when the writer runs it; see [`Staging`]), and hands `f` the event.
fn append_with<R>(
    tree: &TransactionalTree,
    entry: &AuditEntry,
    f: fn(&AuditEvent) -> R,
) -> TxResult<R> {
    let staged = STAGED.with_borrow_mut(|staged| {
        let s = staged.as_mut()?;
        let chain = match s.chain.as_mut() {
            Some(chain) => chain,
            None => match chain_in(tree) {
                Ok(chain) => s.chain.insert(chain),
                Err(e) => return Some(Err(e)),
            },
        };
        let event = chain.append(entry.clone());
        let r = f(&event);
        s.events.push(event);
        Some(Ok(r))
    });
    if let Some(r) = staged {
        return r;
    }
    let mut chain = chain_in(tree)?;
    let event = chain.append(entry.clone());
    tree.insert(&event_key(event.seq), enc(&event)?)?;
    tree.insert(CHAIN, enc(&chain)?)?;
    Ok(f(&event))
}

/// Appends `entry` after the chain's head inside a transaction that holds the audit tree.
pub(crate) fn append_in(tree: &TransactionalTree, entry: &AuditEntry) -> TxResult<AuditEvent> {
    append_with(tree, entry, AuditEvent::clone)
}

/// The request's pending entry, for one mutating method (or a few transactions of one).
pub(crate) struct Pending {
    entry: Option<AuditEntry>,
    /// The number and hash of the event the latest transaction attempt appended (an
    /// attempt that conflicted and was retried may have appended one that never
    /// committed).
    appended: parking_lot::Mutex<Option<(u64, [u8; 32])>>,
    /// A committed transaction recorded the entry: later ones of this method do not.
    done: AtomicBool,
}

impl Pending {
    /// Taken before the transaction.
    pub(crate) fn take() -> Self {
        Self {
            entry: audit::pending(),
            appended: parking_lot::Mutex::new(None),
            done: AtomicBool::new(false),
        }
    }

    /// Inside the transaction, where it is known to change something: appends the entry,
    /// if there is one.
    pub(crate) fn record(&self, tree: &TransactionalTree) -> TxResult<()> {
        self.append(tree, None)
    }

    /// As [`Pending::record`], for a creation: an entry without a target id gets the new
    /// record's.
    pub(crate) fn record_created(
        &self,
        tree: &TransactionalTree,
        id: impl ToString,
    ) -> TxResult<()> {
        self.append(tree, Some(id.to_string()))
    }

    fn append(&self, tree: &TransactionalTree, created: Option<String>) -> TxResult<()> {
        let Some(entry) = self
            .entry
            .as_ref()
            .filter(|_| !self.done.load(Ordering::Acquire))
        else {
            return Ok(());
        };
        let appended: fn(&AuditEvent) -> (u64, [u8; 32]) = |e| (e.seq, e.hash);
        let appended = match created.filter(|_| entry.target_id.is_empty()) {
            Some(target_id) => append_with(
                tree,
                &AuditEntry {
                    target_id,
                    ..entry.clone()
                },
                appended,
            )?,
            None => append_with(tree, entry, appended)?,
        };
        *self.appended.lock() = Some(appended);
        Ok(())
    }

    /// Before each attempt of a change run by the writer: forgets what an earlier attempt
    /// appended, so that after the commit `appended` is the committed attempt's.
    pub(crate) fn start_attempt(&self) {
        *self.appended.lock() = None;
    }

    /// After a change run by the writer: the committed attempt is the last one (see
    /// [`Pending::start_attempt`]), so what it appended is stored and needs no read-back
    /// (the read of the audit tree's hot tail page was 5.8% of the server's CPU under the
    /// durable-write benchmark).
    pub(crate) fn settle_committed<T>(&self, r: StoreResult<T>) -> StoreResult<T> {
        if r.is_ok() && self.appended.lock().take().is_some() {
            self.done.store(true, Ordering::Release);
            audit::mark_written();
        }
        r
    }

    /// After the transaction: marks the request's scope written when the attempt that
    /// committed appended the event (the stored event is the one it appended).
    pub(crate) fn settle<T>(&self, log: &Tree, r: StoreResult<T>) -> StoreResult<T> {
        let appended = self.appended.lock().take();
        if let (Ok(_), Some((seq, hash))) = (&r, appended) {
            let stored: Option<AuditEvent> = get(log, event_key(seq))?;
            if stored.is_some_and(|e| e.hash == hash) {
                self.done.store(true, Ordering::Release);
                audit::mark_written();
            }
        }
        r
    }
}

/// Runs `f` (writes that are steps of a bigger change) without recording the request's
/// event: the change's last step records it.
pub(crate) async fn quietly<F: Future>(f: F) -> F::Output {
    match audit::current() {
        Some(entry) => audit::scope(entry, false, f).await,
        None => f.await,
    }
}

impl SledStore {
    fn audit_chain_sync(&self) -> StoreResult<AuditChain> {
        Ok(get(&self.audit, CHAIN)?.unwrap_or_default())
    }

    /// Every stored event, oldest first (the export).
    pub(crate) fn audit_events_all(&self) -> StoreResult<(Vec<AuditEvent>, AuditChain)> {
        let events = events_from(&self.audit, 0)
            .map(|item| item.map(|(_, e)| e))
            .collect::<StoreResult<_>>()?;
        Ok((events, self.audit_chain_sync()?))
    }

    fn audit_events_sync(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let end = event_key(q.before_seq.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        if q.limit == 0 {
            return Ok(out);
        }
        let _not_pruned_meanwhile = self.audit_prune.read();
        for item in self.audit.range(event_key(0)..end).rev() {
            let (k, v) = item?;
            for (_, e) in record_events(&k, &v)?.into_iter().rev() {
                if q.matches(&e) {
                    out.push(e);
                    if out.len() >= q.limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// How many of the oldest events pruning removes: those before `before_at` (up to
    /// the first newer one: the chain can only lose a prefix) and those beyond the newest
    /// `max_events`.
    fn audit_prune_count(&self, before_at: Option<i64>, max_events: u64) -> StoreResult<u64> {
        let chain = self.audit_chain_sync()?;
        let held = (chain.head_seq + 1).saturating_sub(chain.first_seq);
        let mut n = if max_events > 0 {
            held.saturating_sub(max_events)
        } else {
            0
        };
        if let Some(before) = before_at {
            let mut old = 0;
            for item in events_from(&self.audit, chain.first_seq) {
                let (_, e) = item?;
                if e.entry.at >= before {
                    break;
                }
                old += 1;
            }
            n = n.max(old);
        }
        Ok(n)
    }

    /// The keys of the records holding events from the anchor up to (not including)
    /// position `end`, oldest first. Callers hold `audit_prune` exclusively: appends only
    /// add records after the head, so these are still the records to remove when
    /// [`SledStore::audit_prune_records`] runs.
    fn audit_prune_keys(&self, end: u64) -> StoreResult<Vec<IVec>> {
        let first = self.audit_chain_sync()?.first_seq;
        Ok(records_from(&self.audit, first)
            .map(|item| item.map(|(k, _)| k))
            .take_while(|k| k.as_ref().map_or(true, |k| key_position(k) < end))
            .collect::<Result<_, _>>()?)
    }

    /// Removes the events of `records` before position `end` (a run that reaches past it
    /// keeps its newer events, stored again from `end`), moves the anchor to `end`, and
    /// when given `entry`, appends it with the count removed (`earlier` batches' and this
    /// one's). How many it removed.
    fn audit_prune_records(
        &self,
        records: &[IVec],
        end: u64,
        earlier: u64,
        entry: Option<&AuditEntry>,
    ) -> StoreResult<u64> {
        self.audit
            .transaction(|tree| {
                let mut chain = chain_in(tree)?;
                let mut removed = 0u64;
                // The hash of the newest event removed: the `prev_hash` of whatever sits
                // at `end`.
                let mut last_gone = None;
                for k in records {
                    let Some(v) = tree.remove(k)? else {
                        continue;
                    };
                    let events =
                        record_events(k, &v).map_err(ConflictableTransactionError::Abort)?;
                    let (gone, kept): (Vec<_>, Vec<_>) =
                        events.into_iter().partition(|(pos, _)| *pos < end);
                    removed += gone.len() as u64;
                    if let Some((_, e)) = gone.last() {
                        last_gone = Some(e.hash);
                    }
                    if let Some(&(at, _)) = kept.first() {
                        let kept: Vec<AuditEvent> = kept.into_iter().map(|(_, e)| e).collect();
                        insert_events(tree, at, &kept)?;
                    }
                }
                let Some(last_gone) = last_gone else {
                    return Ok(0);
                };
                let mut appended = None;
                if let Some(entry) = entry {
                    appended = Some(chain.append(AuditEntry {
                        target_id: (earlier + removed).to_string(),
                        ..entry.clone()
                    }));
                }
                // The anchor is `end` whatever sits there: an event kept from a cut run,
                // one a request appended after the records were read, this pruning's own
                // event, or nothing yet (the next append's place). Not "the first event
                // found after the cut": read before the transaction, it would miss a
                // concurrent append and leave it below the anchor, unverified.
                chain.first_seq = end;
                chain.first_prev = last_gone;
                if let Some(e) = &appended {
                    tree.insert(&event_key(e.seq), enc(e)?)?;
                }
                tree.insert(CHAIN, enc(&chain)?)?;
                Ok(removed)
            })
            .map_err(tx_err)
    }

    fn prune_audit_sync(
        &self,
        before_at: Option<i64>,
        max_events: u64,
        entry: &AuditEntry,
    ) -> StoreResult<u64> {
        let _one_at_a_time = self.audit_prune.write();
        let n = self.audit_prune_count(before_at, max_events)?;
        if n == 0 {
            return Ok(0);
        }
        let start = self.audit_chain_sync()?.first_seq;
        let end = start + n;
        let mut removed = 0;
        let mut at = start;
        while at < end {
            let stop = end.min(at.saturating_add(PRUNE_BATCH));
            let records = self.audit_prune_keys(stop)?;
            removed +=
                self.audit_prune_records(&records, stop, removed, (stop == end).then_some(entry))?;
            at = stop;
        }
        Ok(removed)
    }
}

#[async_trait]
impl AuditStore for SledStore {
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<AuditEvent> {
        // Sign-ins and denials: in the writer, batched with the changes around them.
        self.write(move |tx| append_in(&tx[T::Audit], &entry)).await
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let query = query.clone();
        self.blocking(move |s| s.audit_events_sync(&query)).await
    }

    async fn audit_chain(&self) -> StoreResult<AuditChain> {
        self.audit_chain_sync()
    }

    async fn audit_page(&self, after: u64, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.blocking(move |s| {
            let _not_pruned_meanwhile = s.audit_prune.read();
            events_from(&s.audit, from)
                .take(limit)
                .map(|item| item.map(|(_, e)| e))
                .collect()
        })
        .await
    }

    async fn prune_audit(
        &self,
        before_at: Option<i64>,
        max_events: u64,
        entry: AuditEntry,
    ) -> StoreResult<u64> {
        let _paused = self.write_gate().await;
        let r = self
            .blocking(move |s| s.prune_audit_sync(before_at, max_events, &entry))
            .await;
        if matches!(r, Ok(n) if n > 0) {
            // The pruning's own event stands for the request's.
            audit::mark_written();
        }
        self.durable(r).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::audit::verify;
    use crate::store::Store;

    fn entry(at: i64) -> AuditEntry {
        AuditEntry {
            at,
            action: if at % 2 == 0 {
                "users:write"
            } else {
                "auth:login"
            }
            .into(),
            target_kind: "user".into(),
            target_id: at.to_string(),
            status: 200,
            ..AuditEntry::default()
        }
    }

    /// Events 1-2 alone, 3-7 one writer transaction's run, 8 alone, 9-11 a run.
    async fn layered() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(&dir.path().join("db")).unwrap();
        for at in 1..=2 {
            s.append_audit(entry(at)).await.unwrap();
        }
        run(&s, 3..=7).await;
        s.append_audit(entry(8)).await.unwrap();
        run(&s, 9..=11).await;
        (dir, s)
    }

    /// One writer change appending `ats`: one transaction, so one run.
    async fn run(s: &SledStore, ats: std::ops::RangeInclusive<i64>) {
        s.write(move |tx| {
            for at in ats.clone() {
                append_in(&tx[T::Audit], &entry(at))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    fn seqs(events: &[AuditEvent]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    async fn page(s: &SledStore, after: u64, limit: usize) -> Vec<u64> {
        seqs(&s.audit_page(after, limit).await.unwrap())
    }

    async fn verifies(s: &SledStore) -> u64 {
        let chain = s.audit_chain().await.unwrap();
        let events = s.audit_page(chain.first_seq.saturating_sub(1), 1000);
        verify(chain, &events.await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_writer_transaction_stores_its_events_as_one_run() {
        let (_dir, s) = layered().await;
        let keys: Vec<usize> = s
            .audit
            .scan_prefix([EVENT])
            .keys()
            .map(|k| k.unwrap().len())
            .collect();
        assert_eq!(keys, [9, 9, RUN_KEY_LEN, 9, RUN_KEY_LEN]);
        let chain = s.audit_chain().await.unwrap();
        assert_eq!((chain.first_seq, chain.head_seq), (1, 11));
        assert_eq!(verifies(&s).await, 11);
        assert_eq!(page(&s, 0, 100).await, (1..=11).collect::<Vec<_>>());
        // Pages start and end inside runs.
        assert_eq!(page(&s, 4, 2).await, [5, 6]);
        assert_eq!(page(&s, 6, 3).await, [7, 8, 9]);
        assert_eq!(page(&s, 10, 5).await, [11]);
        assert!(page(&s, 11, 5).await.is_empty());
        let (all, _) = s.audit_events_all().unwrap();
        assert_eq!(seqs(&all), (1..=11).collect::<Vec<_>>());
        assert!(all.iter().all(|e| e.entry == entry(e.seq as i64)));
    }

    #[tokio::test]
    async fn queries_read_inside_runs() {
        let (_dir, s) = layered().await;
        let q = |before_seq, limit, action: Option<&str>| AuditQuery {
            before_seq,
            limit,
            action: action.map(str::to_string),
            ..AuditQuery::default()
        };
        let s = &s;
        let got = |q| async move { seqs(&s.audit_events(&q).await.unwrap()) };
        assert_eq!(got(q(None, 4, None)).await, [11, 10, 9, 8]);
        assert_eq!(got(q(Some(6), 3, None)).await, [5, 4, 3]);
        assert_eq!(
            got(q(Some(10), 100, Some("users:write"))).await,
            [8, 6, 4, 2]
        );
        assert!(got(q(None, 0, None)).await.is_empty());
    }

    #[tokio::test]
    async fn pruning_cuts_a_run_and_keeps_its_newer_events() {
        let (_dir, s) = layered().await;
        // Keep the newest 6 (6 to 11): the run 3-7 loses 3, 4 and 5.
        assert_eq!(s.prune_audit(None, 6, entry(100)).await.unwrap(), 5);
        let chain = s.audit_chain().await.unwrap();
        assert_eq!((chain.first_seq, chain.head_seq), (6, 12));
        assert_eq!(page(&s, 5, 100).await, (6..=12).collect::<Vec<_>>());
        assert_eq!(page(&s, 0, 100).await, (6..=12).collect::<Vec<_>>());
        assert_eq!(verifies(&s).await, 7);
        let pruning = &s.audit_page(11, 1).await.unwrap()[0];
        assert_eq!(pruning.entry.target_id, "5");
        // What is left of the run is a run from 6.
        assert!(s.audit.get(run_key(6, 7)).unwrap().is_some());
        // Older than 10 (at = seq): 6 to 9, cutting the run 9-11 after 9.
        assert_eq!(s.prune_audit(Some(10), 0, entry(101)).await.unwrap(), 4);
        let chain = s.audit_chain().await.unwrap();
        assert_eq!((chain.first_seq, chain.head_seq), (10, 13));
        assert_eq!(page(&s, 0, 100).await, [10, 11, 12, 13]);
        assert_eq!(verifies(&s).await, 4);
        // Export and import: the same events, still verifying, appending after the head.
        let dump = s.export().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let t = SledStore::open(&dir.path().join("db")).unwrap();
        t.import(&dump, true).await.unwrap();
        assert_eq!(page(&t, 0, 100).await, [10, 11, 12, 13]);
        assert_eq!(t.append_audit(entry(14)).await.unwrap().seq, 14);
        assert_eq!(verifies(&t).await, 5);
    }

    /// Pruning everything while a request appends: the event that lands between the
    /// reading of the records and the pruning's transaction, and the pruning's own event,
    /// stay inside the verified chain (the anchor is the cut, not the first event found
    /// before the transaction).
    #[tokio::test]
    async fn an_append_racing_a_full_prune_stays_in_the_chain() {
        let (_dir, s) = layered().await;
        let end = s.audit_chain().await.unwrap().head_seq + 1;
        let records = s.audit_prune_keys(end).unwrap();
        // The request's event commits after the keys were read.
        assert_eq!(s.append_audit(entry(12)).await.unwrap().seq, 12);
        let removed = s
            .audit_prune_records(&records, end, 0, Some(&entry(100)))
            .unwrap();
        assert_eq!(removed, 11);
        let chain = s.audit_chain().await.unwrap();
        assert_eq!((chain.first_seq, chain.head_seq), (12, 13));
        assert_eq!(page(&s, 0, 100).await, [12, 13]);
        assert_eq!(verifies(&s).await, 2);
        // Nothing appended meanwhile: the anchor is the next append's place.
        let end = 14;
        let records = s.audit_prune_keys(end).unwrap();
        assert_eq!(s.audit_prune_records(&records, end, 0, None).unwrap(), 2);
        let chain = s.audit_chain().await.unwrap();
        assert_eq!((chain.first_seq, chain.head_seq), (14, 13));
        assert_eq!(s.append_audit(entry(14)).await.unwrap().seq, 14);
        assert_eq!(verifies(&s).await, 1);
    }

    /// Readers page through the log while prunings cut runs. A pruning rewrites the run it
    /// cuts under a later key, so a reader not kept out of it meets the old record and
    /// the new one (its newer events twice) or neither: every page must be one ascending,
    /// gapless stretch of numbers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_read_while_prunings_cut_runs_are_gapless() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
        for r in 0..120 {
            run(&s, r * 10 + 1..=r * 10 + 10).await;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (s, stop) = (s.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut pages = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let got = page(&s, 0, 2000).await;
                        assert!(
                            got.windows(2).all(|w| w[1] == w[0] + 1),
                            "page {pages}: {got:?}"
                        );
                        pages += 1;
                    }
                    pages
                })
            })
            .collect();
        // Each pruning keeps 3 fewer events, so most cuts fall inside a run of 10.
        for i in 0..350 {
            let keep = 1200 - 3 * (i + 1);
            assert!(
                s.prune_audit(None, keep, entry(5000 + i as i64))
                    .await
                    .unwrap()
                    > 0
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.await.unwrap() > 0);
        }
        // The newest 150 and the last pruning's own event.
        assert_eq!(verifies(&s).await, 1200 - 3 * 350 + 1);
    }

    /// An attempt that aborts leaves nothing staged for the next transaction.
    #[tokio::test]
    async fn an_aborted_attempt_stages_nothing() {
        let (_dir, s) = layered().await;
        let r = s
            .write(|tx| {
                append_in(&tx[T::Audit], &entry(50))?;
                super::super::abort::<()>(crate::store::StoreError::NotFound)
            })
            .await;
        assert!(r.is_err());
        assert_eq!(s.append_audit(entry(12)).await.unwrap().seq, 12);
        assert_eq!(verifies(&s).await, 12);
        assert!(s
            .audit_page(0, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.entry.at != 50));
    }
}
