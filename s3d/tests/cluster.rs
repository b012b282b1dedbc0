//! Cluster mode end to end: s3d nodes (three, four or six), each a host of its own (network
//! namespaces on one bridge) with its own data directory and six disks, their metadata on a
//! three-member etcd cluster of the test's own, made a cluster with `s3d cluster init` and
//! `join`. Through the aws cli and boto3: what is written through one node is read bit-exact
//! through another and listed through the third; after `kill -9` of one node the other two
//! still read everything and take new writes, and so they do while a node is cut off (its
//! link down), which reads them once connected again. Faults under a stream of writes (an etcd
//! member killed, every node restarted in turn), a lost disk, a replaced node, a joining and a
//! removed one, six nodes losing two: nothing acknowledged is lost, every object reads back
//! bit-exact; a slow node is read around, not waited for. Needs root, `ip`, Debian's `etcd-server`, the aws cli and boto3.

#[path = "../../tests/support/netns.rs"]
mod netns;
#[path = "../../tests/support/s3d_cluster.rs"]
mod s3d_cluster;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{md5_file, write_file};
use s3d_cluster::{ok, Cluster, AK, NODES, SK};

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

/// Uploads `file` as `key` through node `i`.
fn put(c: &Cluster, i: usize, file: &Path, key: &str) {
    let out = c.aws(i, &["s3", "cp", file.to_str().unwrap(), key]);
    assert!(
        out.status.success(),
        "put through node {i}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
}

/// A file of `len` bytes made from `seed` under `work`, put through node `i` as
/// `s3://<bucket>/obj-<seed>`: the file and the key.
fn stored(
    c: &Cluster,
    i: usize,
    work: &Path,
    bucket: &str,
    seed: u64,
    len: usize,
) -> (PathBuf, String) {
    let file = work.join(format!("obj-{seed}"));
    write_file(&file, seed, len);
    let key = format!("s3://{bucket}/obj-{seed}");
    put(c, i, &file, &key);
    (file, key)
}

/// Downloads `key` through node `i` and checks it is `file`, byte for byte.
fn read_back(c: &Cluster, i: usize, key: &str, file: &Path) {
    let back = file.with_extension(format!("back-{i}"));
    let out = c.aws(i, &["s3", "cp", key, back.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "get through node {i}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    assert_eq!(md5_file(file), md5_file(&back), "{key} through node {i}");
    let _ = std::fs::remove_file(back);
}

#[test]
fn three_nodes_one_store_write_read_list_and_lose_a_node() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), NODES, NODES);
    let work = tempfile::tempdir().unwrap();
    let (src, big) = (work.path().join("ten-mib"), "s3://photos/2026/ten-mib");
    write_file(&src, 7, 10 << 20);
    // Write through node 0, read through node 1, list through node 2.
    ok(c.aws(0, &["s3", "mb", "s3://photos"]));
    put(&c, 0, &src, big);
    read_back(&c, 1, big, &src);
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
    read_back(&c, 0, big, &src);
    let (more, down) = (work.path().join("more"), "s3://photos/while-2-is-down");
    write_file(&more, 8, 5 << 20);
    put(&c, 1, &more, down);
    read_back(&c, 0, down, &more);
    // Node 2 back: it reads what was written while it was away.
    c.serve(2);
    read_back(&c, 2, down, &more);
    // Node 1 cut off (its link down, connections left hanging): node 0 still reads and takes a
    // write; node 1, connected again, reads that write.
    c.net.cut(1);
    read_back(&c, 0, big, &src);
    let (during, cut) = (work.path().join("during-cut"), "s3://photos/while-1-is-cut");
    write_file(&during, 9, 3 << 20);
    put(&c, 0, &during, cut);
    c.net.reconnect(1);
    read_back(&c, 1, cut, &during);
}

/// The read deadline of a node's requests to another (`Timeouts::default().read`): a read
/// that waited for a node slower than this would take at least as long.
const READ_DEADLINE_SECS: f64 = 5.0;

