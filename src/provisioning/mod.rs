//! Provisioning from files: Grafana's five kinds (datasources, dashboards, plugins,
//! notifiers, access control) read from `[paths] provisioning`. [`files`] parses and
//! validates (pure); [`crate::service::provisioning`] stores what they describe.

pub mod files;
