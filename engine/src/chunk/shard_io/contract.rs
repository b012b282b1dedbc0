//! The [`ShardIo`] contract: what every implementation must do, as functions over any of them
//! (the local disk runs them in `local.rs`, a disk of another node through the shard seam in
//! `remote.rs`). The caller gives what only it can do to its disk: damage a stored shard's
//! bytes, take the disk offline and back.

use super::*;
use crate::chunk::shard::{ShardHeader, HEADER_LEN};
use crate::chunk::volume::ShardBuf;

/// Payload length of the contract's shards.
pub(crate) const SHARD_LEN: usize = 10_000;

/// Shard `index` of a 4 + 2 chunk `chunk`, its payload derived from `fill`, header filled in.
pub(crate) fn shard(chunk: &[u8; 32], index: usize, fill: u8) -> ShardBuf {
    let payload: Vec<u8> = (0..SHARD_LEN).map(|i| (i as u8) ^ fill).collect();
    let mut b = ShardBuf::from_payload(&payload);
    b.set_header(&ShardHeader::new(chunk, index, 4, 2, 40_000, &payload));
    b
}

fn at(chunk: &[u8; 32], index: usize, loc: ShardLoc) -> ShardAt<'_> {
    ShardAt {
        chunk,
        index,
        loc,
        len: SHARD_LEN,
    }
}

fn read_all<D: ShardIo>(d: &D, chunk: &[u8; 32], index: usize, loc: ShardLoc) -> ShardRead {
    d.read(at(chunk, index, loc), 0, SHARD_LEN)
}

/// Appended shards read back whole and in part, verified; a read naming another chunk or
/// index finds the shard corrupt; out-of-bounds and absent places read as missing.
pub(crate) fn appended_shards_read_back_verified_in_whole_and_in_part<D: ShardIo>(d: &D) {
    let chunk = [7u8; 32];
    let (a, pa) = d.append(&shard(&chunk, 1, 0), true).unwrap();
    let (b, pb) = d.append(&shard(&chunk, 5, 9), false).unwrap();
    pa.make_durable().unwrap();
    pb.make_durable().unwrap();
    assert!(d.present(a, SHARD_LEN) && d.present(b, SHARD_LEN));
    let ShardRead::Ok(whole) = read_all(d, &chunk, 5, b) else {
        panic!("shard 5 unreadable")
    };
    assert_eq!(whole.as_ref(), shard(&chunk, 5, 9).payload());
    let ShardRead::Ok(part) = d.read(at(&chunk, 1, a), 4_000, 4_100) else {
        panic!("range unreadable")
    };
    assert_eq!(part.as_ref(), &shard(&chunk, 1, 0).payload()[4_000..4_100]);
    // The header names the shard: asking for another chunk or index finds it corrupt.
    assert!(matches!(read_all(d, &[8u8; 32], 1, a), ShardRead::Corrupt));
    assert!(matches!(read_all(d, &chunk, 2, a), ShardRead::Corrupt));
    // Out of bounds and absent places are missing, never a panic.
    assert!(matches!(
        d.read(at(&chunk, 1, a), 5, SHARD_LEN + 1),
        ShardRead::Missing
    ));
    assert!(matches!(
        d.read(at(&chunk, 1, a), 50, 40),
        ShardRead::Missing
    ));
    let nowhere = ShardLoc {
        volume: a.volume ^ 1,
        offset: 0,
    };
    assert!(matches!(
        read_all(d, &chunk, 1, nowhere),
        ShardRead::Missing
    ));
    assert!(!d.present(nowhere, SHARD_LEN));
}

/// A shard whose stored bytes rot reads as corrupt; rewritten in place, it reads back.
/// `damage(loc, offset, bytes)` overwrites bytes of the stored region of the shard at `loc`.
pub(crate) fn a_corrupt_shard_is_detected_and_rewritten_in_place<D: ShardIo>(
    d: &D,
    damage: impl Fn(ShardLoc, u64, &[u8]),
) {
    let chunk = [3u8; 32];
    let good = shard(&chunk, 0, 1);
    let (loc, p) = d.append(&good, true).unwrap();
    p.make_durable().unwrap();
    damage(loc, HEADER_LEN as u64 + 777, b"rot");
    assert!(matches!(read_all(d, &chunk, 0, loc), ShardRead::Corrupt));
    d.rewrite(loc, &good).unwrap();
    let ShardRead::Ok(back) = read_all(d, &chunk, 0, loc) else {
        panic!("rewritten shard unreadable")
    };
    assert_eq!(back.as_ref(), good.payload());
}

/// A released shard no longer reads; an offline disk serves nothing, and everything again
/// once back. `set_online(on)` takes the disk offline or brings it back.
pub(crate) fn released_shards_read_as_missing_and_offline_disks_serve_nothing<D: ShardIo>(
    d: &D,
    set_online: impl Fn(bool),
) {
    let chunk = [5u8; 32];
    let (loc, p) = d.append(&shard(&chunk, 2, 4), true).unwrap();
    p.make_durable().unwrap();
    d.release(loc, SHARD_LEN);
    assert!(!matches!(read_all(d, &chunk, 2, loc), ShardRead::Ok(_)));
    let (loc, p) = d.append(&shard(&chunk, 3, 4), true).unwrap();
    p.make_durable().unwrap();
    set_online(false);
    assert!(!d.is_online());
    assert!(matches!(read_all(d, &chunk, 3, loc), ShardRead::Missing));
    assert!(!d.present(loc, SHARD_LEN));
    set_online(true);
    assert!(d.is_online());
    assert!(matches!(read_all(d, &chunk, 3, loc), ShardRead::Ok(_)));
}
