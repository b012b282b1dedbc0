//! Cluster mode (docs/cluster-plan.md): what joins nodes into one store beside the engine,
//! which never sees the network.
//!
//! - [`ca`]: the cluster's certificate authority and the nodes' certificates (mutual TLS:
//!   every node is a server to its peers and a client of them, known by its node id).
//! - [`service`]: the shard service, a node's own disks ([`engine::LocalShards`]) served to
//!   its peers over HTTP/2 on a port of its own.
//! - [`client`]: a peer's disks as the engine uses them ([`engine::ShardTransport`]), with
//!   timeouts, so that a slow or dead node fails a request instead of stalling it.
//! - [`membership`]: the CA, the members and the layout generations, kept in the cluster's
//!   metadata store.
//! - [`node`]: this node's identity on disk, its shard placement, and the [`node::Follower`]
//!   that keeps a running engine's placement in step with the records.
//! - [`leader`]: the election that lets one node at a time do the background work.
//! - [`wire`]: the requests both ends speak.

pub mod ca;
pub mod client;
pub mod leader;
pub mod membership;
pub mod node;
pub mod service;
mod tls;
pub mod wire;

pub use ca::{ClusterCa, NodeIdentity};
pub use client::ShardClient;
pub use service::ShardService;

/// What can go wrong setting up cluster parts.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Reading or writing the cluster's records.
    #[error("cluster records: {0}")]
    Store(String),
    /// The members cannot make a layout.
    #[error("layout: {0}")]
    Layout(String),
    /// Making or reading a certificate or key.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A TLS configuration was refused.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Sockets and files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
