//! Dashboard JSON: walking panels (top level, inside collapsed rows, and the old `rows`
//! layout) and reading the legacy `alert` objects that become alert rules.

use serde_json::Value;

/// Calls `f` on every panel object of a dashboard.
pub fn for_each_panel(dashboard: &Value, f: &mut dyn FnMut(&Value)) {
    fn walk(panels: Option<&Value>, f: &mut dyn FnMut(&Value)) {
        for p in panels.and_then(Value::as_array).into_iter().flatten() {
            f(p);
            // A collapsed row carries its panels inside it.
            walk(p.get("panels"), f);
        }
    }
    walk(dashboard.get("panels"), f);
    for row in dashboard
        .get("rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(row.get("panels"), f);
    }
}

/// A panel's legacy alert: (panel id, alert name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelAlert {
    pub panel_id: u64,
    pub name: String,
}

/// The legacy alerts of a dashboard; a panel without an id cannot carry one (Grafana
/// refuses such alerts too).
pub fn alerts(dashboard: &Value) -> Vec<PanelAlert> {
    let mut out = Vec::new();
    for_each_panel(dashboard, &mut |p| {
        let (Some(alert), Some(id)) = (p.get("alert"), p.get("id").and_then(Value::as_u64)) else {
            return;
        };
        let name = alert
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| p.get("title").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| format!("Panel {id} alert"));
        out.push(PanelAlert { panel_id: id, name });
    });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_alerts_in_panels_rows_and_old_rows() {
        let d: Value = serde_json::from_str(
            r#"{"panels":[{"id":1,"alert":{"name":"a"}},{"id":2},
                {"id":3,"type":"row","panels":[{"id":4,"title":"t","alert":{}}]}],
                "rows":[{"panels":[{"id":5,"alert":{"name":"old"}}]}]}"#,
        )
        .unwrap();
        let names: Vec<(u64, String)> = alerts(&d)
            .into_iter()
            .map(|a| (a.panel_id, a.name))
            .collect();
        assert_eq!(names, [(1, "a".into()), (4, "t".into()), (5, "old".into())]);
    }
}
