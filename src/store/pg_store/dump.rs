//! Export and import of every record (`Store::export`/`import`) in PostgreSQL. (Being
//! written.)

use super::PgStore;
use crate::store::{Dump, StoreError, StoreResult};

pub(super) async fn export(_s: &PgStore) -> StoreResult<Dump> {
    Err(StoreError::Io(
        "export is not implemented for PostgreSQL yet".into(),
    ))
}

pub(super) async fn import(_s: &PgStore, _d: &Dump, _replace: bool) -> StoreResult<()> {
    Err(StoreError::Io(
        "import is not implemented for PostgreSQL yet".into(),
    ))
}
