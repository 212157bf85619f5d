//! The audit log's records and their hash chain: pure data and arithmetic, no I/O.
//!
//! Each [`AuditEvent`] carries `hash = SHA-256(seq, prev_hash, canonical content)` and the
//! hash of the event before it, so that editing, removing or reordering a stored event
//! breaks the chain at that event. [`AuditChain`] is what a backend keeps beside the events
//! (the head it appends after, and the anchor where verification starts once old events
//! were pruned); [`Verifier`] walks stored events and names the first break.

use std::cell::RefCell;
use std::future::Future;

use serde::{Deserialize, Serialize};

/// The `prev_hash` of the very first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Who made the request. Never a secret: a failed sign-in's login is an HMAC
/// (`hmac-sha256:<hex>`), never the name tried in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    pub user_id: Option<u64>,
    pub login: String,
    /// The API key or service-account token used.
    pub token_id: Option<u64>,
    /// The service account the token belongs to.
    pub service_account_id: Option<u64>,
    /// `basic`, `session`, `api_key`, `service_account`, `form`, `ldap`, `system`, or ""
    /// (not authenticated).
    pub auth_method: String,
}

/// What an event says, before it is chained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub actor: AuditActor,
    /// The client's address (no port).
    pub client: String,
    pub user_agent: String,
    pub request_id: String,
    pub method: String,
    /// The route template (`/api/admin/users/:id`), never the raw URL.
    pub route: String,
    /// The RBAC action the route requires (`users:write`), or what happened for a request
    /// without one (`auth:login`, `audit:prune`).
    pub action: String,
    /// What the change is about: `user`, `org`, `datasource`, ... ("" when none).
    pub target_kind: String,
    pub target_id: String,
    /// The HTTP status of the answer (200 for a change that committed).
    pub status: u16,
    /// The names (never the values) of the fields the request set.
    pub fields: Vec<String>,
}

impl AuditEntry {
    /// The entry of work the server does on its own (retention, a scheduled renewal, a
    /// resumed re-encryption).
    pub fn system(action: &str, at: i64) -> Self {
        Self {
            at,
            actor: AuditActor {
                login: "system".into(),
                auth_method: "system".into(),
                ..AuditActor::default()
            },
            action: action.into(),
            status: 200,
            ..Self::default()
        }
    }
}

/// An event as stored: numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1, 2, 3, ... in commit order, without gaps.
    pub seq: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub entry: AuditEntry,
}

impl AuditEvent {
    /// The hash the event must carry: over its number, the previous hash and every field
    /// of its entry (each length-prefixed, in a fixed order).
    pub fn expected_hash(&self) -> [u8; 32] {
        content_hash(self.seq, &self.prev_hash, &self.entry)
    }

    /// The hash as lowercase hex (the API and the file logger show it so).
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }
}

/// What every event's hash starts with.
const HASH_TAG: &[u8] = b"tollgate-audit-v1";

fn content_hash(seq: u64, prev: &[u8; 32], e: &AuditEntry) -> [u8; 32] {
    with_hashed_fields(e, |fields| {
        let seq = seq.to_be_bytes();
        let head: [&[u8]; 3] = [HASH_TAG, &seq, prev];
        crate::crypto::sha256_parts(head.into_iter().chain(fields.iter().copied()))
    })
}

/// `f` of the entry's fields as the hash covers them after the number and the previous
/// hash, in order.
fn with_hashed_fields<R>(e: &AuditEntry, f: impl FnOnce(&[&[u8]]) -> R) -> R {
    let opt = |v: Option<u64>| v.map(|n| n.to_be_bytes().to_vec()).unwrap_or_default();
    let (user, token, sa) = (
        opt(e.actor.user_id),
        opt(e.actor.token_id),
        opt(e.actor.service_account_id),
    );
    let fields = e.fields.join("\n");
    f(&[
        &e.at.to_be_bytes(),
        &user,
        e.actor.login.as_bytes(),
        &token,
        &sa,
        e.actor.auth_method.as_bytes(),
        e.client.as_bytes(),
        e.user_agent.as_bytes(),
        e.request_id.as_bytes(),
        e.method.as_bytes(),
        e.route.as_bytes(),
        e.action.as_bytes(),
        e.target_kind.as_bytes(),
        e.target_id.as_bytes(),
        &e.status.to_be_bytes(),
        fields.as_bytes(),
    ])
}

