//! Cluster mode's test harness: s3d nodes, each a host of its own (network namespaces on one
//! bridge, `netns.rs`, which the including test declares as `netns`) with its own data
//! directory and six disks, their metadata on a three-member etcd cluster listening on the
//! bridge's address, made a cluster with `s3d cluster init` and `join`; the aws cli against
//! any node. Everything started is stopped when dropped. Needs root, `ip`, Debian's
//! `etcd-server` and the aws cli.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::netns;

/// The keys every node is given.
pub const AK: &str = "PSTESTACCESSKEY00001";
/// Their secret.
pub const SK: &str = "test-secret-key-0123456789abcdefghijklmn";

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nodes of the cluster.
pub const NODES: usize = 3;
const S3_PORT: u16 = 8443;
const SHARD_PORT: u16 = 8444;

/// Members of the etcd cluster under the nodes.
pub const ETCD_MEMBERS: usize = 3;

/// An etcd member on the bridge's address (its peers talk over loopback).
struct EtcdMember(Option<Child>);

impl Drop for EtcdMember {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The cluster.
pub struct Cluster {
    /// Its hosts.
    pub net: netns::Net,
    /// etcd's client URLs, comma-separated (as `PREDASTORE_ETCD` takes them).
    pub etcd_url: String,
    /// Where the data directories and logs are.
    pub dir: tempfile::TempDir,
    s3d: PathBuf,
    nodes: Vec<Option<Child>>,
    etcd: Vec<EtcdMember>,
    /// Variables every node's `s3d` gets besides the harness's own.
    pub env: Vec<(String, String)>,
}

impl Cluster {
    /// etcd, and the nodes initialised and joined (not serving yet); `s3d` is the binary.
    pub fn start(s3d: PathBuf) -> Cluster {
        Cluster::start_with(s3d, NODES, NODES)
    }

