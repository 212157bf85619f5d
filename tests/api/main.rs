//! One integration-test binary: every test drives a real server over HTTP.

// Tests fail by panicking: unwrap/expect/panic are the assertions here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod access_control;
mod activity;
mod admin_users;
mod api_keys;
mod audit;
mod backup;
mod basic_auth;
mod brute_force;
mod cli;
mod datasources;
mod durability;
mod encryption;
mod ldap;
mod licensing;
mod migrate;
mod multinode;
mod openapi;
mod operations;
mod orgs;
mod orgs_isolation;
mod postgres;
mod provisioning;
mod quotas;
mod races;
mod rbac_seed;
mod roles;
mod scopes;
mod security;
mod service_accounts;
mod sessions;
mod settings;
mod signed_in_user;
mod slapd;
mod timing;
mod tls;
mod transport;
mod upgrade;
mod users;