/// An entry's hash input around the two values only the append knows (a store that hashes
/// inside its own append, as PostgreSQL does in the statement that locks the chain):
/// SHA-256 of `before ++ seq (8 bytes, big-endian) ++ between ++ prev_hash ++ after` is the
/// hash [`AuditChain::append`] gives the entry as event `seq` after `prev_hash`.
pub struct HashInput {
    pub before: Vec<u8>,
    pub between: [u8; 8],
    pub after: Vec<u8>,
}

impl HashInput {
    pub fn of(e: &AuditEntry) -> Self {
        let mut before = crate::crypto::framed([HASH_TAG]);
        before.extend_from_slice(&8u64.to_be_bytes());
        Self {
            before,
            between: 32u64.to_be_bytes(),
            after: with_hashed_fields(e, |fields| crate::crypto::framed(fields.iter().copied())),
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The chain's state, kept by a backend beside its events and changed in the same
/// transaction as them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditChain {
    /// The oldest event kept (1 until something is pruned).
    pub first_seq: u64,
    /// The `prev_hash` that event carries (`GENESIS` until something is pruned): where
    /// verification starts.
    pub first_prev: [u8; 32],
    /// The newest event (0 when there is none).
    pub head_seq: u64,
    pub head_hash: [u8; 32],
}

impl Default for AuditChain {
    fn default() -> Self {
        Self {
            first_seq: 1,
            first_prev: GENESIS,
            head_seq: 0,
            head_hash: GENESIS,
        }
    }
}

impl AuditChain {
    /// Numbers and chains `entry` after the head, and moves the head to it.
    pub fn append(&mut self, entry: AuditEntry) -> AuditEvent {
        let seq = self.head_seq + 1;
        let prev_hash = self.head_hash;
        let hash = content_hash(seq, &prev_hash, &entry);
        self.head_seq = seq;
        self.head_hash = hash;
        AuditEvent {
            seq,
            prev_hash,
            hash,
            entry,
        }
    }

    /// Moves the anchor to `first` (the oldest event kept after pruning every event
    /// before it).
    pub fn anchor_at(&mut self, first: &AuditEvent) {
        self.first_seq = first.seq;
        self.first_prev = first.prev_hash;
    }

    pub fn is_empty(&self) -> bool {
        self.head_seq < self.first_seq
    }
}

/// The first place the stored events stop matching their chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The event's content no longer matches its hash, or an event was replaced by one
    /// with a recomputed hash (the next event does not follow it).
    Modified(u64),
    /// The event is missing (a gap, or the newest events cut off).
    Removed(u64),
    /// The event is stored out of its place.
    Reordered(u64),
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Modified(n) => write!(f, "audit event {n} was modified"),
            Break::Removed(n) => write!(f, "audit event {n} was removed"),
            Break::Reordered(n) => write!(f, "audit event {n} is out of order"),
        }
    }
}

/// Walks stored events in storage order (feed them one by one, then `finish`).
pub struct Verifier {
    chain: AuditChain,
    expected_seq: u64,
    expected_prev: [u8; 32],
    /// A gap seen at the previous event: `Reordered` if the missing event comes next,
    /// `Removed` otherwise.
    gap: Option<u64>,
    checked: u64,
}

impl Verifier {
    pub fn new(chain: AuditChain) -> Self {
        Self {
            chain,
            expected_seq: chain.first_seq,
            expected_prev: chain.first_prev,
            gap: None,
            checked: 0,
        }
    }

    pub fn feed(&mut self, e: &AuditEvent) -> Result<(), Break> {
        if let Some(missing) = self.gap {
            return Err(if e.seq == missing {
                Break::Reordered(missing)
            } else {
                Break::Removed(missing)
            });
        }
        if e.expected_hash() != e.hash {
            return Err(Break::Modified(e.seq));
        }
        if e.seq < self.expected_seq {
            return Err(Break::Reordered(e.seq));
        }
        if e.seq > self.expected_seq {
            self.gap = Some(self.expected_seq);
            return Ok(());
        }
        if e.prev_hash != self.expected_prev {
            // The content matches its own hash, so the one before it was swapped for an
            // event with a recomputed hash (or this is the first and the anchor moved).
            return Err(Break::Modified(
                e.seq.saturating_sub(1).max(self.chain.first_seq),
            ));
        }
        self.expected_seq = e.seq + 1;
        self.expected_prev = e.hash;
        self.checked += 1;
        Ok(())
    }

    /// The newest event the walk expects to end at.
    pub fn head_seq(&self) -> u64 {
        self.chain.head_seq
    }

