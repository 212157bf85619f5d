//! License tokens: Grafana Enterprise's claims and its validation order (subject against
//! `root_url` as a glob, `nbf`, `lexp`, `exp`), with a reason an operator can act on.
//! Pure: the caller gives the time.

use serde::{Deserialize, Serialize};

/// Grafana's license token claims. Unknown claims are ignored; missing numbers are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenseClaims {
    /// Token id.
    pub jti: String,
    pub iss: String,
    /// The licensed URL (a glob matched against `[server] root_url`).
    pub sub: String,
    /// Token issued at (unix seconds).
    pub iat: i64,
    /// Token expiry.
    pub exp: i64,
    /// License start (not before).
    pub nbf: i64,
    /// License expiry.
    pub lexp: i64,
    /// License id.
    pub lid: String,
    pub included_users: i64,
    pub included_admins: i64,
    pub included_viewers: i64,
    pub lic_exp_warn_days: i64,
    pub tok_exp_warn_days: i64,
    pub update_days: i64,
    pub prod: Vec<String>,
    pub company: String,
    pub slug: String,
}

/// What an appliance sends its issuer to renew (over HTTP, or as a file when air-gapped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    /// The token in effect.
    pub token: String,
    /// The appliance's `root_url`.
    pub instance: String,
    pub requested_at: i64,
    #[serde(default)]
    pub stats: RenewStats,
}

/// Seat counts reported with a renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenewStats {
    pub users: u64,
    pub admins_and_editors: u64,
    pub viewers: u64,
}

/// The issuer's answer to a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponse {
    pub token: String,
}

/// Whether `instance` names the server at `root_url` (a trailing slash is optional).
pub fn same_instance(instance: &str, root_url: &str) -> bool {
    let instance = instance.trim();
    !instance.is_empty() && instance.trim_end_matches('/') == root_url.trim_end_matches('/')
}

/// Grafana's license status codes, as its Go `licensing` package numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseState {
    Valid,
    Missing,
    Invalid,
    Expired,
    NotYetValid,
    WrongInstance,
}

impl LicenseState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::WrongInstance => "wrong-instance",
        }
    }

    /// Grafana's numeric `status` claim: Valid=1, Invalid=3, NotFound=4, Expired=5,
    /// InvalidSubject=6 (a license not valid yet is Invalid there).
    pub fn grafana_code(self) -> i64 {
        match self {
            Self::Valid => 1,
            Self::Invalid | Self::NotYetValid => 3,
            Self::Missing => 4,
            Self::Expired => 5,
            Self::WrongInstance => 6,
        }
    }
}

/// Why a license is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub state: LicenseState,
    pub reason: String,
}

