use std::os::unix::fs::FileExt;

use super::*;
use crate::chunk::erasure::Codec;
use crate::chunk::volume::ShardBuf;

const CODEC: Codec = Codec { k: 4, m: 2 };

/// A shard region of a chunk of `chunk_len` bytes, filled with `fill`.
fn shard(chunk: u8, index: usize, chunk_len: u32, fill: u8) -> ShardBuf {
    let s = CODEC.shard_len(chunk_len as usize);
    let mut b = ShardBuf::new(s);
    b.payload_mut().fill(fill);
    let h = ShardHeader::new(&[chunk; 32], index, 4, 2, chunk_len, b.payload());
    b.set_header(&h);
    b
}

fn clock(boot: &str, secs: u64) -> BootClock {
    BootClock {
        boot_id: boot.into(),
        secs,
    }
}

fn unnamed(volume: u64, offset: u64) -> Unnamed {
    Unnamed {
        volume,
        offset,
        len: 8192,
        chunk: [7; 32],
        index: 3,
        table: [9; 32],
    }
}

#[test]
fn sightings_keep_their_time_within_a_boot_and_date_from_its_start_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEEN_FILE);
    let mut s = Sightings {
        boot_id: "boot-a".into(),
        seen: HashMap::new(),
    };
    s.seen.insert(unnamed(1, 0), 100);
    s.seen.insert(unnamed(0xabc, 4096), 250);
    s.store(&path).unwrap();
    assert_eq!(Sightings::load(&path, &clock("boot-a", 300)), s);
    // A time after "now" (a clock that went back?) is taken as now.
    let later = Sightings::load(&path, &clock("boot-a", 200));
    assert_eq!(later.seen[&unnamed(0xabc, 4096)], 200);
    // Another boot: everything counts as seen when it began.
    let next = Sightings::load(&path, &clock("boot-b", 5000));
    assert_eq!(next.boot_id, "boot-b");
    assert!(next.seen.values().all(|at| *at == 0));
    assert_eq!(next.seen.len(), 2);
}

#[test]
fn bad_sighting_lines_and_files_only_make_regions_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEEN_FILE);
    let now = clock("b", 10);
    assert!(Sightings::load(&path, &now).seen.is_empty());
    let good = format!(
        "{:016x} 4096 8192 {} 3 {} 5",
        1,
        hex::encode([7u8; 32]),
        hex::encode([9u8; 32])
    );
    let text = format!(
        "b\n{good}\nnot a line\n1 2 3\n{good} extra\nzz 1 2 {} 3 {} 4\n",
        hex::encode([7u8; 32]),
        hex::encode([9u8; 32])
    );
    std::fs::write(&path, text).unwrap();
    let s = Sightings::load(&path, &now);
    assert_eq!(s.seen.len(), 1);
    assert_eq!(s.seen[&unnamed(1, 4096)], 5);
}

#[test]
fn the_walk_finds_whole_unnamed_shards_and_leaves_named_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0000000000000001.vol");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    // [named shard][unnamed shard][torn shard: header, payload changed][zeros][unnamed shard]
    let named = shard(1, 0, 100_000, 0x11);
    let orphan = shard(2, 1, 100_000, 0x22);
    let mut torn = shard(3, 2, 100_000, 0x33);
    let late = shard(4, 5, 10_000, 0x44);
    let mut at = 0u64;
    let mut put = |b: &[u8]| {
        f.write_all_at(b, at).unwrap();
        let o = at;
        at += b.len() as u64;
        o
    };
    let named_at = put(named.region());
    let orphan_at = put(orphan.region());
    torn.payload_mut()[5000] ^= 1;
    let torn_at = put(torn.region());
    let zeros_at = put(&[0u8; 3 * 4096]);
    let late_at = put(late.region());
    let live = [(named_at, named.region().len() as u64)];
    let found = walk_unnamed(&f, 1, &live).unwrap();
    let offsets: Vec<u64> = found.shards.iter().map(|u| u.offset).collect();
    assert_eq!(offsets, vec![orphan_at, late_at]);
    assert_eq!(found.shards[0].chunk, [2; 32]);
    assert_eq!(found.shards[0].index, 1);
    assert_eq!(found.shards[0].len, orphan.region().len() as u64);
    assert_eq!(found.shards[1].index, 5);
    // The torn shard and the zeros are other space, in one run.
    assert_eq!(found.other, vec![(torn_at, late_at - torn_at)]);
    assert_eq!(zeros_at - torn_at, torn.region().len() as u64);
    // Named, the orphan is left alone too.
    let live = [
        (named_at, named.region().len() as u64),
        (orphan_at, orphan.region().len() as u64),
    ];
    let found = walk_unnamed(&f, 1, &live).unwrap();
    assert_eq!(found.shards.len(), 1);
    assert_eq!(found.shards[0].offset, late_at);
}

#[test]
fn a_shard_overlapping_a_named_region_is_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0000000000000002.vol");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let a = shard(5, 0, 100_000, 0x55);
    f.write_all_at(a.region(), 0).unwrap();
    // A record names a region starting inside it (nonsense, but the sweep must not free
    // named bytes whatever the records say).
    let live = [(8192, 4096)];
    let found = walk_unnamed(&f, 2, &live).unwrap();
    assert!(found.shards.is_empty());
    assert!(found
        .other
        .iter()
        .all(|(o, l)| o + l <= 8192 || *o >= 12288));
}
