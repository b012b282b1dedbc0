//! The metadata store on a real three-member etcd cluster, each member a host of its own
//! (network namespaces on one bridge): what is committed through any member is there through
//! every other, also after a member is killed and restarted and after one is cut off and
//! reconnected. Needs root, `ip` and Debian's `etcd-server`.

#[path = "../../tests/support/netns.rs"]
mod netns;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use engine::kv::etcd::EtcdStore;
use engine::kv::{Read, Table};

/// Three etcd members, member `i` on host `i`.
struct Cluster {
    members: Vec<Option<Child>>,
    dir: tempfile::TempDir,
    net: netns::Net,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let mut c = Cluster {
            members: (0..n).map(|_| None).collect(),
            dir: tempfile::tempdir().unwrap(),
            net: netns::Net::new(n),
        };
        for i in 0..n {
            c.start_member(i);
        }
        c
    }

    fn client_url(&self, i: usize) -> String {
        format!("http://{}:2379", self.net.addr(i))
    }

    /// Starts member `i` (again: its data directory says it is a member already).
    fn start_member(&mut self, i: usize) {
        let n = self.members.len();
        let peer = |j: usize| format!("http://{}:2380", self.net.addr(j));
        let cluster: Vec<String> = (0..n).map(|j| format!("e{j}={}", peer(j))).collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("e{i}.log")))
            .unwrap();
        let child = self
            .net
            .command(i, "etcd")
            .arg(format!("--name=e{i}"))
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join(format!("e{i}")).display()
            ))
            .arg(format!("--listen-client-urls={}", self.client_url(i)))
            .arg(format!("--advertise-client-urls={}", self.client_url(i)))
            .arg(format!("--listen-peer-urls={}", peer(i)))
            .arg(format!("--initial-advertise-peer-urls={}", peer(i)))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .arg("--initial-cluster-state=new")
            .arg(format!("--initial-cluster-token=pt{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian's etcd-server) runs this test");
        self.members[i] = Some(child);
    }

    /// `kill -9` of member `i`.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A store talking to the members `which`.
    fn store(&self, which: &[usize]) -> EtcdStore {
        let eps: Vec<String> = which.iter().map(|i| self.client_url(*i)).collect();
        EtcdStore::connect(&eps, b"/predastore/cluster-test/").unwrap()
    }

    fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                let p = self.dir.path().join(format!("e{i}.log"));
                let t = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(5).collect();
                format!("e{i}: {}", tail.join(" | "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Runs `f` until it succeeds (a client retries while a member is gone), for 60 s at most.
fn retry<T>(c: &Cluster, what: &str, mut f: impl FnMut() -> engine::Result<T>) -> T {
    let t = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => {
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "{what}: {e}\n{}",
                    c.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn put_keys(c: &Cluster, s: &EtcdStore, range: std::ops::Range<u32>) {
    for i in range {
        let k = format!("k{i:05}");
        retry(c, "a put", || {
            s.write(|w| w.put(Table::Objects, k.as_bytes(), k.as_bytes()))
        });
    }
}

/// Every key `k00000..k{n}` with its value, through a store that talks to `which` only.
fn assert_all(c: &Cluster, which: &[usize], n: u32) {
    let s = retry(c, "a connection", || Ok(c.store(which)));
    let got: Vec<(Vec<u8>, Vec<u8>)> = retry(c, "a scan", || {
        let r = s.read()?;
        let v: engine::Result<Vec<_>> = r
            .all(Table::Objects)?
            .map(|p| p.map(|(k, v)| (k.into_owned(), v.into_owned())))
            .collect();
        let v = v?;
        if v.len() as u32 != n {
            // A restarted member may still be catching up.
            return Err(engine::Error::Decode(format!("{} keys of {n}", v.len())));
        }
        Ok(v)
    });
    for (i, (k, v)) in got.iter().enumerate() {
        assert_eq!(k, format!("k{i:05}").as_bytes(), "through {which:?}");
        assert_eq!(k, v);
    }
}

#[test]
fn what_is_committed_survives_a_killed_member_and_a_cut_off_one() {
    let mut c = Cluster::start(3);
    let all = retry(&c, "a connection", || Ok(c.store(&[0, 1, 2])));
    put_keys(&c, &all, 0..100);
    for m in 0..3 {
        assert_all(&c, &[m], 100);
    }
    // A member killed: the other two are a quorum and go on.
    c.kill(0);
    put_keys(&c, &all, 100..200);
    assert_all(&c, &[1, 2], 200);
    // Back, it catches up.
    c.start_member(0);
    assert_all(&c, &[0], 200);
    // A member cut off: the others go on; reconnected, it catches up.
    c.net.cut(1);
    put_keys(&c, &all, 200..250);
    assert_all(&c, &[0, 2], 250);
    c.net.reconnect(1);
    assert_all(&c, &[1], 250);
}
