//! Users as the rules see them: validated login and email, org roles and the principal a
//! request runs as.

use std::fmt;
use std::sync::Arc;

use super::{Action, OrgId, PermissionSet, UserId};

/// A login name: trimmed, non-empty, at most 190 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

/// Unicode NFKC of a login or email (compatibility forms such as fullwidth letters become
/// their plain form, so a lookalike collides with the original), refusing characters a
/// reader cannot see or that reorder text: controls, format characters (zero-width,
/// bidirectional overrides), separators other than a space, private-use and unassigned
/// code points.
fn normalize_identifier(what: &str, raw: &str) -> Result<String, String> {
    use unicode_normalization::UnicodeNormalization;
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    let v: String = raw.trim().nfkc().collect();
    for c in v.chars() {
        let reason = match c.general_category() {
            G::Control => "a control character",
            G::Format => "an invisible formatting character (zero-width or bidirectional)",
            G::LineSeparator | G::ParagraphSeparator => "a line or paragraph separator",
            G::PrivateUse => "a private-use character",
            G::Surrogate | G::Unassigned => "an unassigned character",
            _ => continue,
        };
        return Err(format!(
            "{what} must not contain {reason} (U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(v)
}

impl Login {
    /// Trimmed and NFKC-normalised; see [`normalize_identifier`] for what is refused.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let v = normalize_identifier("login", raw)?;
        let v = v.as_str();
        if v.is_empty() {
            return Err("login must not be empty".into());
        }
        if v.chars().count() > 190 {
            return Err("login is too long (at most 190 characters)".into());
        }
        if v.chars().any(char::is_control) {
            return Err("login must not contain control characters".into());
        }
        Ok(Self(v.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address: trimmed, `local@domain`, at most 190 characters.
///
/// Grafana lets the email default to the login, so a value without `@` is accepted only
/// through [`Email::from_login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let v = normalize_identifier("email", raw)?;
        let v = v.as_str();
        if v.is_empty() {
            return Err("email must not be empty".into());
        }
        if v.chars().count() > 190 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("invalid email address '{v}'"));
        }
        match v.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(v.to_string()))
            }
            _ => Err(format!("invalid email address '{v}'")),
        }
    }

    /// Grafana stores the login as the email when no email is given.
    pub fn from_login(login: &Login) -> Self {
        Self(login.as_str().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A role in an organization. Ordered by power: `None < Viewer < Editor < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrgRole {
    None,
    Viewer,
    Editor,
    Admin,
}

impl OrgRole {
    /// Grafana's spellings, case-insensitively (`Viewer`, `viewer`, `None`).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Viewer => "Viewer",
            Self::Editor => "Editor",
            Self::Admin => "Admin",
        }
    }

    pub fn to_byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        [Self::None, Self::Viewer, Self::Editor, Self::Admin]
            .get(usize::from(b))
            .copied()
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Basic,
    Session,
    ApiKey,
    ServiceAccount,
    /// In-process callers: start-up provisioning and CLI commands.
    System,
}

/// Who a request runs as, with the permissions the evaluator resolved for it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `None` for legacy API keys, which have no user.
    pub user_id: Option<UserId>,
    pub login: String,
    pub org_id: OrgId,
    pub org_role: OrgRole,
    pub is_grafana_admin: bool,
    pub kind: AuthKind,
    /// The session token id when authenticated by cookie.
    pub session_id: Option<u64>,
    pub permissions: Arc<PermissionSet>,
}

impl Principal {
    /// A principal holding every permission, for start-up work and CLI commands.
    pub fn system() -> Self {
        Self {
            user_id: None,
            login: "system".into(),
            org_id: OrgId(1),
            org_role: OrgRole::Admin,
            is_grafana_admin: true,
            kind: AuthKind::System,
            session_id: None,
            permissions: Arc::new(PermissionSet::all()),
        }
    }

    /// In-process work on one org's objects (provisioning).
    pub fn system_in(org: OrgId) -> Self {
        Self {
            org_id: org,
            ..Self::system()
        }
    }

    /// True when the caller is this user (not an API key acting for the org).
    pub fn is_user(&self, id: UserId) -> bool {
        self.user_id == Some(id) && matches!(self.kind, AuthKind::Basic | AuthKind::Session)
    }
}

impl Principal {
    /// The permission check every service runs: `action` on `scope` (empty for unscoped
    /// actions), else an RBAC denial naming the missing permission (its canonical spelling).
    pub fn require(&self, action: Action, scope: &str) -> Result<(), crate::error::AppError> {
        super::audit::note_permission(action.as_str(), scope);
        if self.permissions.has(action, scope) {
            Ok(())
        } else {
            Err(crate::error::AppError::AccessDenied {
                action: action.as_str().to_string(),
                scope: scope.to_string(),
            })
        }
    }

    /// Grafana's `reqGrafanaAdmin`: 403 "Permission denied" for anyone else.
    pub fn require_grafana_admin(&self) -> Result<(), crate::error::AppError> {
        super::audit::note_permission(GRAFANA_ADMIN_ACTION, "");
        if self.is_grafana_admin {
            Ok(())
        } else {
            Err(crate::error::AppError::PermissionDenied)
        }
    }
}

/// The action an audit event names for a route that only Grafana Admins may use (Grafana's
/// `reqGrafanaAdmin`, which has no RBAC action).
pub const GRAFANA_ADMIN_ACTION: &str = "grafana_admin";

/// `global.users:id:<id>`, the scope of per-user admin actions.
pub fn user_scope(id: UserId) -> String {
    // Built by hand: `format!` costs about as much as the permission check it feeds (every
    // user read makes one).
    const PREFIX: &str = "global.users:id:";
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(id.0);
    let mut scope = String::with_capacity(PREFIX.len() + digits.len());
    scope.push_str(PREFIX);
    scope.push_str(digits);
    scope
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_scopes_name_the_id_in_decimal() {
        for id in [0, 1, 9, 10, 4_242, u64::MAX] {
            assert_eq!(
                super::user_scope(super::UserId(id)),
                format!("global.users:id:{id}")
            );
        }
    }
}
