//! TLS: the configured certificate, or a self-signed one made on first start and reused after.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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

/// Names of the generated certificate when none are configured: the loopback names and the
/// virtual-hosted buckets under `s3.localhost`.
pub const DEFAULT_NAMES: [&str; 4] = [
    "localhost",
    // Virtual-hosted-style buckets (a wildcard needs two labels below it).
    "*.s3.localhost",
    "127.0.0.1",
    "::1",
];

/// Makes a self-signed certificate for `names` unless one for exactly those names exists;
/// returns (cert, key, created). The names are kept beside it (`tls/names`), so changing
/// `server.tls.names` makes a new certificate at the next start. A store from before the
/// names were configurable has no such file: its certificate is for [`DEFAULT_NAMES`].
pub fn ensure_self_signed(
    data_dir: &Path,
    names: &[String],
) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    if names.is_empty() {
        return Err(TlsError::Setup(
            "server.tls.names: the generated certificate needs at least one name".into(),
        ));
    }
    let (cert, key) = generated_paths(data_dir);
    let names_path = cert.with_file_name("names");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    if cert.exists() && key.exists() {
        let recorded = match std::fs::read_to_string(&names_path) {
            Ok(text) => text.lines().map(str::to_string).collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                DEFAULT_NAMES.iter().map(|n| n.to_string()).collect()
            }
            Err(e) => return Err(io(&names_path)(e)),
        };
        if recorded == names {
            return Ok((cert, key, false));
        }
    }
    let dir = cert.parent().unwrap_or(data_dir);
    engine::private::create_dir_all(dir).map_err(io(dir))?;
    let ck = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Setup(format!("certificate for {names:?}: {e}")))?;
    write_private(&key, ck.signing_key.serialize_pem().as_bytes()).map_err(io(&key))?;
    // Public, but inside the private data dir like everything else there.
    write_private(&cert, ck.cert.pem().as_bytes()).map_err(io(&cert))?;
    write_private(&names_path, (names.join("\n") + "\n").as_bytes()).map_err(io(&names_path))?;
    Ok((cert, key, true))
}

/// The server's TLS configuration, read again from its files on request (SIGHUP): connections
/// open keep the configuration they started with, new ones get the new certificate.
pub struct Reloadable {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl Reloadable {
    /// Reads the certificate and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Reloadable, TlsError> {
        Ok(Reloadable {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(server_config(cert, key)?),
        })
    }

    /// An acceptor with the configuration of now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let cfg = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(cfg)
    }

    /// Reads the files again; on an error the configuration of before stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = server_config(&self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = cfg;
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
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

/// Builds the rustls server configuration: TLS 1.2 and 1.3 only, and of ring's suites only
/// those with forward secrecy and an AEAD (ECDHE with AES-GCM or ChaCha20-Poly1305; rustls
/// has no other). ALPN offers HTTP/1.1 only: S3 clients speak it, and
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generated_certificate_follows_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let default = names(&DEFAULT_NAMES);
        let (cert, key, created) = ensure_self_signed(dir.path(), &default).unwrap();
        assert!(created);
        let first = std::fs::read(&cert).unwrap();
        assert!(!ensure_self_signed(dir.path(), &default).unwrap().2);
        // A store from before the names file: its certificate is the default one, kept.
        std::fs::remove_file(cert.with_file_name("names")).unwrap();
        assert!(!ensure_self_signed(dir.path(), &default).unwrap().2);
        assert_eq!(std::fs::read(&cert).unwrap(), first);
        let other = names(&["s3.example.internal", "10.1.2.3"]);
        assert!(ensure_self_signed(dir.path(), &other).unwrap().2);
        assert_ne!(std::fs::read(&cert).unwrap(), first);
        assert!(server_config(&cert, &key).is_ok());
        assert!(ensure_self_signed(dir.path(), &[]).is_err());
    }

    #[test]
    fn only_tls12_and_13_with_forward_secret_aead_suites() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = ensure_self_signed(dir.path(), &names(&DEFAULT_NAMES)).unwrap();
        let cfg = server_config(&cert, &key).unwrap();
        let suites = cfg.crypto_provider().cipher_suites.clone();
        assert!(!suites.is_empty());
        for s in suites {
            let name = format!("{:?}", s.suite());
            let versions = s.version().version;
            assert!(
                versions == rustls::ProtocolVersion::TLSv1_3
                    || versions == rustls::ProtocolVersion::TLSv1_2,
                "{name}"
            );
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name} has no forward secrecy"
            );
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name} is not an AEAD"
            );
        }
    }

    #[test]
    fn reload_keeps_the_old_configuration_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = ensure_self_signed(dir.path(), &names(&DEFAULT_NAMES)).unwrap();
        let r = Reloadable::load(&cert, &key).unwrap();
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(r.reload().is_err());
        let _still_serving = r.acceptor();
    }
}