    /// A walk that started from an older copy of the chain met events appended since:
    /// `newer` (the chain read again) is where it now ends, its anchor unchanged.
    pub fn extend_head(&mut self, newer: &AuditChain) {
        if newer.head_seq > self.chain.head_seq {
            self.chain.head_seq = newer.head_seq;
            self.chain.head_hash = newer.head_hash;
        }
    }

    /// How many events were checked, once every stored event was fed.
    pub fn finish(self) -> Result<u64, Break> {
        if let Some(missing) = self.gap {
            return Err(Break::Removed(missing));
        }
        if self.chain.head_seq + 1 > self.expected_seq {
            // The newest events are gone.
            return Err(Break::Removed(self.expected_seq));
        }
        if self.checked > 0 && self.expected_prev != self.chain.head_hash {
            return Err(Break::Modified(self.chain.head_seq));
        }
        Ok(self.checked)
    }
}

/// Verifies a whole chain held in memory.
pub fn verify<'a>(
    chain: AuditChain,
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<u64, Break> {
    let mut v = Verifier::new(chain);
    for e in events {
        v.feed(e)?;
    }
    v.finish()
}

// The entry that rides along with a request (see `store::audit` for how backends use it).

struct Recording {
    entry: AuditEntry,
    /// A change made in this scope records the entry (false for reads).
    armed: bool,
    written: bool,
}

tokio::task_local! {
    static CURRENT: RefCell<Recording>;
}

/// Runs `f` with `entry` as the event its first committed change records (`armed`), or
/// only as the context of a denial (`!armed`, reads).
/// (A plain function returning the scoped future: an `async fn` wrapper would hold `f`
/// twice in its state, and a request's future is moved as a whole several times.)
pub fn scope<F: Future>(entry: AuditEntry, armed: bool, f: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(
        RefCell::new(Recording {
            entry,
            armed,
            written: false,
        }),
        f,
    )
}

/// Changes the entry of the current scope (no-op outside one).
pub fn update(f: impl FnOnce(&mut AuditEntry)) {
    let _ = CURRENT.try_with(|r| f(&mut r.borrow_mut().entry));
}

/// For a backend's mutating method: the entry its transaction must append, if any.
pub fn pending() -> Option<AuditEntry> {
    CURRENT
        .try_with(|r| {
            let r = r.borrow();
            (r.armed && !r.written).then(|| r.entry.clone())
        })
        .ok()
        .flatten()
}

/// For a backend, after the transaction that appended [`pending`]'s entry committed.
pub fn mark_written() {
    let _ = CURRENT.try_with(|r| r.borrow_mut().written = true);
}

/// Whether a change of this scope already recorded the event.
pub fn written() -> bool {
    CURRENT.try_with(|r| r.borrow().written).unwrap_or(false)
}

/// The current scope's entry (a step of a bigger change runs in a scope of its own).
pub fn current() -> Option<AuditEntry> {
    CURRENT.try_with(|r| r.borrow().entry.clone()).ok()
}

/// The current scope's entry, taken out as the scope ends (the API layer, to record a
/// denial or a change that wrote nothing to the store): no copy of it.
pub fn take_entry() -> Option<AuditEntry> {
    CURRENT
        .try_with(|r| std::mem::take(&mut r.borrow_mut().entry))
        .ok()
}

/// Notes the permission a request needed (the first check that ran): its action, and the
/// target its scope names (`global.users:id:5` is user 5, `datasources:uid:x` datasource
/// `x`). Later checks of the same request do not overwrite it.
pub fn note_permission(action: &str, scope: &str) {
    update(|e| {
        if !e.action.is_empty() {
            return;
        }
        action.clone_into(&mut e.action);
        let mut parts = scope.rsplitn(3, ':');
        if let (Some(id), Some(_attr), Some(kind)) = (parts.next(), parts.next(), parts.next()) {
            if id != "*" && !id.is_empty() {
                singular(kind.rsplit('.').next().unwrap_or(kind)).clone_into(&mut e.target_kind);
                id.clone_into(&mut e.target_id);
            }
        }
        if e.target_kind.is_empty() {
            // `users:create`, `users.password:write`: the kind the action is about.
            let prefix = action.split([':', '.']).next().unwrap_or("");
            if prefix != action {
                singular(prefix).clone_into(&mut e.target_kind);
            }
        }
    });
}

fn singular(kind: &str) -> &str {
    kind.strip_suffix('s').unwrap_or(kind)
}

thread_local! {
    /// An entry a finished request left unrecorded on this thread, for the next one.
    static SPARE: RefCell<Option<AuditEntry>> = const { RefCell::new(None) };
}

