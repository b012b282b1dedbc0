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
