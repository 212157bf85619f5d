//! The one codec for every stored value: a format-version byte, then bincode 2 (serde,
//! standard config). Stored structs never use `skip_serializing_if`, `flatten`, untagged
//! enums or `serde_json::Value`: bincode cannot decode them (JSON blobs are kept as strings).
//! Byte vectors are marked `#[serde(with = "serde_bytes")]`: bincode writes them exactly as
//! a sequence of `u8` (a length, then the bytes) but reads them in one run instead of one
//! element at a time.

use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;

/// Bumped when a stored layout changes; old versions are migrated on read.
pub const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => {
            bincode::serde::decode_from_slice(rest, bincode::config::standard())
                .map(|(v, _)| v)
                .map_err(|e| StoreError::Codec(e.to_string()))
        }
        Some((v, _)) => Err(StoreError::Codec(format!("unknown record format {v}"))),
        None => Err(StoreError::Codec("empty record".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct R {
        a: u64,
        b: Option<String>,
        c: Vec<u8>,
    }

    #[test]
    fn round_trip_with_version_byte() {
        let r = R {
            a: 7,
            b: None,
            c: vec![1, 2],
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<R>(&bytes).unwrap(), r);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(decode::<R>(&bad).is_err());
        assert!(decode::<R>(&[]).is_err());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct RunOfBytes {
        a: u64,
        b: Option<String>,
        #[serde(with = "serde_bytes")]
        c: Vec<u8>,
    }

    /// Records written before the byte vectors were marked read back, and new ones are
    /// written byte for byte as before.
    #[test]
    fn bytes_as_one_run_keep_the_stored_layout() {
        for c in [vec![], vec![7], (0..=255).collect::<Vec<u8>>()] {
            let old = R {
                a: 300,
                b: Some("x".into()),
                c: c.clone(),
            };
            let new = RunOfBytes {
                a: 300,
                b: Some("x".into()),
                c,
            };
            let old_bytes = encode(&old).unwrap();
            assert_eq!(encode(&new).unwrap(), old_bytes);
            assert_eq!(decode::<RunOfBytes>(&old_bytes).unwrap(), new);
        }
    }
}
