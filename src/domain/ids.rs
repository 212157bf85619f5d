//! Typed ids: a `UserId` cannot be passed where an `OrgId` is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            /// Big-endian bytes: a storage key that sorts by id.
            pub fn key(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }

            pub fn from_key(bytes: &[u8]) -> Option<Self> {
                let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
                Some(Self(u64::from_be_bytes(arr)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user (or service account) id, as Grafana's integer `id`.
    UserId
);
id_type!(
    /// An organization id; org 1 is "Main Org.".
    OrgId
);
