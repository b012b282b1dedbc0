//! A mount on a node of a cluster: three s3d nodes in network namespaces (the harness of
//! `tests/support/s3d_cluster.rs`), and mountd on node 2's data directory beside its s3d. What
//! the aws cli writes through node 0 appears on the mount within the attribute-cache time, and
//! what is written on the mount is read through node 1 — the same tree through every door.
//! Needs root, /dev/fuse, `ip`, Debian's `etcd-server` and the aws cli.

#[path = "../../tests/support/netns.rs"]
mod netns;
#[path = "../../tests/support/s3d_cluster.rs"]
mod s3d_cluster;

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use s3d_cluster::{ok, Cluster};

/// mountd on node 2's data directory, unmounted and stopped on drop.
struct ClusterMount {
    child: std::process::Child,
    mnt: PathBuf,
}

impl Drop for ClusterMount {
    fn drop(&mut self) {
        common::lazy_unmount(&self.mnt);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_mount_on_one_node_sees_what_another_wrote_and_the_others_what_it_wrote() {
    let s3d = PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d");
    assert!(
        s3d.exists(),
        "s3d is built beside mountd: {}",
        s3d.display()
    );
    let mut c = Cluster::start(s3d);
    // Writes must commit within 4 s of storing their data, and each node sweeps its disks
    // every 2 s: a file kept open longer must have its stored chunks pinned by the mount.
    // (4 s, not less: with 4 KiB chunks a file of a few MiB is thousands of chunks, which a
    // busy machine may take seconds to store and pin.)
    c.env.push((LIMIT_VAR.into(), LIMIT_SECS.into()));
    for i in 0..s3d_cluster::NODES {
        c.serve(i);
    }
    ok(c.aws(0, &["s3", "mb", "s3://shared"]));
    let mnt = c.dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let log = c.dir.path().join("mountd.log");
    let child = Command::new(env!("CARGO_BIN_EXE_mountd"))
        .arg("--data-dir")
        .arg(c.data(2))
        .args(["--attr-timeout", "1"])
        .env("PREDASTORE_CLUSTER_ID", "test")
        .env("PREDASTORE_NODE_ID", "node-2")
        .env("PREDASTORE_ETCD", &c.etcd_url)
        .env(LIMIT_VAR, LIMIT_SECS)
        // 4 KiB chunks: the files below have more chunks than one metadata transaction
        // counts (engine::REFS_PER_COMMIT), so their pins and commits go in pieces.
        .env("PREDASTORE_CHUNK_SIZE", "4KiB")
        .arg(&mnt)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let m = ClusterMount {
        child,
        mnt: mnt.clone(),
    };
    common::wait_mounted(&m.mnt, &log);
    // Written through node 0: on the mount (node 2) within the attribute-cache time.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("from-node-0");
    let data = engine::testing::pseudo_random(11, 6 << 20);
    std::fs::write(&src, &data).unwrap();
    ok(c.aws(
        0,
        &["s3", "cp", src.to_str().unwrap(), "s3://shared/from-node-0"],
    ));
    let on_mount = mnt.join("shared").join("from-node-0");
    let t = Instant::now();
    while !on_mount.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "not on the mount: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::fs::read(&on_mount).unwrap() == data,
        "the mount read other bytes"
    );
    // Written on the mount (1,280 chunks): read through node 1.
    let mine = engine::testing::pseudo_random(12, 5 << 20);
    assert!(mine.len() / 4096 > engine::REFS_PER_COMMIT);
    std::fs::write(mnt.join("shared").join("from-the-mount"), &mine).unwrap();
    let back = work.path().join("back");
    ok(c.aws(
        1,
        &[
            "s3",
            "cp",
            "s3://shared/from-the-mount",
            back.to_str().unwrap(),
        ],
    ));
    assert!(
        std::fs::read(&back).unwrap() == mine,
        "node 1 read other bytes"
    );
    let listed = ok(c.aws(0, &["s3", "ls", "s3://shared/"]));
    assert!(
        listed.contains("from-the-mount") && listed.contains("from-node-0"),
        "{listed}"
    );
    // A file kept open for writing three times the write limit, through the nodes' orphan
    // sweeps: its first 1,280 chunks, stored at once, are pinned by the mount (in pieces),
    // and the whole file (1,408 chunks) commits at fsync and reads back through node 1.
    let long = engine::testing::pseudo_random(13, (5 << 20) + (512 << 10));
    let path = mnt.join("shared").join("kept-open");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&long[..5 << 20]).unwrap();
    std::thread::sleep(Duration::from_secs(12));
    f.write_all(&long[5 << 20..]).unwrap();
    f.sync_all()
        .expect("a file kept open beyond the write limit commits");
    drop(f);
    ok(c.aws(
        1,
        &["s3", "cp", "s3://shared/kept-open", back.to_str().unwrap()],
    ));
    assert!(
        std::fs::read(&back).unwrap() == long,
        "node 1 read other bytes of the file kept open"
    );
    let mountd_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !mountd_log.contains("not pinned"),
        "pinning failed: {mountd_log}"
    );
    drop(m);
}

/// The write limit's variable, for the nodes and the mount, and its value in this test.
const LIMIT_VAR: &str = "PREDASTORE_CLUSTER_WRITE_LIMIT_SECS";
const LIMIT_SECS: &str = "4";
