//! The throwaway PostgreSQL cluster of the backend's own tests, shared by path.

#[path = "../../src/store/pg_store/test_cluster.rs"]
mod cluster;

pub use cluster::TestCluster;