/// An empty entry for a request: the last one [`recycle`]d on this thread, emptied, when
/// there is one. Every authenticated read fills its entry (the actor, the action, the
/// target) and records it only when denied; writing into the buffers of the previous
/// one's strings saves their allocations.
pub fn blank_entry() -> AuditEntry {
    SPARE
        .with(|s| s.borrow_mut().take())
        .map_or_else(AuditEntry::default, |mut e| {
            e.clear();
            e
        })
}

/// Gives back an entry that will not be recorded, for [`blank_entry`]. Its strings are
/// bounded (a login, a route, a user agent cut to 256 characters), so a kept one stays
/// small.
pub fn recycle(entry: AuditEntry) {
    SPARE.with(|s| *s.borrow_mut() = Some(entry));
}

impl AuditEntry {
    /// Every field back to its default, keeping the strings' buffers.
    fn clear(&mut self) {
        // Destructured: a field added later must be cleared here to compile.
        let Self {
            at,
            actor,
            client,
            user_agent,
            request_id,
            method,
            route,
            action,
            target_kind,
            target_id,
            status,
            fields,
        } = self;
        let AuditActor {
            user_id,
            login,
            token_id,
            service_account_id,
            auth_method,
        } = actor;
        *at = 0;
        *status = 0;
        *user_id = None;
        *token_id = None;
        *service_account_id = None;
        fields.clear();
        login.clear();
        auth_method.clear();
        client.clear();
        user_agent.clear();
        request_id.clear();
        method.clear();
        route.clear();
        action.clear();
        target_kind.clear();
        target_id.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: n,
            action: "users:write".into(),
            target_kind: "user".into(),
            target_id: n.to_string(),
            status: 200,
            fields: vec!["name".into()],
            ..AuditEntry::default()
        }
    }

    fn chain_of(n: i64) -> (AuditChain, Vec<AuditEvent>) {
        let mut c = AuditChain::default();
        let events = (1..=n).map(|i| c.append(entry(i))).collect();
        (c, events)
    }

    /// An entry with every field set, the ids among them.
    fn full_entry() -> AuditEntry {
        AuditEntry {
            at: 1_733_000_000_123,
            actor: AuditActor {
                user_id: Some(7),
                login: "admin".into(),
                token_id: None,
                service_account_id: Some(u64::MAX),
                auth_method: "basic".into(),
            },
            client: "10.0.0.1".into(),
            user_agent: "curl/8".into(),
            request_id: "abc".into(),
            method: "PUT".into(),
            route: "/api/admin/users/:id/permissions".into(),
            action: "users.permissions:write".into(),
            target_kind: "user".into(),
            target_id: "9".into(),
            status: 200,
            fields: vec!["isGrafanaAdmin".into(), "x".into()],
        }
    }

    /// A recycled entry comes back empty in every field, with its strings' buffers kept;
    /// the noted fields of the next request are written into them.
    #[tokio::test(flavor = "current_thread")]
    async fn a_recycled_entry_comes_back_empty_and_keeps_its_buffers() {
        let mut full = full_entry();
        full.actor.token_id = Some(3);
        recycle(full);
        let mut e = blank_entry();
        assert_eq!(e, AuditEntry::default());
        assert!(e.actor.login.capacity() >= "admin".len());
        assert!(e.action.capacity() >= "users.permissions:write".len());
        // Taken: the next one is new.
        assert_eq!(blank_entry().action.capacity(), 0);
        e.action.push_str("users:read");
        let before = e.action.as_ptr();
        recycle(e);
        let again = scope(blank_entry(), false, async {
            note_permission("users:write", "global.users:id:5");
            take_entry().unwrap_or_default()
        })
        .await;
        assert_eq!(again.action, "users:write");
        assert_eq!(
            (again.target_kind.as_str(), again.target_id.as_str()),
            ("user", "5")
        );
        assert_eq!(
            again.action.as_ptr(),
            before,
            "written into the kept buffer"
        );
    }

    /// The hash is the stored chains' format (version 1): each field length-prefixed, in
    /// this order. Pinned, so that a change to it cannot pass unnoticed.
    #[test]
    fn the_hash_keeps_its_format() {
        let e = full_entry();
        let prev = [3u8; 32];
        let parts: Vec<Vec<u8>> = vec![
            b"tollgate-audit-v1".to_vec(),
            42u64.to_be_bytes().to_vec(),
            prev.to_vec(),
            e.at.to_be_bytes().to_vec(),
            7u64.to_be_bytes().to_vec(),
            b"admin".to_vec(),
            Vec::new(),
            u64::MAX.to_be_bytes().to_vec(),
            b"basic".to_vec(),
            b"10.0.0.1".to_vec(),
            b"curl/8".to_vec(),
            b"abc".to_vec(),
            b"PUT".to_vec(),
            b"/api/admin/users/:id/permissions".to_vec(),
            b"users.permissions:write".to_vec(),
            b"user".to_vec(),
            b"9".to_vec(),
            200u16.to_be_bytes().to_vec(),
            b"isGrafanaAdmin\nx".to_vec(),
        ];
        let expected = crate::crypto::sha256_parts(parts.iter().map(Vec::as_slice));
        assert_eq!(content_hash(42, &prev, &e), expected);
        assert_eq!(hex(&expected), PINNED);
    }
    const PINNED: &str = "c65bbcb6047d6931d047c9eae8b390dff4c52cc7bcf3ff08bf28f0b8822389d0";

    /// What a store that hashes inside its append computes is the event's hash.
    #[test]
    fn the_hash_input_around_the_number_and_the_previous_hash() {
        for e in [full_entry(), AuditEntry::default(), entry(5)] {
            let mut chain = AuditChain {
                head_seq: 41,
                head_hash: [9u8; 32],
                ..AuditChain::default()
            };
            let event = chain.append(e.clone());
            let h = HashInput::of(&e);
            let mut input = h.before.clone();
            input.extend_from_slice(&42u64.to_be_bytes());
            input.extend_from_slice(&h.between);
            input.extend_from_slice(&[9u8; 32]);
            input.extend_from_slice(&h.after);
            assert_eq!(crate::crypto::sha256(&input), event.hash);
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (c, events) = chain_of(5);
        assert_eq!(verify(c, &events), Ok(5));
        assert_eq!(verify(AuditChain::default(), &[]), Ok(0));
    }

    #[test]
    fn an_edited_event_is_named() {
        let (c, mut events) = chain_of(5);
        events[2].entry.target_id = "99".into();
        assert_eq!(verify(c, &events), Err(Break::Modified(3)));
    }

    #[test]
    fn an_edited_event_with_a_recomputed_hash_is_named() {
        let (c, mut events) = chain_of(5);
        events[2].entry.actor.login = "someone-else".into();
        events[2].hash = events[2].expected_hash();
        assert_eq!(verify(c, &events), Err(Break::Modified(3)));
        // The newest one: the head no longer matches.
        let (c, mut events) = chain_of(5);
        events[4].entry.status = 403;
        events[4].hash = events[4].expected_hash();
        assert_eq!(verify(c, &events), Err(Break::Modified(5)));
    }

    #[test]
    fn a_removed_event_is_named() {
        let (c, mut events) = chain_of(5);
        events.remove(1);
        assert_eq!(verify(c, &events), Err(Break::Removed(2)));
        let (c, mut events) = chain_of(5);
        events.pop();
        assert_eq!(verify(c, &events), Err(Break::Removed(5)));
    }

    #[test]
    fn a_reordered_event_is_named() {
        let (c, mut events) = chain_of(5);
        events.swap(1, 2);
        assert_eq!(verify(c, &events), Err(Break::Reordered(2)));
    }

    #[tokio::test]
    async fn the_first_permission_check_names_the_action_and_target() {
        let seen = scope(AuditEntry::default(), true, async {
            note_permission("users:write", "global.users:id:5");
            note_permission("users.permissions:write", "global.users:id:6");
            current()
        })
        .await
        .unwrap();
        assert_eq!(
            (
                seen.action.as_str(),
                seen.target_kind.as_str(),
                seen.target_id.as_str()
            ),
            ("users:write", "user", "5")
        );
        let seen = scope(AuditEntry::default(), true, async {
            note_permission("datasources:create", "");
            pending()
        })
        .await
        .unwrap();
        assert_eq!(
            (seen.action.as_str(), seen.target_id.as_str()),
            ("datasources:create", "")
        );
        // Outside a scope nothing is kept and nothing fails.
        note_permission("users:write", "global.users:id:5");
        assert_eq!(current(), None);
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_anchor() {
        let (mut c, events) = chain_of(6);
        c.anchor_at(&events[3]);
        assert_eq!(verify(c, &events[3..]), Ok(3));
        // Pruning without moving the anchor shows as removal.
        let (c, events) = chain_of(6);
        assert_eq!(verify(c, &events[3..]), Err(Break::Removed(1)));
    }
}
