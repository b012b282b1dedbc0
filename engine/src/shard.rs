//! The shard file format: a fixed header naming the chunk and shard, then the payload.
//!
//! ```text
//! offset size field
//!      0    8 magic "PDSHARD1"
//!      8   32 BLAKE3 hash of the whole chunk (the chunk's name)
//!     40    1 shard index
//!     41    1 data shards (k)
//!     42    1 parity shards (m)
//!     43    1 reserved (0)
//!     44    4 chunk length in bytes (little endian)
//!     48   32 BLAKE3 hash of the payload
//!     80   16 reserved (0)
//!     96    … payload (shard_len bytes)
//! ```

use crate::error::{Error, Result};

/// Size of the shard header in bytes.
pub const HEADER_LEN: usize = 96;
const MAGIC: &[u8; 8] = b"PDSHARD1";

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
    /// Length of the chunk.
    pub chunk_len: u32,
    /// Hash of the payload.
    pub payload_hash: [u8; 32],
}

impl ShardHeader {
    /// Serialises the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..40].copy_from_slice(&self.chunk);
        h[40] = self.index;
        h[41] = self.k;
        h[42] = self.m;
        h[44..48].copy_from_slice(&self.chunk_len.to_le_bytes());
        h[48..80].copy_from_slice(&self.payload_hash);
        h
    }

    /// Parses a header; fails on a wrong magic.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_LEN || &b[0..8] != MAGIC {
            return Err(Error::Corrupt("shard header has no valid magic".into()));
        }
        let mut chunk = [0u8; 32];
        chunk.copy_from_slice(&b[8..40]);
        let mut payload_hash = [0u8; 32];
        payload_hash.copy_from_slice(&b[48..80]);
        Ok(ShardHeader {
            chunk,
            index: b[40],
            k: b[41],
            m: b[42],
            chunk_len: u32::from_le_bytes([b[44], b[45], b[46], b[47]]),
            payload_hash,
        })
    }
}

/// Checks a shard's header and payload against what the reader expects (chunk, index, length,
/// payload hash).
pub fn verify_parts(header: &[u8], payload: &[u8], chunk: &[u8; 32], index: usize) -> bool {
    let Ok(h) = ShardHeader::decode(header) else {
        return false;
    };
    &h.chunk == chunk
        && h.index as usize == index
        && blake3::hash(payload).as_bytes() == &h.payload_hash
}