impl Invalid {
    pub fn new(state: LicenseState, reason: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The largest seat count a token may carry (more is a broken or hostile issuer).
pub const MAX_SEATS: i64 = 100_000_000;
/// The largest day count (warnings, renewal period): ten years.
pub const MAX_DAYS: i64 = 3650;
/// The largest time a token may name: the end of year 9999.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Refuses claims no issuer should sign: negative or absurd seats, day counts and times.
/// 0 keeps its meaning (unlimited seats, Grafana's defaults for days).
pub fn check_claims(c: &LicenseClaims) -> Result<(), String> {
    let ranges: [(&str, i64, i64); 10] = [
        ("included_users", c.included_users, MAX_SEATS),
        ("included_admins", c.included_admins, MAX_SEATS),
        ("included_viewers", c.included_viewers, MAX_SEATS),
        ("lic_exp_warn_days", c.lic_exp_warn_days, MAX_DAYS),
        ("tok_exp_warn_days", c.tok_exp_warn_days, MAX_DAYS),
        ("update_days", c.update_days, MAX_DAYS),
        ("iat", c.iat, MAX_TIME),
        ("exp", c.exp, MAX_TIME),
        ("nbf", c.nbf, MAX_TIME),
        ("lexp", c.lexp, MAX_TIME),
    ];
    for (name, value, max) in ranges {
        if !(0..=max).contains(&value) {
            return Err(format!(
                "malformed token: claim {name} = {value} is out of range (0 to {max})"
            ));
        }
    }
    Ok(())
}

/// `update_days` below 1 counts as 1, as Grafana does.
pub fn update_days(claims: &LicenseClaims) -> i64 {
    claims.update_days.max(1)
}

fn at(t: i64) -> String {
    crate::domain::time::rfc3339(t)
}

/// Grafana's order: subject, `nbf`, `lexp`, `exp`. An empty `root_url` skips the subject.
pub fn validate(claims: &LicenseClaims, root_url: &str, now: i64) -> Result<(), Invalid> {
    if !root_url.is_empty() && !subject_matches(&claims.sub, root_url) {
        return Err(Invalid::new(
            LicenseState::WrongInstance,
            format!(
                "instance URL '{root_url}' does not match licensed URL '{}'; \
                 set [server] root_url to the licensed URL or ask for a license for this one",
                claims.sub
            ),
        ));
    }
    if claims.nbf > now {
        return Err(Invalid::new(
            LicenseState::NotYetValid,
            format!("license issue date is {}", at(claims.nbf)),
        ));
    }
    if claims.lexp != 0 && claims.lexp <= now {
        return Err(Invalid::new(
            LicenseState::Expired,
            format!("license expired at {}", at(claims.lexp)),
        ));
    }
    if claims.exp <= now {
        return Err(Invalid::new(
            LicenseState::Expired,
            format!("license token expired at {}", at(claims.exp)),
        ));
    }
    Ok(())
}

/// The licensed URL, a glob with separators `.`, `/` and `:`, against `root_url`. Both are
/// compared with a trailing slash, since Grafana always adds one to `root_url`.
pub fn subject_matches(sub: &str, root_url: &str) -> bool {
    let with_slash = |s: &str| {
        if s.ends_with('/') || s.ends_with('*') {
            s.to_string()
        } else {
            format!("{s}/")
        }
    };
    let pattern: Vec<char> = with_slash(sub.trim()).chars().collect();
    let text: Vec<char> = with_slash(root_url).chars().collect();
    glob(&pattern, &text)
}

fn is_sep(c: char) -> bool {
    matches!(c, '.' | '/' | ':')
}

/// A glob in the style of gobwas/glob (which Grafana uses): `*` any run of non-separators,
/// `**` any run, `?` one non-separator, `[abc]`/`[a-z]`/`[!x]` a class, `{a,b}` alternatives.
fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => (0..=t.len()).any(|i| glob(&p[2..], &t[i..])),
        Some('*') => {
            let mut i = 0;
            loop {
                if glob(&p[1..], &t[i..]) {
                    return true;
                }
                if i == t.len() || is_sep(t[i]) {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => t.first().is_some_and(|c| !is_sep(*c)) && glob(&p[1..], &t[1..]),
        Some('[') => match (p.iter().position(|c| *c == ']'), t.first()) {
            (Some(end), Some(c)) if end > 1 => {
                class_matches(&p[1..end], *c) && glob(&p[end + 1..], &t[1..])
            }
            _ => false,
        },
        Some('{') => {
            let Some(end) = p.iter().position(|c| *c == '}') else {
                return false;
            };
            p[1..end].split(|c| *c == ',').any(|alt| {
                let mut q = alt.to_vec();
                q.extend_from_slice(&p[end + 1..]);
                glob(&q, t)
            })
        }
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && glob(&p[2..], &t[1..]),
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negate, class) = match class.first() {
        Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            hit |= (class[i]..=class[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= class[i] == c;
            i += 1;
        }
    }
    hit != negate
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims() -> LicenseClaims {
        LicenseClaims {
            sub: "https://grafana.example.com/".into(),
            nbf: 100,
            lexp: 1000,
            exp: 500,
            ..Default::default()
        }
    }

    #[test]
    fn validation_order_and_reasons() {
        let c = claims();
        assert_eq!(validate(&c, "https://grafana.example.com/", 200), Ok(()));
        let state = |c: &LicenseClaims, url: &str, now: i64| {
            validate(c, url, now).map_err(|e| e.state).err()
        };
        assert_eq!(
            state(&c, "https://other.example.com/", 200),
            Some(LicenseState::WrongInstance)
        );
        // The subject is checked first, even when the dates are wrong too.
        assert_eq!(
            state(&c, "https://other.example.com/", 5000),
            Some(LicenseState::WrongInstance)
        );
        assert_eq!(
            state(&c, "https://grafana.example.com/", 50),
            Some(LicenseState::NotYetValid)
        );
        let e = validate(&c, "https://grafana.example.com/", 2000).unwrap_err();
        assert_eq!(e.state, LicenseState::Expired);
        assert!(e.reason.starts_with("license expired at"), "{}", e.reason);
        let e = validate(&c, "https://grafana.example.com/", 600).unwrap_err();
        assert!(
            e.reason.starts_with("license token expired at"),
            "{}",
            e.reason
        );
        assert_eq!(state(&c, "", 200), None, "no root_url: subject skipped");
    }

    #[test]
    fn subject_globs() {
        assert!(subject_matches(
            "https://a.example.com/",
            "https://a.example.com/"
        ));
        assert!(subject_matches(
            "https://a.example.com",
            "https://a.example.com/"
        ));
        assert!(subject_matches(
            "https://*.example.com/",
            "https://a.example.com/"
        ));
        assert!(!subject_matches(
            "https://*.example.com/",
            "https://a.b.example.com/"
        ));
        assert!(subject_matches(
            "https://**.example.com/",
            "https://a.b.example.com/"
        ));
        assert!(subject_matches(
            "http{,s}://grafana?.example.com/",
            "http://grafana2.example.com/"
        ));
        assert!(subject_matches(
            "https://g[0-9].example.com/",
            "https://g7.example.com/"
        ));
        assert!(!subject_matches(
            "https://g[!0-9].example.com/",
            "https://g7.example.com/"
        ));
        assert!(!subject_matches(
            "https://a.example.com/",
            "https://a.example.com.evil/"
        ));
        assert!(subject_matches(
            "https://a.example.com:*/",
            "https://a.example.com:3000/"
        ));
        assert!(!subject_matches("[", "x"));
        assert!(same_instance("http://a:3000", "http://a:3000/"));
        assert!(!same_instance("http://*:3000/", "http://a:3000/"));
        assert!(!same_instance("", "http://a:3000/"));
    }
}
