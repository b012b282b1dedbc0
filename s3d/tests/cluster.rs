//! Cluster mode end to end: three s3d nodes, each a host of its own (network namespaces on one
//! bridge) with its own data directory and six disks, their metadata on an etcd of the test's
//! own, made a cluster with `s3d cluster init` and `join`. Through the aws cli and boto3: what
//! is written through one node is read bit-exact through another and listed through the third;
//! after `kill -9` of one node the other two still read everything and take new writes, and
//! so they do while a node is cut off (its link down), which reads them once connected again.
//! Needs root, `ip`, Debian's `etcd-server`, the aws cli and boto3.

#[path = "../../tests/support/netns.rs"]
mod netns;

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{md5_file, ok, write_file, AK, SK};

const NODES: usize = 3;
const S3_PORT: u16 = 8443;
const SHARD_PORT: u16 = 8444;

/// etcd on the bridge's address, for every host.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Cluster {
    net: netns::Net,
    etcd_url: String,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    _etcd: Etcd,
}

impl Cluster {
    fn start() -> Cluster {
        let net = netns::Net::new(NODES);
        let dir = tempfile::tempdir().unwrap();
        let gw = net.gateway();
        let (client, peer) = (common::free_port(), common::free_port());
        let etcd_url = format!("http://{gw}:{client}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let etcd = Command::new("etcd")
            .arg("--name=e0")
            .arg(format!("--data-dir={}", dir.path().join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster=e0=http://127.0.0.1:{peer}"))
            .args(["--max-txn-ops=10000", "--max-request-bytes=8388608"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian's etcd-server) runs this test");
        let c = Cluster {
            net,
            etcd_url,
            dir,
            nodes: (0..NODES).map(|_| None).collect(),
            _etcd: Etcd(etcd),
        };
        c.wait_for_etcd(gw, client);
        c.s3d_ok(0, &["cluster", "init"]);
        for i in 0..NODES {
            let out = c.s3d_ok(i, &["cluster", "join"]);
            assert!(out.contains("is a member"), "{out}");
        }
        let status = c.s3d_ok(0, &["cluster", "status"]);
        assert!(status.contains("3 member(s)"), "{status}");
        c
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
                "etcd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    /// `s3d` on host `i`, configured as node `node-i` through its variables.
    fn s3d(&self, i: usize, args: &[&str]) -> Command {
        let addr = self.net.addr(i);
        let mut c = self.net.command(i, env!("CARGO_BIN_EXE_s3d"));
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
            );
        c
    }

    fn s3d_ok(&self, i: usize, args: &[&str]) -> String {
        ok(self.s3d(i, args).output().unwrap())
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }

    /// Starts node `i`'s server and waits until it answers.
    fn serve(&mut self, i: usize) {
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

    /// `kill -9` of node `i`.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoint(&self, i: usize) -> String {
        format!("https://{}:{S3_PORT}", self.net.addr(i))
    }

    fn ca(&self, i: usize) -> PathBuf {
        self.data(i).join("tls").join("cert.pem")
    }

    /// The aws cli against node `i`.
    fn aws(&self, i: usize, args: &[&str]) -> Output {
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

    fn logs(&self) -> String {
        (0..NODES)
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
        for i in 0..NODES {
            self.kill(i);
        }
    }
}

/// boto3 against node `i`: `script` runs with `s3` a client of it.
fn boto3(c: &Cluster, i: usize, script: &str) -> String {
    let prog = format!(
        "import boto3, sys\n\
         s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1',\n\
             aws_access_key_id='{AK}', aws_secret_access_key='{SK}', verify='{}')\n{script}",
        c.endpoint(i),
        c.ca(i).display()
    );
    ok(Command::new("python3")
        .args(["-c", &prog])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap())
}

fn same_file(a: &Path, b: &Path) {
    assert_eq!(
        md5_file(a),
        md5_file(b),
        "{} and {}",
        a.display(),
        b.display()
    );
}

#[test]
fn three_nodes_one_store_write_read_list_and_lose_a_node() {
    let mut c = Cluster::start();
    for i in 0..NODES {
        c.serve(i);
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ten-mib");
    write_file(&src, 7, 10 << 20);
    // Write through node 0, read through node 1, list through node 2.
    ok(c.aws(0, &["s3", "mb", "s3://photos"]));
    ok(c.aws(
        0,
        &[
            "s3",
            "cp",
            src.to_str().unwrap(),
            "s3://photos/2026/ten-mib",
        ],
    ));
    let back = work.path().join("back-1");
    let got = c.aws(
        1,
        &[
            "s3",
            "cp",
            "s3://photos/2026/ten-mib",
            back.to_str().unwrap(),
        ],
    );
    assert!(
        got.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&got.stderr),
        c.logs()
    );
    same_file(&src, &back);
    let listed = ok(c.aws(2, &["s3", "ls", "--recursive", "s3://photos"]));
    assert!(
        listed.contains("2026/ten-mib") && listed.contains("10485760"),
        "{listed}"
    );
    // boto3: put through node 2, get through node 0.
    let out = boto3(
        &c,
        2,
        "s3.put_object(Bucket='photos', Key='small.txt', Body=b'hello from node 2')\nprint('ok')",
    );
    assert!(out.contains("ok"));
    let out = boto3(
        &c,
        0,
        "print(s3.get_object(Bucket='photos', Key='small.txt')['Body'].read().decode())",
    );
    assert_eq!(out.trim(), "hello from node 2");
    // Node 2 is killed: nodes 0 and 1 read everything from the shards left, and take writes.
    c.kill(2);
    let back = work.path().join("back-0");
    ok(c.aws(
        0,
        &[
            "s3",
            "cp",
            "s3://photos/2026/ten-mib",
            back.to_str().unwrap(),
        ],
    ));
    same_file(&src, &back);
    let more = work.path().join("more");
    write_file(&more, 8, 5 << 20);
    let put = c.aws(
        1,
        &[
            "s3",
            "cp",
            more.to_str().unwrap(),
            "s3://photos/while-2-is-down",
        ],
    );
    assert!(
        put.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&put.stderr),
        c.logs()
    );
    let back = work.path().join("back-more");
    ok(c.aws(
        0,
        &[
            "s3",
            "cp",
            "s3://photos/while-2-is-down",
            back.to_str().unwrap(),
        ],
    ));
    same_file(&more, &back);
    // Node 2 back: it reads what was written while it was away.
    c.serve(2);
    let back = work.path().join("back-2");
    ok(c.aws(
        2,
        &[
            "s3",
            "cp",
            "s3://photos/while-2-is-down",
            back.to_str().unwrap(),
        ],
    ));
    same_file(&more, &back);
    // Node 1 cut off (its link down, connections left hanging): node 0 still reads and takes a
    // write; node 1, connected again, reads that write.
    c.net.cut(1);
    let back = work.path().join("back-cut");
    let src_key = "s3://photos/2026/ten-mib";
    let got = c.aws(0, &["s3", "cp", src_key, back.to_str().unwrap()]);
    assert!(
        got.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&got.stderr),
        c.logs()
    );
    same_file(&src, &back);
    let during = work.path().join("during-cut");
    write_file(&during, 9, 3 << 20);
    let key = "s3://photos/while-1-is-cut";
    let put = c.aws(0, &["s3", "cp", during.to_str().unwrap(), key]);
    assert!(
        put.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&put.stderr),
        c.logs()
    );
    c.net.reconnect(1);
    let back = work.path().join("back-after-cut");
    let got = c.aws(1, &["s3", "cp", key, back.to_str().unwrap()]);
    assert!(
        got.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&got.stderr),
        c.logs()
    );
    same_file(&during, &back);
}
