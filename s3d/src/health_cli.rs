//! `s3d health`: asks the server this configuration describes (`/-/health`, or `/-/ready`)
//! whether it answers, for container health checks — no curl in an image made `FROM scratch`.
//!
//! The probe speaks TLS to the loopback address without checking the certificate (it checks
//! that the process answers; it sends no credentials and reads nothing but a status line).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the whole probe may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts any certificate; signatures are still checked with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where to probe: the listen address, with a wildcard address replaced by loopback.
fn probe_address(host: &str, port: u16) -> String {
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
) -> std::io::Result<String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    Ok(line.lines().next().unwrap_or_default().to_string())
}

/// The status line the server answered with, or why there was none.
async fn probe(addr: &str, tls: bool, path: &str) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    if !tls {
        return exchange(tcp, path).await.map_err(|e| e.to_string());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    exchange(stream, path).await.map_err(|e| e.to_string())
}

/// Runs the probe: success when the server answers 200.
pub async fn run(host: &str, port: u16, tls: bool, ready: bool) -> ExitCode {
    let addr = probe_address(host, port);
    let path = if ready { "/-/ready" } else { "/-/health" };
    match tokio::time::timeout(TIMEOUT, probe(&addr, tls, path)).await {
        Ok(Ok(line)) if line.split_whitespace().nth(1) == Some("200") => {
            println!("{addr}{path}: {line}");
            ExitCode::SUCCESS
        }
        Ok(Ok(line)) => {
            eprintln!("{addr}{path}: {line}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{addr}{path}: no answer within {TIMEOUT:?}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_loopback() {
        assert_eq!(probe_address("0.0.0.0", 8443), "127.0.0.1:8443");
        assert_eq!(probe_address("::", 9000), "[::1]:9000");
        assert_eq!(probe_address("10.0.0.5", 1), "10.0.0.5:1");
        assert_eq!(probe_address("localhost", 2), "localhost:2");
    }
}
