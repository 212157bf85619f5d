//! The backup file (`tollgate backup`, `POST /api/admin/backup`): one [`Dump`] with a
//! header that says what it is, and a checksum that says it arrived whole.
//!
//! ```text
//! "TOLLGATE-BACKUP\n"            16 bytes, the magic
//! format version                 u32, big-endian (2: with the audit log; 1 before it)
//! header length, header          u32 big-endian, then JSON: format, createdAt (Unix
//!                                seconds), backend, tollgateVersion, counts per kind
//! body length, body              u64 big-endian, then the dump in the store codec
//! SHA-256                        32 bytes, over everything before it
//! ```
//!
//! Secrets stay ciphertext: restoring needs the `secret_key` of the server that made it.

use serde::{Deserialize, Serialize};

use super::{codec, Dump};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"TOLLGATE-BACKUP\n";
/// The layout this build writes and reads.
/// 2 since the dump carries the audit log (a format-1 file, written before it, is refused
/// with a message that says so: its records are laid out without the log).
pub const FORMAT_VERSION: u32 = 2;
const DIGEST_LEN: usize = 32;

/// What the header says about the backup (readable without decoding the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// The backend the records were read from (`sled`, `postgres`).
    pub backend: String,
    pub tollgate_version: String,
    /// Records of each kind.
    pub counts: serde_json::Map<String, serde_json::Value>,
}

impl Header {
    pub fn new(dump: &Dump, created_at: i64, backend: &str) -> Self {
        Self {
            format: FORMAT_VERSION,
            created_at,
            backend: backend.to_string(),
            tollgate_version: env!("CARGO_PKG_VERSION").to_string(),
            counts: dump
                .counts()
                .into_iter()
                .map(|(k, n)| (k.to_string(), serde_json::Value::from(n)))
                .collect(),
        }
    }
}

/// Why a file is not a backup this build can restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("not a tollgate backup file")]
    NotABackup,
    #[error("the backup file is corrupted or truncated: its SHA-256 checksum does not match")]
    Corrupted,
    #[error("backup format {0} is newer than this tollgate reads ({FORMAT_VERSION})")]
    UnknownFormat(u32),
    #[error(
        "backup format {0} was written by a tollgate without the audit log: restore it with \
         that version, then upgrade (this one reads format {FORMAT_VERSION})"
    )]
    OlderFormat(u32),
    #[error("the backup file is malformed: {0}")]
    Malformed(String),
}

/// Encodes a dump with its header and checksum.
pub fn encode(header: &Header, dump: &Dump) -> Result<Vec<u8>, BackupError> {
    let head = serde_json::to_vec(header).map_err(|e| BackupError::Malformed(e.to_string()))?;
    let body = codec::encode(dump).map_err(|e| BackupError::Malformed(e.to_string()))?;
    let head_len = u32::try_from(head.len()).map_err(|_| BackupError::NotABackup)?;
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + head.len() + body.len() + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&head_len.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&body);
    let digest = crate::crypto::sha256(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Takes `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], BackupError> {
    if rest.len() < n {
        return Err(BackupError::Malformed("it ends early".into()));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn be<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], BackupError> {
    take(rest, N)?
        .try_into()
        .map_err(|_| BackupError::Malformed("it ends early".into()))
}

/// Checks the checksum first (a flipped byte anywhere is refused before anything is
/// decoded), then the magic, the format and the header.
pub fn decode(bytes: &[u8]) -> Result<(Header, Dump), BackupError> {
    if bytes.len() < MAGIC.len() + DIGEST_LEN || !bytes.starts_with(&MAGIC[..8]) {
        return Err(BackupError::NotABackup);
    }
    let (content, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if crate::crypto::sha256(content)[..] != *digest {
        return Err(BackupError::Corrupted);
    }
    let mut rest = content;
    if take(&mut rest, MAGIC.len())? != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let format = u32::from_be_bytes(be(&mut rest)?);
    if format < FORMAT_VERSION {
        return Err(BackupError::OlderFormat(format));
    }
    if format != FORMAT_VERSION {
        return Err(BackupError::UnknownFormat(format));
    }
    let head_len = u32::from_be_bytes(be(&mut rest)?) as usize;
    let header: Header = serde_json::from_slice(take(&mut rest, head_len)?)
        .map_err(|e| BackupError::Malformed(format!("header: {e}")))?;
    let body_len = usize::try_from(u64::from_be_bytes(be(&mut rest)?))
        .map_err(|_| BackupError::Malformed("body length".into()))?;
    let dump: Dump = codec::decode(take(&mut rest, body_len)?)
        .map_err(|e| BackupError::Malformed(format!("records: {e}")))?;
    if !rest.is_empty() {
        return Err(BackupError::Malformed("bytes after the records".into()));
    }
    Ok((header, dump))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::OrgRecord;

    fn sample() -> (Header, Dump) {
        let dump = Dump {
            orgs: vec![OrgRecord {
                id: 1,
                name: "Main Org.".into(),
                created: 0,
                updated: 0,
            }],
            meta: vec![("kek_salt".into(), vec![1, 2, 3])],
            ..Dump::default()
        };
        (Header::new(&dump, 1_700_000_000, "sled"), dump)
    }

    #[test]
    fn round_trip_and_every_flipped_byte_is_refused() {
        let (header, dump) = sample();
        let bytes = encode(&header, &dump).unwrap();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(decode(&bytes).unwrap(), (header, dump));
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad).is_err(), "byte {i} flipped");
        }
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert_eq!(decode(&bad), Err(BackupError::Corrupted));
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(BackupError::Corrupted)
        );
        assert_eq!(decode(b"{\"not\": 1}"), Err(BackupError::NotABackup));
    }

    /// A file of another format, with a valid checksum, is refused by its version.
    #[test]
    fn other_formats_are_refused_by_name() {
        let (header, dump) = sample();
        let bytes = encode(&header, &dump).unwrap();
        let with_format = |v: u32| {
            let mut b = bytes[..bytes.len() - DIGEST_LEN].to_vec();
            b[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&v.to_be_bytes());
            let sum = crate::crypto::sha256(&b);
            b.extend_from_slice(&sum);
            b
        };
        assert_eq!(decode(&with_format(1)), Err(BackupError::OlderFormat(1)));
        assert_eq!(decode(&with_format(3)), Err(BackupError::UnknownFormat(3)));
        assert!(BackupError::OlderFormat(1)
            .to_string()
            .contains("without the audit log"));
    }
}
