//! TLS: the configured certificate, or a self-signed one made on first start and reused after.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The PEM contents are invalid.
    #[error("{path}: {msg}")]
    Pem {
        /// File.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Certificate generation or rustls setup failed.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Paths of the generated certificate and key inside the data dir.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let d = data_dir.join("tls");
    (d.join("cert.pem"), d.join("key.pem"))
}

/// Makes a self-signed certificate for localhost unless one exists; returns (cert, key, created).
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let (cert, key) = generated_paths(data_dir);
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    let dir = cert.parent().unwrap_or(data_dir);
    engine::private::create_dir_all(dir).map_err(io(dir))?;
    let names = vec![
        "localhost".to_string(),
        // Virtual-hosted-style buckets (a wildcard needs two labels below it).
        "*.s3.localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(e.to_string()))?;
    write_private(&key, ck.signing_key.serialize_pem().as_bytes()).map_err(io(&key))?;
    // Public, but inside the private data dir like everything else there.
    write_private(&cert, ck.cert.pem().as_bytes()).map_err(io(&cert))?;
    Ok((cert, key, true))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Builds the rustls server configuration. ALPN offers HTTP/1.1 only: S3 clients speak it, and
/// hyper's HTTP/2 answers an early error (e.g. a refused `Expect: 100-continue` upload) with a
/// stream reset that curl reports as a framing error.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Pem {
            path: cert.to_path_buf(),
            msg: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_path_buf(),
            msg: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_path_buf(),
            msg: "no certificate found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
        path: key.to_path_buf(),
        msg: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
