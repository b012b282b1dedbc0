//! A disk of another node through the shard seam: the [`ShardIo`] contract run against
//! [`RemoteDisk`] over a real engine's [`LocalShards`] (the other node's end, without the
//! network between), and what that end refuses from a peer.

use super::*;
use crate::chunk::shard_io::contract::{self, SHARD_LEN};
use crate::config::{Durability, EngineConfig};
use crate::Engine;

/// An engine in a fresh directory (4 + 2 over six disks) and its shards, as another node
/// reaches them.
fn node() -> (tempfile::TempDir, Engine, Arc<LocalShards>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.durability = Durability::Fsync;
    let e = Engine::open(cfg).unwrap();
    let shards = Arc::new(e.local_shards());
    (dir, e, shards)
}

#[test]
fn a_remote_disk_meets_the_shard_io_contract() {
    let (_dir, e, shards) = node();
    assert_eq!(shards.disks(), 6);
    for disk in [0, 5] {
        crate::testing::shard_transport_contract(&e, shards.clone(), disk);
    }
}

#[test]
fn a_node_refuses_shards_that_do_not_match_their_header_and_stores_nothing() {
    let (_dir, e, shards) = node();
    let chunk = [9u8; 32];
    let good = contract::shard(&chunk, 2, 3);
    let header = &good.region()[..HEADER_LEN];
    let volumes = |e: &Engine| {
        crate::chunk::volume::list_volumes(&e.inner.chunks.disks.disks[1].path)
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    let before = volumes(&e);
    let mut flipped = good.payload().to_vec();
    flipped[1234] ^= 1;
    let short = &good.payload()[..SHARD_LEN - 2];
    let cases: Vec<(&str, &[u8], &[u8])> = vec![
        ("a flipped payload byte", header, &flipped),
        ("a payload shorter than its header says", header, short),
        ("a short header", &header[..HEADER_LEN - 1], good.payload()),
        ("no header at all", &[0u8; HEADER_LEN], good.payload()),
    ];
    for (what, h, p) in cases {
        let err = shards.append(1, h, p, true).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(_)),
            "{what}: {err:?} is not a corruption error"
        );
    }
    assert!(matches!(
        shards.append(6, header, good.payload(), true),
        Err(Error::Corrupt(_))
    ));
    assert_eq!(volumes(&e), before, "a refused shard took space");
    // The good one is taken, and reads back.
    let loc = shards.append(1, header, good.payload(), true).unwrap();
    let range = ShardRange {
        chunk,
        index: 2,
        loc,
        shard_len: SHARD_LEN as u32,
        lo: 0,
        hi: SHARD_LEN as u32,
    };
    assert!(matches!(shards.read(1, &range), ShardRead::Ok(b) if b.as_ref() == good.payload()));
    // Disks that do not exist and absurd lengths read as missing, never a panic.
    assert!(matches!(shards.read(7, &range), ShardRead::Missing));
    assert!(!shards.is_online(u32::MAX));
    let huge = ShardRange {
        shard_len: u32::MAX,
        hi: u32::MAX,
        ..range
    };
    assert!(matches!(shards.read(1, &huge), ShardRead::Missing));
    assert!(!shards.present(9, loc, SHARD_LEN as u32));
    shards.release(9, loc, SHARD_LEN as u32);
    // An offline disk takes nothing (a writer does not ask first: it is told).
    let local = &e.inner.chunks.disks.disks[1];
    local.set_state(crate::chunk::shard_io::DiskState::Missing);
    let before = volumes(&e);
    assert!(shards.append(1, header, good.payload(), true).is_err());
    assert_eq!(volumes(&e), before);
}

/// A transport that answers reads with the wrong number of bytes.
struct Liar(Arc<LocalShards>);

impl ShardTransport for Liar {
    fn is_online(&self, disk: u32) -> bool {
        self.0.is_online(disk)
    }
    fn append(&self, disk: u32, header: &[u8], payload: &[u8], data: bool) -> Result<ShardLoc> {
        self.0.append(disk, header, payload, data)
    }
    fn rewrite(&self, disk: u32, loc: ShardLoc, header: &[u8], payload: &[u8]) -> Result<()> {
        self.0.rewrite(disk, loc, header, payload)
    }
    fn read(&self, disk: u32, range: &ShardRange) -> ShardRead {
        match self.0.read(disk, range) {
            ShardRead::Ok(b) => ShardRead::Ok(b.slice(1..)),
            r => r,
        }
    }
    fn present(&self, disk: u32, loc: ShardLoc, shard_len: u32) -> bool {
        self.0.present(disk, loc, shard_len)
    }
    fn release(&self, disk: u32, loc: ShardLoc, shard_len: u32) {
        self.0.release(disk, loc, shard_len)
    }
}

#[test]
fn a_remote_answer_of_the_wrong_length_reads_as_corrupt() {
    let (_dir, _e, shards) = node();
    let d = RemoteDisk::new(Arc::new(Liar(shards)), 0);
    let chunk = [4u8; 32];
    let (loc, _) = d.append(&contract::shard(&chunk, 0, 1), true).unwrap();
    let at = ShardAt {
        chunk: &chunk,
        index: 0,
        loc,
        len: SHARD_LEN,
    };
    assert!(matches!(d.read(at, 0, SHARD_LEN), ShardRead::Corrupt));
}

#[test]
fn places_past_any_volume_are_refused_never_overflowed() {
    let (_dir, e, shards) = node();
    let chunk = [6u8; 32];
    let good = contract::shard(&chunk, 1, 5);
    let header = &good.region()[..HEADER_LEN];
    let loc = shards.append(2, header, good.payload(), true).unwrap();
    let len = SHARD_LEN as u32;
    let intact = |what: &str| {
        let range = ShardRange {
            chunk,
            index: 1,
            loc,
            shard_len: len,
            lo: 0,
            hi: len,
        };
        assert!(
            matches!(shards.read(2, &range), ShardRead::Ok(b) if b.as_ref() == good.payload()),
            "{what}: the stored shard changed"
        );
    };
    let path = e.inner.chunks.disks.disks[2].volume_path(loc.volume);
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    // Offsets whose end overflows a u64, passes a file's largest offset, or lies past the
    // volume's end: nothing to read, nothing there, nothing freed, nothing rewritten.
    for offset in [
        u64::MAX,
        u64::MAX - 100,
        i64::MAX as u64 - 10,
        1 << 62,
        before,
    ] {
        let far = ShardLoc {
            volume: loc.volume,
            offset,
        };
        let range = ShardRange {
            chunk,
            index: 1,
            loc: far,
            shard_len: len,
            lo: 0,
            hi: len,
        };
        assert!(
            matches!(shards.read(2, &range), ShardRead::Missing),
            "read at {offset}"
        );
        assert!(!shards.present(2, far, len), "present at {offset}");
        shards.release(2, far, len);
        let err = shards.rewrite(2, far, header, good.payload()).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(_)),
            "rewrite at {offset}: {err:?}"
        );
        assert_eq!(size(), before, "the volume grew by a rewrite at {offset}");
        intact(&format!("offset {offset}"));
    }
    // The shard's own place still takes a rewrite.
    shards.rewrite(2, loc, header, good.payload()).unwrap();
    intact("rewritten in place");
}
