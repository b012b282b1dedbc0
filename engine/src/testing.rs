//! What tests and tools outside the crate reach below the layers the doors use (volumes,
//! shards, the codec, the format version), and helpers the test suites of all three crates
//! share: not an interface of the engine.

use std::fs::File;
use std::os::fd::AsRawFd;

pub use crate::chunk::erasure::Codec;
pub use crate::chunk::shard::{ShardHeader, HEADER_LEN};
pub use crate::chunk::volume::{list_volumes, punch, scan_shards};
pub use crate::format::FORMAT_VERSION;
pub use crate::fsutil::fs_capacity;

/// Runs the shard I/O contract (`chunk/shard_io/contract.rs`) against disk `disk` of the
/// node `owner`, reached through `transport` (a [`crate::LocalShards`] in process, or a
/// network client of its shard service): appends read back whole and in part, a shard damaged
/// on `owner`'s disk reads as corrupt and is rewritten, a released shard is gone, and a disk
/// `owner` takes offline serves nothing until it is back. Panics on the first breach.
pub fn shard_transport_contract(
    owner: &crate::Engine,
    transport: std::sync::Arc<dyn crate::ShardTransport>,
    disk: u32,
) {
    use crate::chunk::shard_io::{contract, DiskState};
    use std::os::unix::fs::FileExt;
    let d = crate::RemoteDisk::new(transport, disk);
    let local = &owner.inner.chunks.disks.disks[disk as usize];
    contract::appended_shards_read_back_verified_in_whole_and_in_part(&d);
    contract::a_corrupt_shard_is_detected_and_rewritten_in_place(&d, |loc, at, bytes| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(local.volume_path(loc.volume))
            .expect("the damaged shard's volume opens");
        f.write_all_at(bytes, loc.offset + at)
            .expect("the damage is written");
    });
    contract::released_shards_read_as_missing_and_offline_disks_serve_nothing(&d, |on| {
        local.set_state(if on {
            DiskState::Online
        } else {
            DiskState::Missing
        })
    });
}

/// A shard of the contract's (`index` of a 4 + 2 chunk `chunk`): its encoded header and
/// payload, as a node sends them to another.
pub fn contract_shard(chunk: &[u8; 32], index: usize, fill: u8) -> (Vec<u8>, Vec<u8>) {
    let b = crate::chunk::shard_io::contract::shard(chunk, index, fill);
    (b.region()[..HEADER_LEN].to_vec(), b.payload().to_vec())
}

/// `len` deterministic pseudo-random bytes (xorshift from `seed`): test data that neither
/// compresses nor deduplicates by accident.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// For each page of the first `len` bytes of `f`: whether it is in the page cache (mmap +
/// mincore).
pub fn resident_pages(f: &File, len: usize) -> std::io::Result<Vec<bool>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let mut vec = vec![0u8; len.div_ceil(4096)];
    // SAFETY: a read-only shared mapping of an open file, only inspected with mincore (which
    // writes one byte per page into `vec`, sized for every page) and unmapped before return.
    unsafe {
        let m = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        if m == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let r = libc::mincore(m, len, vec.as_mut_ptr());
        libc::munmap(m, len);
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(vec.iter().map(|b| b & 1 != 0).collect())
}
