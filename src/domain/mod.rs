//! Pure domain types, no I/O: typed ids, validated logins and emails, org roles, RBAC
//! permissions and the authenticated [`Principal`].

mod access;
pub mod audit;
pub mod dashboard;
mod ids;
pub mod license;
pub mod quota;
pub mod time;
mod user;
pub mod version;

pub use access::{
    canonical_action, scope_covers, Action, Permission, PermissionSet, ACTION_ALIASES,
    DELEGATE_SCOPE,
};
pub use ids::{OrgId, UserId};

/// A map read on every request (permission sets, caches, route labels): foldhash, seeded
/// per process, instead of SipHash, which cost more than the lookups around it. Not for
/// maps whose keys an anonymous client chooses.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub use user::{user_scope, AuthKind, Email, Login, OrgRole, Principal};