#[test]
fn a_slow_node_does_not_stall_reads() {
    let c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), NODES, NODES);
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(0, &["s3", "mb", "s3://slow"]));
    // Six 4 MiB chunks: node 2 holds two of the six shards of each, data shards of nearly all.
    let (file, _) = stored(&c, 0, work.path(), "slow", 1, 24 << 20);
    // Node 2 answers, at 100 kB/s: a 1 MiB shard from it would take ten seconds.
    c.net.throttle(2, "800kbit");
    let out = boto3(
        &c,
        0,
        "import hashlib, time\n\
         t = time.monotonic()\n\
         body = s3.get_object(Bucket='slow', Key='obj-1')['Body'].read()\n\
         print(time.monotonic() - t, hashlib.md5(body).hexdigest())",
    );
    c.net.unthrottle(2);
    let (secs, md5) = out.trim().split_once(' ').expect("seconds and md5");
    assert_eq!(md5, md5_file(&file), "read around a slow node");
    let secs: f64 = secs.parse().unwrap();
    eprintln!("read around the slow node in {secs:.2} s");
    // Liveness, not speed: every chunk was read from the shards of nodes 0 and 1 without
    // waiting for node 2's deadline (the time is far below it; it only must not reach it).
    assert!(
        secs < READ_DEADLINE_SECS * 0.8,
        "24 MiB read in {secs:.2} s: the read waited for the slow node\n{}",
        c.logs()
    );
    let log = std::fs::read_to_string(c.log(0)).unwrap();
    assert!(log.contains("reading other shards"), "{log}");
    // The slow node, quick again, serves reads itself.
    read_back(&c, 2, "s3://slow/obj-1", &file);
}

#[test]
fn a_replaced_node_is_rebuilt_by_heal_and_then_carries_its_shards() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), NODES, NODES);
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(0, &["s3", "mb", "s3://kept"]));
    let (src, key) = stored(&c, 0, work.path(), "kept", 21, 12 << 20);
    let key = key.as_str();
    // Node 2 is lost with its disks; a new machine takes its name: joined again, empty.
    c.kill(2);
    std::fs::remove_dir_all(c.data(2)).unwrap();
    let out = c.s3d_ok(2, &["cluster", "join"]);
    assert!(out.contains("is a member"), "{out}");
    c.serve(2);
    let healed = c.s3d_ok(2, &["heal"]);
    assert!(
        healed.contains(" repaired;") && !healed.contains(" 0 repaired"),
        "{healed}"
    );
    // Nothing is missing now (the scrub a server starts with may have repaired some first), and
    // every one of the 18 shards (3 chunks of 4 MiB, 6 shards each) reads back verified.
    let again = c.s3d_ok(2, &["heal"]);
    assert!(
        again.contains(" 0 missing, 0 corrupt, 0 repaired"),
        "{again}"
    );
    let scrub = c.s3d_ok(2, &["scrub"]);
    assert!(
        scrub.contains("18 shards checked; 0 missing, 0 corrupt")
            && scrub.contains("18.0 MiB read"),
        "{scrub}"
    );
    // Node 0 lost now: nodes 1 and 2 hold four shards of every chunk, two of them rebuilt.
    c.kill(0);
    read_back(&c, 1, key, &src);
    read_back(&c, 2, key, &src);
}

