//! The shard format: a fixed header naming the chunk and shard, with the hashes of the
//! payload's blocks, then the payload.
//!
//! ```text
//! offset size field
//!      0    8 magic "PDSHARD3"
//!      8   32 BLAKE3 hash of the whole chunk (the chunk's name)
//!     40    1 shard index
//!     41    1 data shards (k)
//!     42    1 parity shards (m)
//!     43    1 encoding of the stored chunk (0 plain, 1 zstd)
//!     44    4 length in bytes of the chunk as stored (little endian)
//!     48   32 BLAKE3 hash of the block hash table below
//!     80   16 reserved (0)
//!     96  512 block hash table: BLAKE3 of each of the payload's 16 blocks
//!    608    … payload (shard_len bytes)
//! ```
//!
//! The payload is cut into [`BLOCKS`] blocks of [`block_len`] bytes (the last ones shorter or
//! empty), so a read of a few bytes reads and verifies one block, not the whole shard.

use crate::error::{Error, Result};

/// Blocks per shard payload, each with its own hash in the header.
pub const BLOCKS: usize = 16;
/// Size of the shard header in bytes.
pub const HEADER_LEN: usize = 96 + BLOCKS * 32;
const MAGIC: &[u8; 8] = b"PDSHARD3";

/// Length of each block of a payload of `shard_len` bytes: a sixteenth, rounded up to 4 KiB.
pub fn block_len(shard_len: usize) -> usize {
    shard_len.div_ceil(BLOCKS).div_ceil(4096).max(1) * 4096
}

/// The BLAKE3 hash of each block of `payload`.
pub fn block_hashes(payload: &[u8]) -> [[u8; 32]; BLOCKS] {
    let bl = block_len(payload.len());
    let mut out = [[0u8; 32]; BLOCKS];
    for (i, h) in out.iter_mut().enumerate() {
        let a = (i * bl).min(payload.len());
        let b = ((i + 1) * bl).min(payload.len());
        *h = *blake3::hash(&payload[a..b]).as_bytes();
    }
    out
}

/// What a shard header says about its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardHeader {
    /// Hash of the chunk the shard belongs to.
    pub chunk: [u8; 32],
    /// Index of the shard within the chunk (0..k+m).
    pub index: u8,
    /// Data shards.
    pub k: u8,
    /// Parity shards.
    pub m: u8,
    /// Length of the chunk as stored (erasure-coded).
    pub chunk_len: u32,
    /// Encoding of the stored chunk ([`crate::compression::Encoding`] as a byte: informative,
    /// for tools that scan volumes; the chunk record is what reads go by).
    pub encoding: u8,
    /// Hashes of the payload's blocks.
    pub blocks: [[u8; 32]; BLOCKS],
}

impl ShardHeader {
    /// The header of shard `index` of `chunk`, for `payload`.
    pub fn new(
        chunk: &[u8; 32],
        index: usize,
        k: usize,
        m: usize,
        chunk_len: u32,
        payload: &[u8],
    ) -> Self {
        ShardHeader {
            chunk: *chunk,
            index: index as u8,
            k: k as u8,
            m: m as u8,
            chunk_len,
            encoding: 0,
            blocks: block_hashes(payload),
        }
    }

    /// The same header for a chunk stored with `encoding`.
    pub fn encoded(mut self, encoding: crate::compression::Encoding) -> Self {
        self.encoding = encoding as u8;
        self
    }

    /// Serialises the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..40].copy_from_slice(&self.chunk);
        h[40] = self.index;
        h[41] = self.k;
        h[42] = self.m;
        h[43] = self.encoding;
        h[44..48].copy_from_slice(&self.chunk_len.to_le_bytes());
        for (i, b) in self.blocks.iter().enumerate() {
            h[96 + 32 * i..128 + 32 * i].copy_from_slice(b);
        }
        let root = *blake3::hash(&h[96..HEADER_LEN]).as_bytes();
        h[48..80].copy_from_slice(&root);
        h
    }

    /// Parses a header; fails on a wrong magic or a block table that does not match its hash.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_LEN || &b[0..8] != MAGIC {
            return Err(Error::Corrupt("shard header has no valid magic".into()));
        }
        if blake3::hash(&b[96..HEADER_LEN]).as_bytes()[..] != b[48..80] {
            return Err(Error::Corrupt("shard block hash table is corrupt".into()));
        }
        let mut chunk = [0u8; 32];
        chunk.copy_from_slice(&b[8..40]);
        let mut blocks = [[0u8; 32]; BLOCKS];
        for (i, h) in blocks.iter_mut().enumerate() {
            h.copy_from_slice(&b[96 + 32 * i..128 + 32 * i]);
        }
        Ok(ShardHeader {
            chunk,
            index: b[40],
            k: b[41],
            m: b[42],
            chunk_len: u32::from_le_bytes([b[44], b[45], b[46], b[47]]),
            encoding: b[43],
            blocks,
        })
    }

    /// Whether `data`, blocks `first..` of a payload of `shard_len` bytes (whole blocks, the
    /// last one possibly the payload's shorter end), matches the block hashes.
    pub fn verify_blocks(&self, shard_len: usize, first: usize, data: &[u8]) -> bool {
        let bl = block_len(shard_len);
        let mut at = 0;
        let mut i = first;
        while at < data.len() {
            if i >= BLOCKS {
                return false;
            }
            let n = bl.min(data.len() - at);
            if blake3::hash(&data[at..at + n]).as_bytes() != &self.blocks[i] {
                return false;
            }
            at += n;
            i += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header and whole payload check out as shard `index` of `chunk`.
    fn verify_parts(header: &[u8], payload: &[u8], chunk: &[u8; 32], index: usize) -> bool {
        ShardHeader::decode(header).is_ok_and(|h| {
            &h.chunk == chunk
                && h.index as usize == index
                && h.verify_blocks(payload.len(), 0, payload)
        })
    }

    #[test]
    fn block_table_round_trips_and_catches_damage() {
        for len in [1usize, 4095, 4096, 70_000, 1 << 20, (1 << 20) + 1] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let h = ShardHeader::new(&[7; 32], 3, 4, 2, 1234, &payload)
                .encoded(crate::compression::Encoding::Zstd);
            let enc = h.encode();
            let dec = ShardHeader::decode(&enc).unwrap();
            assert_eq!(dec, h);
            assert!(verify_parts(&enc, &payload, &[7; 32], 3));
            assert!(!verify_parts(&enc, &payload, &[7; 32], 2));
            assert!(dec.verify_blocks(len, 0, &payload));
            // Any block on its own, as a range read gets it.
            let bl = block_len(len);
            for i in 0..len.div_ceil(bl) {
                let a = i * bl;
                let b = ((i + 1) * bl).min(len);
                assert!(
                    dec.verify_blocks(len, i, &payload[a..b]),
                    "len {len} block {i}"
                );
                assert!(!dec.verify_blocks(len, (i + 1) % BLOCKS, &payload[a..b]) || a == b);
            }
            // A flipped payload byte is caught, in the whole and in its block.
            let mut bad = payload.clone();
            bad[len / 2] ^= 1;
            assert!(!verify_parts(&enc, &bad, &[7; 32], 3));
            let i = (len / 2) / bl;
            assert!(!dec.verify_blocks(len, i, &bad[i * bl..((i + 1) * bl).min(len)]));
            // A flipped byte in the table is caught by its hash.
            let mut t = enc;
            t[100] ^= 1;
            assert!(ShardHeader::decode(&t).is_err());
        }
        assert_eq!(block_len(1 << 20), 64 << 10);
        assert_eq!(block_len(10), 4096);
    }
}
