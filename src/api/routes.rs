//! The OpenAPI document's path templates, read once at start-up, for what the outer layer
//! needs to know about a request's route without routing it: Grafana's `handler` metric
//! label for poem's matched pattern, the template a raw path matches (an audit entry's route
//! and target, written before the handler runs), the success status an operation documents,
//! and the methods a path allows (the `Allow` header of a 405).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// The most path segments `find` splits; no template has more (a test checks).
const MAX_SEGMENTS: usize = 16;

/// One path template of the document.
struct Template {
    /// Its segments after the leading `/`; `None` for a parameter.
    segments: Vec<Option<String>>,
    /// Grafana's form, `/api/users/:id`.
    label: Arc<str>,
    /// Each documented method (upper case, sorted) with the lowest 2xx status it documents
    /// (200 when none): `DELETE /api/licensing/token` answers 202.
    methods: Vec<(String, u16)>,
}

/// A raw path's template and the target its last parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'t> {
    /// `/api/admin/users/:id/password` for `/api/admin/users/7/password`.
    pub route: &'t str,
    /// The segment before the last parameter, singular (`user`); "" without parameters.
    pub target_kind: String,
    /// The last parameter's value (`7`).
    pub target_id: String,
    /// The success status the request's method documents on that route (200 when none).
    pub success: u16,
}

#[derive(Default)]
pub struct RouteTable {
    /// poem-openapi's registered pattern (`/api/users/:param0`) to the label.
    by_pattern: crate::domain::FastMap<String, Arc<str>>,
    /// Templates by segment count, each list ordered most specific first (see `find`).
    by_len: Vec<Vec<Template>>,
}