/// Membership changes under data: a fourth machine joins a cluster that holds objects and the
/// leader's rebalance moves chunks onto it; one of the first three is lost, removed, and its
/// shards rebuilt on the others; then another is lost, and the two left read everything.
#[test]
fn a_joining_node_takes_shards_and_a_lost_one_is_rebuilt_on_the_others() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), 4, 3);
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(0, &["s3", "mb", "s3://grow"]));
    let files = [
        stored(&c, 0, work.path(), "grow", 31, 12 << 20),
        stored(&c, 0, work.path(), "grow", 32, 5 << 20),
    ];
    let before = c.wait_balanced(0, 1);
    assert!(before.contains("5 chunk(s)"), "{before}");

    // A fourth machine joins: generation 2 over four members; chunks move onto it.
    let joined = c.s3d_ok(3, &["cluster", "join"]);
    assert!(joined.contains("Layout generation 2"), "{joined}");
    c.serve(3);
    let status = c.wait_balanced(1, 2);
    assert!(status.contains("4 member(s)"), "{status}");
    let volumes = volume_bytes(&c.data(3));
    assert!(volumes > 0, "node 3 holds no shard after the rebalance");
    for (f, key) in &files {
        read_back(&c, 3, key, f);
    }

    // Node 1 is lost for good and removed: generation 3 over nodes 0, 2 and 3; its shards are
    // rebuilt on them from parity.
    c.kill(1);
    let removed = c.s3d_ok(0, &["cluster", "remove", "node-1"]);
    assert!(removed.contains("Layout generation 3"), "{removed}");
    c.wait_balanced(0, 3);
    // Three members left with 4 + 2: none may leave now, and the refusal changes nothing.
    let out = c.s3d(0, &["cluster", "drain", "node-2"]).output().unwrap();
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && why.contains("could not hold the data"),
        "{why}"
    );
    c.wait_balanced(0, 3);

    // Node 2 lost as well: nodes 0 and 3 hold four shards of every chunk.
    c.kill(2);
    for (f, key) in &files {
        read_back(&c, 0, key, f);
        read_back(&c, 3, key, f);
    }
}

/// Bytes in the volume files of a node's disks.
fn volume_bytes(data: &Path) -> u64 {
    let mut total = 0;
    let Ok(disks) = std::fs::read_dir(data.join("disks")) else {
        return 0;
    };
    for d in disks.flatten() {
        if let Ok(vols) = std::fs::read_dir(d.path().join("volumes")) {
            for v in vols.flatten() {
                // Allocated bytes: regions freed are holes.
                use std::os::unix::fs::MetadataExt;
                total += v.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
            }
        }
    }
    total
}

/// A writer that keeps putting objects (1 KB to 5 MiB, contents from their number) through
/// the nodes in turn until `stop` exists, moving to the next node on any failure and putting
/// the same object again, and notes each acknowledged put (`key md5 size`) in `acks`.
const LOAD_WRITER: &str = r#"
import boto3, hashlib, os, random, sys, time
from botocore.config import Config
nodes = [n.split('|') for n in sys.argv[1].split(',')]
stop, acks = sys.argv[2], open(sys.argv[3], 'a')
cfg = Config(retries={'max_attempts': 1}, connect_timeout=3, read_timeout=30)
s3 = [boto3.client('s3', endpoint_url=ep, region_name='us-east-1', verify=ca, config=cfg,
                   aws_access_key_id=sys.argv[4], aws_secret_access_key=sys.argv[5])
      for ep, ca in nodes]
n, node = 0, 0
while not os.path.exists(stop):
    r = random.Random(n)
    body = r.randbytes(r.choice([1000, 70000, 1 << 20, 5 << 20]))
    key = 'load/%d' % n
    for attempt in range(120):
        try:
            s3[node].put_object(Bucket='load', Key=key, Body=body)
            break
        except Exception as e:
            print('put %s through node %d: %s' % (key, node, e), file=sys.stderr)
            node = (node + 1) % len(s3)
            time.sleep(0.25)
    else:
        sys.exit('gave up on ' + key)
    acks.write('%s %s %d\n' % (key, hashlib.md5(body).hexdigest(), len(body)))
    acks.flush()
    n, node = n + 1, (node + 1) % len(s3)
"#;

/// Checks every put noted in the file `ACKS` (set before it) through the client `s3`.
const CHECK_ACKS: &str = r#"
import hashlib
bad = []
for line in open(ACKS).read().splitlines():
    key, md5, size = line.split()
    body = s3.get_object(Bucket='load', Key=key)['Body'].read()
    if hashlib.md5(body).hexdigest() != md5 or len(body) != int(size):
        bad.append(key)
