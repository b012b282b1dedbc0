//! An etcd server of a test's own (Debian's `etcd-server`): a new data directory, free ports on
//! 127.0.0.1; killed and removed when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A running etcd.
pub struct Etcd {
    child: std::process::Child,
    /// Its client URL.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether etcd at 127.0.0.1:`port` says it is healthy.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut out = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut out).is_ok()
        && out.contains("\"health\":\"true\"")
}

/// The limits a Predastore deployment gives etcd (docs/cluster-plan.md): transactions of many
/// operations (a put's chunk references), requests of up to 8 MiB.
pub const DEPLOYMENT_LIMITS: &[&str] = &["--max-txn-ops=10000", "--max-request-bytes=8388608"];

impl Etcd {
    /// Starts one with `flags` besides its own and waits until it answers.
    pub fn start(flags: &[&str]) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = std::process::Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .args(flags)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian's etcd-server) runs this test");
        let etcd = Etcd {
            child,
            endpoint,
            dir,
        };
        let t = Instant::now();
        while !healthy(client) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "etcd did not answer: {}",
                std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
