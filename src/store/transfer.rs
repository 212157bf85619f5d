//! `tollgate migrate --to postgres`: copies a stopped sled data folder into a PostgreSQL
//! database. Every record keeps its id, times and ciphertext (the nodes that use the
//! database need the same `secret_key`). The copy is one PostgreSQL transaction, so an
//! interrupted run leaves the target as it was and can simply be run again; the counts of
//! every record kind are compared after the copy.

use super::{
    open_sled, pg_store::PgStore, EncryptionStore, StatsStore, Store, StoreError, StoreResult,
};
use crate::config::Database;

/// Copies everything; refuses a target that holds data unless `force` (which replaces it).
/// The counts of every record kind that were copied and verified.
pub async fn sled_to_postgres(
    data_path: &std::path::Path,
    db: &Database,
    force: bool,
) -> StoreResult<Vec<(&'static str, usize)>> {
    let source = open_sled(data_path).await?;
    let target = PgStore::connect(db).await?;
    let dump = source.export().await?;
    if !force {
        let c = target.counts().await?;
        let keys = target.deks().await?;
        if c.users + c.service_accounts + c.orgs > 0 || !keys.is_empty() {
            return Err(StoreError::Io(
                "the target database is not empty: pass --force to replace its content".into(),
            ));
        }
    }
    target.import(&dump, force).await?;
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
    Ok(want)
}
