//! `tollgate migrate --to postgres`: copies a stopped sled data folder into a PostgreSQL
//! database. Every record keeps its id, times and ciphertext (the nodes that use the
//! database need the same `secret_key`). The copy is one PostgreSQL transaction, so an
//! interrupted run leaves the target as it was and can simply be run again; the counts of
//! every record kind are compared after the copy.
//!
//! Sessions and service-account tokens of deleted users (sled keeps a deleted user's
//! sessions, revoked, until a purge) cannot be stored under PostgreSQL's foreign keys:
//! they are left out before the copy, reported, and not expected in the comparison.

use super::{open_sled, pg_store::PgStore, Orphans, Store, StoreError, StoreResult};
use crate::config::Database;

/// What a migration copied and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Records of each kind, as in the target.
    pub counts: Vec<(&'static str, usize)>,
    /// Records of deleted users left out.
    pub left_out: Orphans,
}

/// Copies everything; refuses a target that holds data unless `force` (which replaces it).
pub async fn sled_to_postgres(
    data_path: &std::path::Path,
    db: &Database,
    force: bool,
) -> StoreResult<Copied> {
    let source = open_sled(data_path).await?;
    let target = PgStore::connect(db).await?;
    let mut dump = source.export().await?;
    let left_out = dump.remove_orphans();
    if !left_out.is_empty() {
        tracing::warn!(
            sessions = left_out.sessions,
            tokens = left_out.tokens,
            "leaving out the sessions and service-account tokens of deleted users"
        );
    }
    // The import checks emptiness under its table locks, in its transaction.
    target.import(&dump, force).await.map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Io(
            "the target database is not empty: pass --force to replace its content".into(),
        ),
        other => other,
    })?;
    let copied = target.export().await?;
    let want = dump.counts();
    let got = copied.counts();
    let wrong: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|((k, w), (_, g))| format!("{k}: {w} in sled, {g} in PostgreSQL"))
        .collect();
    if !wrong.is_empty() {
        return Err(StoreError::Io(format!(
            "the copy does not match: {}",
            wrong.join("; ")
        )));
    }
    Ok(Copied {
        counts: want,
        left_out,
    })
}