print('bad:', bad)
"#;

/// Reads back every acknowledged put in `acks` through each of `nodes` and checks it; returns
/// how many there were.
fn check_acks(c: &Cluster, nodes: &[usize], acks: &Path) -> usize {
    let count = std::fs::read_to_string(acks).unwrap().lines().count();
    let script = format!("ACKS = {:?}\n{CHECK_ACKS}", acks.display().to_string());
    for &i in nodes {
        let out = boto3(c, i, &script);
        assert_eq!(out.trim(), "bad: []", "through node {i}");
    }
    count
}

/// Starts [`LOAD_WRITER`] against `nodes`; it stops once `stop` exists.
fn start_load(c: &Cluster, nodes: &[usize], stop: &Path, acks: &Path) -> std::process::Child {
    let targets: Vec<String> = nodes
        .iter()
        .map(|&i| format!("{}|{}", c.endpoint(i), c.ca(i).display()))
        .collect();
    Command::new("python3")
        .args(["-c", LOAD_WRITER, &targets.join(",")])
        .arg(stop)
        .arg(acks)
        .args([AK, SK])
        .env("PYTHONWARNINGS", "ignore")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(acks.with_extension("log")).unwrap())
        .spawn()
        .unwrap()
}

/// Under a stream of writes: one of the three etcd members is killed, then every node is
/// restarted in turn (the first by `kill -9`, the others by SIGTERM). The writer moves to
/// another node when one fails it; afterwards every put it saw acknowledged reads back
/// bit-exact through every node.
#[test]
fn an_etcd_member_killed_and_a_rolling_restart_under_load_lose_nothing() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), NODES, NODES);
    ok(c.aws(0, &["s3", "mb", "s3://load"]));
    let work = tempfile::tempdir().unwrap();
    let (stop, acks) = (work.path().join("stop"), work.path().join("acks"));
    let nodes: Vec<usize> = (0..NODES).collect();
    let mut writer = start_load(&c, &nodes, &stop, &acks);
    let acked = || {
        std::fs::read_to_string(&acks)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let wait_for_more = |at_least: usize| {
        let t = std::time::Instant::now();
        while acked() < at_least {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(90),
                "the writer is stuck at {} puts: {}",
                acked(),
                std::fs::read_to_string(acks.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for_more(5);
    c.kill_etcd(1);
    wait_for_more(acked() + 5);
    // Node 0 is killed outright (puts in flight on it die with it), the others are restarted
    // as an operator would.
    for i in 0..NODES {
        match i {
            0 => c.kill(i),
            _ => c.stop(i),
        }
        wait_for_more(acked() + 3);
        c.serve(i);
        wait_for_more(acked() + 3);
    }
    std::fs::write(&stop, b"").unwrap();
    let status = writer.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(acks.with_extension("log")).unwrap_or_default()
    );
    let n = check_acks(&c, &nodes, &acks);
    assert!(n >= 30, "only {n} puts acknowledged");
}

/// A disk of one node lost (its directory gone while the node was down): the node starts
/// without it and every object still reads; `s3d heal` on the node formats the replacement
/// and rebuilds its shards in place; the running node takes the disk back by itself; then
/// another node may be lost.
#[test]
fn a_disk_lost_on_one_node_is_rebuilt_in_place_by_heal_on_that_node() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), NODES, NODES);
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(0, &["s3", "mb", "s3://disks"]));
    let (src, key) = stored(&c, 0, work.path(), "disks", 41, 16 << 20);
    let key = key.as_str();
    c.kill(1);
    let lost = c.data(1).join("disks").join("disk0");
    let held = volume_bytes(&c.data(1));
    std::fs::remove_dir_all(&lost).unwrap();
    assert!(volume_bytes(&c.data(1)) < held);
    c.serve(1);
    read_back(&c, 1, key, &src);
    read_back(&c, 0, key, &src);
    let healed = c.s3d_ok(1, &["heal"]);
    assert!(
        healed.contains(" repaired;") && !healed.contains(" 0 repaired"),
        "{healed}"
    );
    let again = c.s3d_ok(1, &["heal"]);
    assert!(
        again.contains(" 0 missing, 0 corrupt, 0 repaired"),
        "{again}"
    );
    // The running node probes its disks every few seconds: then it serves disk0 again.
    std::thread::sleep(std::time::Duration::from_secs(7));
    c.kill(2);
    read_back(&c, 0, key, &src);
    read_back(&c, 1, key, &src);
}

