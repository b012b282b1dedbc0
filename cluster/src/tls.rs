//! TLS of the shard service: TLS 1.3 only, each end proving itself with a certificate from the
//! cluster's CA (mutual TLS), on ring like the rest of the project.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::ca::NodeIdentity;
use crate::ClusterError;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_err(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Certificate(format!("{what}: {e}"))
}

/// The node's certificate chain and key, and the roots it trusts (the cluster CA).
fn parts(
    id: &NodeIdentity,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        RootCertStore,
    ),
    ClusterError,
> {
    let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err("node certificate", e))?;
    let key =
        PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).map_err(|e| pem_err("node key", e))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(id.ca_pem.as_bytes()) {
        roots
            .add(ca.map_err(|e| pem_err("cluster CA", e))?)
            .map_err(|e| pem_err("cluster CA", e))?;
    }
    Ok((chain, key, roots))
}

/// The server end: peers must present a certificate from the cluster CA.
pub(crate) fn server_config(id: &NodeIdentity) -> Result<rustls::ServerConfig, ClusterError> {
    let (chain, key, roots) = parts(id)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| pem_err("client verifier", e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// The client end: the peer must present a certificate from the cluster CA for the node
/// it is meant to be; this node presents its own.
pub(crate) fn client_config(id: &NodeIdentity) -> Result<rustls::ClientConfig, ClusterError> {
    let (chain, key, roots) = parts(id)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}