    /// [`Cluster::start`] with `hosts` hosts, of which the first `joined` join at once (the
    /// others are machines standing by: `s3d cluster join` on them makes them members).
    pub fn start_with(s3d: PathBuf, hosts: usize, joined: usize) -> Cluster {
        let net = netns::Net::new(hosts);
        let dir = tempfile::tempdir().unwrap();
        let gw = net.gateway();
        let ports: Vec<(u16, u16)> = (0..ETCD_MEMBERS)
            .map(|_| (free_port(), free_port()))
            .collect();
        let urls: Vec<String> = ports
            .iter()
            .map(|(client, _)| format!("http://{gw}:{client}"))
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(m, (_, peer))| format!("e{m}=http://127.0.0.1:{peer}"))
            .collect();
        let mut etcd = Vec::new();
        for (m, (_, peer)) in ports.iter().enumerate() {
            let log = std::fs::File::create(dir.path().join(format!("etcd-{m}.log"))).unwrap();
            let child = Command::new("etcd")
                .arg(format!("--name=e{m}"))
                .arg(format!(
                    "--data-dir={}",
                    dir.path().join(format!("etcd-{m}")).display()
                ))
                .arg(format!("--listen-client-urls={}", urls[m]))
                .arg(format!("--advertise-client-urls={}", urls[m]))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .args([
                    "--initial-cluster-state=new",
                    "--initial-cluster-token=predastore-test",
                ])
                .args(["--max-txn-ops=10000", "--max-request-bytes=8388608"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("etcd (Debian's etcd-server) runs this test");
            etcd.push(EtcdMember(Some(child)));
        }
        let c = Cluster {
            net,
            etcd_url: urls.join(","),
            dir,
            s3d,
            nodes: (0..hosts).map(|_| None).collect(),
            env: Vec::new(),
            etcd,
        };
        for (client, _) in &ports {
            c.wait_for_etcd(gw, *client);
        }
        c.s3d_ok(0, &["cluster", "init"]);
        for i in 0..joined {
            let out = c.s3d_ok(i, &["cluster", "join"]);
            assert!(out.contains("is a member"), "{out}");
        }
        let status = c.s3d_ok(0, &["cluster", "status"]);
        assert!(status.contains(&format!("{joined} member(s)")), "{status}");
        c
    }

    /// [`Cluster::start_with`], with the `joined` nodes serving.
    pub fn serving(s3d: PathBuf, hosts: usize, joined: usize) -> Cluster {
        let mut c = Cluster::start_with(s3d, hosts, joined);
        for i in 0..joined {
            c.serve(i);
        }
        c
    }

    /// Waits until the leader's rebalance has moved every chunk to layout generation
    /// `generation` (`s3d cluster status` through node `i`); returns that status.
    pub fn wait_balanced(&self, i: usize, generation: u32) -> String {
        let t = Instant::now();
        loop {
            let status = self.s3d_ok(i, &["cluster", "status"]);
            if status.contains(&format!("layout: generation {generation},"))
                && status.contains("rebalance: 0 chunk(s) on older generations")
            {
                return status;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "not rebalanced to generation {generation}: {status}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until etcd says it is healthy.
    fn wait_for_etcd(&self, ip: std::net::Ipv4Addr, port: u16) {
        use std::io::{Read, Write};
        let t = Instant::now();
        loop {
            let mut answer = String::new();
            let healthy = std::net::TcpStream::connect((ip, port)).is_ok_and(|mut s| {
                s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.contains("\"health\":\"true\"")
            });
            if healthy {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "etcd on port {port} did not start: {}",
                std::fs::read_to_string(self.dir.path().join("etcd-0.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    /// `s3d` on host `i`, configured as node `node-i` through its variables.
    pub fn s3d(&self, i: usize, args: &[&str]) -> Command {
        let addr = self.net.addr(i);
        let mut c = self.net.command(i, self.s3d.to_str().unwrap_or_default());
        c.args(args)
            .env("PREDASTORE_DATA_DIR", self.data(i))
            .env("PREDASTORE_HOST", addr.to_string())
            .env("PREDASTORE_PORT", S3_PORT.to_string())
            .env("PREDASTORE_TLS_NAMES", addr.to_string())
            .env("PREDASTORE_ACCESS_KEY", AK)
            .env("PREDASTORE_SECRET_KEY", SK)
            .env("PREDASTORE_CLUSTER_ID", "test")
            .env("PREDASTORE_NODE_ID", format!("node-{i}"))
            .env("PREDASTORE_ETCD", &self.etcd_url)
            .env("PREDASTORE_CLUSTER_LISTEN", format!("{addr}:{SHARD_PORT}"))
            .env(
                "PREDASTORE_CLUSTER_ADVERTISE",
                format!("{addr}:{SHARD_PORT}"),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn s3d_ok(&self, i: usize, args: &[&str]) -> String {
        ok(self.s3d(i, args).output().unwrap())
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }

    /// Starts node `i`'s server and waits until it answers.
    pub fn serve(&mut self, i: usize) {
        let log = std::fs::File::create(self.log(i)).unwrap();
        let child = self
            .s3d(i, &[])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect((self.net.addr(i), S3_PORT)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "node {i} did not start: {}",
                std::fs::read_to_string(self.log(i)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9` of etcd member `m`.
    pub fn kill_etcd(&mut self, m: usize) {
        if let Some(mut c) = self.etcd[m].0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops node `i` as an operator would (SIGTERM: in-flight requests finish) and waits.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// `kill -9` of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("https://{}:{S3_PORT}", self.net.addr(i))
    }

    pub fn ca(&self, i: usize) -> PathBuf {
        self.data(i).join("tls").join("cert.pem")
    }

    /// The aws cli against node `i`.
    pub fn aws(&self, i: usize, args: &[&str]) -> Output {
        Command::new("aws")
            .args(["--endpoint-url", &self.endpoint(i), "--region", "us-east-1"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_CA_BUNDLE", self.ca(i))
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .expect("run aws (is the aws cli installed?)")
    }

    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let t = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(8).collect();
                format!("node-{i}: {}", tail.join(" | "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
