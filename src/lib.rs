//! tollgate: a single-binary appliance that serves Grafana's Admin HTTP API and Grafana
//! Enterprise's Licensing HTTP API on an embedded database.
//!
//! A request flows one way: route -> security scheme ([`api::auth::Auth`] builds a
//! [`domain::Principal`]) -> handler (wire types only) -> service (permission check and
//! rules) -> store (one contract, [`store::Store`]; one module per backend). Errors flow back through [`error::AppError`].

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod issuer;
pub mod provisioning;
pub mod service;
pub mod store;
pub mod tls;
pub mod transport;
pub mod ui;
pub mod watched_file;
