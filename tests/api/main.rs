//! One integration-test binary: every test drives a real server over HTTP.

mod helpers;

mod admin_users;
mod basic_auth;
mod cli;
mod durability;
mod openapi;
mod transport;
mod users;