impl RouteTable {
    /// The table of the server's own document, made once per process (every server of a
    /// test process shares it): metric labels borrow from it on every request.
    pub fn document() -> &'static Self {
        static TABLE: OnceLock<RouteTable> = OnceLock::new();
        TABLE.get_or_init(|| Self::from_spec(crate::api::spec_document()))
    }

    pub fn from_spec(spec_json: &str) -> Self {
        let mut table = Self::default();
        let doc: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let paths = doc.get("paths").and_then(|p| p.as_object());
        for (path, ops) in paths.into_iter().flatten() {
            let (mut pattern, mut label, mut n) = (String::new(), String::new(), 0);
            let mut segments = Vec::new();
            for seg in path.split('/').skip(1) {
                match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        pattern.push_str(&format!("/:param{n}"));
                        label.push_str(&format!("/:{name}"));
                        n += 1;
                        segments.push(None);
                    }
                    None => {
                        for s in [&mut pattern, &mut label] {
                            s.push('/');
                            s.push_str(seg);
                        }
                        segments.push(Some(seg.to_string()));
                    }
                }
            }
            let label: Arc<str> = label.into();
            let mut methods: Vec<(String, u16)> = ops
                .as_object()
                .into_iter()
                .flatten()
                .map(|(method, op)| {
                    let ok = op
                        .get("responses")
                        .and_then(|r| r.as_object())
                        .into_iter()
                        .flat_map(|r| r.keys())
                        .filter_map(|code| code.parse::<u16>().ok())
                        .filter(|code| (200..300).contains(code))
                        .min();
                    (method.to_ascii_uppercase(), ok.unwrap_or(200))
                })
                .collect();
            methods.sort();
            table.by_pattern.insert(pattern, label.clone());
            if table.by_len.len() <= segments.len() {
                table.by_len.resize_with(segments.len() + 1, Vec::new);
            }
            table.by_len[segments.len()].push(Template {
                segments,
                label,
                methods,
            });
        }
        // A fixed segment before a parameter at the first place two templates differ:
        // descending order of their fixed/parameter pattern, so the first match is the best.
        for templates in &mut table.by_len {
            templates.sort_by_cached_key(|t| {
                std::cmp::Reverse(t.segments.iter().map(Option::is_some).collect::<Vec<_>>())
            });
        }
        table
    }

    /// The label of poem's matched pattern (the pattern itself when the document lacks it).
    pub fn label(&self, pattern: &str) -> Cow<'_, str> {
        match self.by_pattern.get(pattern) {
            Some(label) => Cow::Borrowed(label),
            None => Cow::Owned(pattern.to_string()),
        }
    }

    /// The template the router picks for `path` (one trailing slash ignored), with the
    /// path without that slash: like poem's radix tree, a fixed segment beats a parameter at the
    /// first segment where two templates differ (`/api/users/lookup` is its own resource,
    /// not an `/api/users/{id}`); a parameter never matches an empty segment.
    fn find<'p>(&self, path: &'p str) -> Option<(&Template, &'p str)> {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        // Split once, on the stack: no template is longer (a test checks).
        let mut parts = [""; MAX_SEGMENTS];
        let mut n = 0;
        for part in path.split('/').skip(1) {
            *parts.get_mut(n)? = part;
            n += 1;
        }
        let parts = &parts[..n];
        let best = self.by_len.get(n)?.iter().find(|t| {
            t.segments.iter().zip(parts).all(|(s, p)| match s {
                Some(s) => s == p,
                None => !p.is_empty(),
            })
        })?;
        Some((best, path))
    }

    /// The template a `method` request to `path` matches and the target its last
    /// parameter names: (`/api/admin/users/:id`, `user`, `7`) for
    /// `/api/admin/users/7/password`.
    pub fn match_path(&self, method: &str, path: &str) -> Option<RouteMatch<'_>> {
        let (t, path) = self.find(path)?;
        let (target_kind, target_id) = match t.segments.iter().rposition(Option::is_none) {
            Some(i) => {
                let kind = i
                    .checked_sub(1)
                    .and_then(|k| t.segments[k].as_deref())
                    .unwrap_or("");
                (
                    kind.strip_suffix('s').unwrap_or(kind).to_string(),
                    path.split('/').nth(i + 1).unwrap_or("").to_string(),
                )
            }
            None => (String::new(), String::new()),
        };
        let success = t
            .methods
            .iter()
            .find(|(m, _)| m == method)
            .map_or(200, |(_, code)| *code);
        Some(RouteMatch {
            route: &t.label,
            target_kind,
            target_id,
            success,
        })
    }

    /// The `Allow` header for `path`: the methods of the template it matches.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let (t, _) = self.find(path)?;
        let methods: Vec<&str> = t.methods.iter().map(|(m, _)| m.as_str()).collect();
        (!methods.is_empty()).then(|| methods.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"paths": {
        "/api/users/{id}": {"get": {}, "put": {"responses": {"200": {}}}},
        "/api/users/search": {"get": {}},
        "/api/users/lookup": {"get": {}},
        "/login": {"post": {}},
        "/api/admin/users/{id}/password": {"put": {}},
        "/api/orgs/{org_id}/users/{user_id}": {"patch": {}, "delete": {}},
        "/api/orgs/{orgId}/users": {"get": {}, "post": {}},
        "/api/orgs/name/{orgName}": {"get": {}},
        "/api/licensing/token": {"delete": {"responses": {"202": {}, "400": {}}}}
    }}"#;

    fn matched(path: &str) -> Option<(String, String, String)> {
        RouteTable::from_spec(SPEC)
            .match_path("GET", path)
            .map(|m| (m.route.to_string(), m.target_kind, m.target_id))
    }

    #[test]
    fn a_path_names_its_template_and_target() {
        let m = |r: &str, k: &str, i: &str| Some((r.to_string(), k.to_string(), i.to_string()));
        assert_eq!(matched("/api/users/7"), m("/api/users/:id", "user", "7"));
        // A fixed segment wins over a parameter.
        assert_eq!(matched("/api/users/search"), m("/api/users/search", "", ""));
        assert_eq!(
            matched("/api/admin/users/3/password"),
            m("/api/admin/users/:id/password", "user", "3")
        );
        // The last parameter is the target.
        assert_eq!(
            matched("/api/orgs/2/users/9"),
            m("/api/orgs/:org_id/users/:user_id", "user", "9")
        );
        assert_eq!(matched("/login"), m("/login", "", ""));
        assert_eq!(matched("/api/users/7/"), m("/api/users/:id", "user", "7"));
        assert_eq!(matched("/api/nothing/here"), None);
        assert_eq!(matched("/api/users/"), None, "a parameter is never empty");
    }

    #[test]
    fn the_success_status_is_the_documented_one() {
        let t = RouteTable::from_spec(SPEC);
        let success = |method: &str, path: &str| t.match_path(method, path).unwrap().success;
        assert_eq!(success("DELETE", "/api/licensing/token"), 202);
        assert_eq!(success("PUT", "/api/users/7"), 200);
        assert_eq!(success("POST", "/api/users/7"), 200, "undocumented: 200");
    }

    #[test]
    fn allow_lists_the_methods_of_the_template_the_router_picks() {
        let t = RouteTable::from_spec(SPEC);
        assert_eq!(t.allowed("/api/users/7").as_deref(), Some("GET, PUT"));
        assert_eq!(t.allowed("/api/users/lookup").as_deref(), Some("GET"));
        // The first differing segment decides: `name` beats `{orgId}`.
        assert_eq!(t.allowed("/api/orgs/name/users").as_deref(), Some("GET"));
        assert_eq!(t.allowed("/api/orgs/3/users").as_deref(), Some("GET, POST"));
        assert_eq!(
            t.allowed("/api/orgs/3/users/4").as_deref(),
            Some("DELETE, PATCH")
        );
        assert_eq!(t.allowed("/api/nothing"), None);
    }

    /// `find` splits a path into at most `MAX_SEGMENTS` parts: every template fits, and a
    /// longer path matches nothing.
    #[test]
    fn every_template_fits_the_split() {
        let t = RouteTable::document();
        assert!(t.by_len.len() <= MAX_SEGMENTS + 1, "{}", t.by_len.len());
        assert!(t
            .by_len
            .iter()
            .flatten()
            .all(|t| t.segments.len() <= MAX_SEGMENTS));
        assert!(t
            .match_path("GET", &"/a".repeat(MAX_SEGMENTS + 1))
            .is_none());
        assert!(t.match_path("GET", "/api/users/7").is_some());
    }

    #[test]
    fn labels_follow_poems_patterns() {
        let t = RouteTable::from_spec(SPEC);
        assert_eq!(&*t.label("/api/users/:param0"), "/api/users/:id");
        assert_eq!(&*t.label("/login"), "/login");
        assert_eq!(&*t.label("/elsewhere"), "/elsewhere");
    }
}
