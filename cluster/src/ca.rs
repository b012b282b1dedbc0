//! The cluster's certificate authority (made by `s3d cluster init`) and the nodes' identities:
//! a certificate for each node, signed by the CA, naming the node by its id
//! (`<node id>.node.predastore`), good for both ends of a connection. A peer is trusted when
//! its certificate chains to the cluster's CA; a node connecting to a peer checks that the peer
//! is the node it meant to reach.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::ClusterError;

/// The DNS name a node's certificate carries: `<node id>.node.predastore`.
pub fn node_name(node_id: &str) -> String {
    format!("{node_id}.node.predastore")
}

/// Whether `id` can name a node: 1–63 lowercase letters, digits and dashes, not starting or
/// ending with a dash (it becomes a DNS label).
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn cert_err(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Certificate(e.to_string())
}

/// The parameters of a cluster's CA certificate (the same every time for one cluster id, so
/// that a stored CA key signs again).
fn ca_params(cluster_id: &str) -> Result<CertificateParams, ClusterError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Predastore");
    dn.push(
        DnType::CommonName,
        format!("Predastore cluster {cluster_id}"),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2125, 1, 1);
    Ok(p)
}

/// A cluster's certificate authority.
pub struct ClusterCa {
    cluster_id: String,
    cert_pem: String,
    key: KeyPair,
}

/// A node's identity: its certificate and key, and the CA that signed them.
#[derive(Clone)]
pub struct NodeIdentity {
    /// The node's id.
    pub node_id: String,
    /// Its certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// The cluster CA's certificate (PEM): whom it trusts.
    pub ca_pem: String,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A new CA for cluster `cluster_id`.
    pub fn generate(cluster_id: &str) -> Result<ClusterCa, ClusterError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = ca_params(cluster_id)?.self_signed(&key).map_err(cert_err)?;
        Ok(ClusterCa {
            cluster_id: cluster_id.to_string(),
            cert_pem: cert.pem(),
            key,
        })
    }

    /// The CA of cluster `cluster_id` from its stored certificate and key.
    pub fn load(
        cluster_id: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<ClusterCa, ClusterError> {
        Ok(ClusterCa {
            cluster_id: cluster_id.to_string(),
            cert_pem: cert_pem.to_string(),
            key: KeyPair::from_pem(key_pem).map_err(cert_err)?,
        })
    }

    /// The CA's certificate (PEM), which every node trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (PEM): whoever holds it can make nodes.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A new identity for node `node_id`, reachable at `addresses` (IP addresses or names).
    pub fn issue(&self, node_id: &str, addresses: &[String]) -> Result<NodeIdentity, ClusterError> {
        if !valid_node_id(node_id) {
            return Err(ClusterError::Certificate(format!(
                "{node_id:?} is not a node id: 1 to 63 lowercase letters, digits and dashes"
            )));
        }
        let mut names = vec![node_name(node_id)];
        names.extend(addresses.iter().cloned());
        let mut p = CertificateParams::new(names).map_err(cert_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Predastore");
        dn.push(DnType::CommonName, node_id);
        p.distinguished_name = dn;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2125, 1, 1);
        let key = KeyPair::generate().map_err(cert_err)?;
        let issuer = Issuer::new(ca_params(&self.cluster_id)?, &self.key);
        let cert = p.signed_by(&key, &issuer).map_err(cert_err)?;
        Ok(NodeIdentity {
            node_id: node_id.to_string(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.cert_pem.clone(),
        })
    }
}