/// Six nodes with 4 + 2: each holds at most one shard of a chunk, so any two may be lost.
#[test]
fn six_nodes_may_lose_any_two() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), 6, 6);
    let status = c.s3d_ok(3, &["cluster", "status"]);
    assert!(
        status.contains("at most 1 per member: any 2 member(s) may be lost"),
        "{status}"
    );
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(5, &["s3", "mb", "s3://six"]));
    let (src, key) = stored(&c, 5, work.path(), "six", 51, 20 << 20);
    let key = key.as_str();
    // Every node holds some of it.
    for i in 0..6 {
        assert!(volume_bytes(&c.data(i)) > 0, "node {i} holds nothing");
    }
    c.kill(1);
    c.kill(4);
    for i in [0, 2, 3, 5] {
        read_back(&c, i, key, &src);
    }
}

/// A member drained while it runs: new chunks avoid it at once, rebalance copies its shards to
/// the others and frees them on it; removed and stopped, it takes nothing with it — the four
/// left may still lose one.
#[test]
fn a_drained_node_leaves_with_nothing_on_it() {
    let mut c = Cluster::serving(env!("CARGO_BIN_EXE_s3d").into(), 5, 5);
    let work = tempfile::tempdir().unwrap();
    ok(c.aws(0, &["s3", "mb", "s3://drain"]));
    let (src, key) = stored(&c, 0, work.path(), "drain", 61, 20 << 20);
    let key = key.as_str();
    let held = written_bytes(&c.data(4));
    assert!(held > 0, "node 4 holds shards before the drain");
    // Five joins made generations 1 (three members) to 3 (five); the drain makes the fourth.
    let drained = c.s3d_ok(1, &["cluster", "drain", "node-4"]);
    assert!(drained.contains("Layout generation 4"), "{drained}");
    let status = c.wait_balanced(2, 4);
    assert!(status.contains("draining"), "{status}");
    // Written during the drain: none of it goes to node 4.
    let (more, during) = stored(&c, 3, work.path(), "drain", 62, 8 << 20);
    let during = during.as_str();
    c.wait_balanced(2, 4);
    let left = written_bytes(&c.data(4));
    assert!(
        left == 0,
        "node 4 still holds {left} of its {held} bytes after the drain"
    );
    let removed = c.s3d_ok(1, &["cluster", "remove", "node-4"]);
    assert!(removed.contains("The layout is unchanged"), "{removed}");
    c.stop(4);
    c.kill(0);
    read_back(&c, 1, key, &src);
    read_back(&c, 2, during, &more);
}

/// Bytes of a node's volume files in 4 KiB blocks that are not all zero: its shards (space
/// preallocated ahead and regions freed read as zeros).
fn written_bytes(data: &Path) -> u64 {
    let mut total = 0;
    let Ok(disks) = std::fs::read_dir(data.join("disks")) else {
        return 0;
    };
    for d in disks.flatten() {
        if let Ok(vols) = std::fs::read_dir(d.path().join("volumes")) {
            for v in vols.flatten() {
                let bytes = std::fs::read(v.path()).unwrap_or_default();
                total += bytes
                    .chunks(4096)
                    .filter(|b| b.iter().any(|&x| x != 0))
                    .count() as u64
                    * 4096;
            }
        }
    }
    total
}
