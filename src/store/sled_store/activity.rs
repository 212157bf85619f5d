//! The activity series in sled: the `activity_series` tree, span tag (`h`/`d`) and bucket
//! start (8 bytes, big-endian, sign bit flipped so keys sort by time) -> three big-endian
//! counters (sign-ins, failed sign-ins, active users). Counters change inside transactions
//! (a sign-in's two buckets together; an active user together with its `last_seen_at`),
//! never by writing back a value read outside one.

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::{dec, enc, read_u64, tx_err, SledStore, TxResult};
use crate::domain::UserId;
use crate::store::{SeriesBucket, SeriesCounts, SeriesSpan, StoreError, StoreResult, UserRecord};

fn tag(span: SeriesSpan) -> u8 {
    match span {
        SeriesSpan::Hour => b'h',
        SeriesSpan::Day => b'd',
    }
}

pub(super) fn key(span: SeriesSpan, start: i64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag(span);
    k[1..].copy_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    k
}

fn parse_key(k: &[u8]) -> Option<(SeriesSpan, i64)> {
    let span = SeriesSpan::EACH
        .into_iter()
        .find(|s| Some(&tag(*s)) == k.first())?;
    let start: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    Some((span, (u64::from_be_bytes(start) ^ (1 << 63)) as i64))
}

pub(super) fn counts_bytes(c: &SeriesCounts) -> [u8; 24] {
    let mut v = [0u8; 24];
    v[..8].copy_from_slice(&c.sign_ins.to_be_bytes());
    v[8..16].copy_from_slice(&c.failed_sign_ins.to_be_bytes());
    v[16..].copy_from_slice(&c.active_users.to_be_bytes());
    v
}

fn parse_counts(v: &[u8]) -> SeriesCounts {
    SeriesCounts {
        sign_ins: read_u64(v.get(..8)),
        failed_sign_ins: read_u64(v.get(8..16)),
        active_users: read_u64(v.get(16..24)),
    }
}

/// Adds `delta` to the bucket of `span` that holds `at` (inside a transaction).
fn add(tx: &TransactionalTree, span: SeriesSpan, at: i64, delta: SeriesCounts) -> TxResult<()> {
    let k = key(span, span.start_of(at));
    let cur = tx.get(k)?.map(|v| parse_counts(&v)).unwrap_or_default();
    tx.insert(&k, &counts_bytes(&cur.plus(delta)))?;
    Ok(())
}

/// Decodes one entry of the tree.
pub(super) fn bucket(k: &[u8], v: &[u8]) -> StoreResult<SeriesBucket> {
    let (span, start) =
        parse_key(k).ok_or_else(|| StoreError::Codec("bad activity series key".into()))?;
    Ok(SeriesBucket {
        span,
        start,
        counts: parse_counts(v),
    })
}

impl SledStore {
    pub(super) fn record_sign_in_row(&self, at: i64, ok: bool) -> StoreResult<()> {
        let delta = SeriesCounts {
            sign_ins: u64::from(ok),
            failed_sign_ins: u64::from(!ok),
            active_users: 0,
        };
        self.activity_series
            .transaction(|tx| {
                for span in SeriesSpan::EACH {
                    add(tx, span, at, delta)?;
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    /// `touch_last_seen`: the row's time and the active-user counts in one transaction.
    pub(super) fn touch_last_seen_row(&self, id: UserId, at: i64) -> StoreResult<()> {
        (&self.users, &self.users_by_seen, &self.activity_series)
            .transaction(|(users, by_seen, series)| {
                let Some(old) = users.get(id.key())? else {
                    return Ok(());
                };
                let mut row: UserRecord = dec(&old)?;
                let prev = row.last_seen_at;
                if prev.is_some_and(|t| t >= at) {
                    return Ok(());
                }
                row.last_seen_at = Some(at);
                users.insert(&id.key(), enc(&row)?)?;
                if row.is_service_account {
                    return Ok(());
                }
                if let Some(prev) = prev {
                    by_seen.remove(&super::users::seen_key(prev, id))?;
                }
                by_seen.insert(&super::users::seen_key(at, id), &[])?;
                let one = SeriesCounts {
                    active_users: 1,
                    ..SeriesCounts::default()
                };
                for span in SeriesSpan::EACH {
                    if prev.is_none_or(|t| t < span.start_of(at)) {
                        add(series, span, at, one)?;
                    }
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    pub(super) fn activity_series_rows(
        &self,
        hours_from: i64,
        days_from: i64,
    ) -> StoreResult<Vec<SeriesBucket>> {
        let mut out = Vec::new();
        for (span, from) in [(SeriesSpan::Hour, hours_from), (SeriesSpan::Day, days_from)] {
            let end = [tag(span) + 1];
            for item in self
                .activity_series
                .range(key(span, from).as_slice()..&end[..])
            {
                let (k, v) = item?;
                out.push(bucket(&k, &v)?);
            }
        }
        Ok(out)
    }

    pub(super) fn prune_activity_series_rows(
        &self,
        hours_before: i64,
        days_before: i64,
    ) -> StoreResult<()> {
        for (span, before) in [
            (SeriesSpan::Hour, hours_before),
            (SeriesSpan::Day, days_before),
        ] {
            let begin = [tag(span)];
            for item in self
                .activity_series
                .range(&begin[..]..key(span, before).as_slice())
            {
                let (k, _) = item?;
                self.activity_series.remove(k)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_round_trip() {
        let times = [i64::MIN, -3_600, 0, 3_600, 1_796_000_000, i64::MAX];
        for w in times.windows(2) {
            assert!(key(SeriesSpan::Hour, w[0]) < key(SeriesSpan::Hour, w[1]));
        }
        for t in times {
            for span in SeriesSpan::EACH {
                assert_eq!(parse_key(&key(span, t)), Some((span, t)));
            }
        }
        let c = SeriesCounts {
            sign_ins: 1,
            failed_sign_ins: 2,
            active_users: u64::MAX,
        };
        assert_eq!(parse_counts(&counts_bytes(&c)), c);
    }
}
