//! What this build reports as its version.

/// The Grafana version tollgate's API corresponds to; clients gate features on it.
pub const GRAFANA_COMPAT_VERSION: &str = "11.3.0";
pub const COMMIT: &str = match option_env!("TOLLGATE_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
