//! Entry points for the fuzz targets (`fuzz/`) and the property tests: every decoder of bytes
//! that come from disk, fed arbitrary (corrupt) input. Each must return an error, never panic,
//! never allocate without bound.

use crate::chunk::shard::{ShardHeader, HEADER_LEN};
use crate::meta::{ChunkRecord, Manifest, ObjectMeta, PartRecord, UploadRecord};

/// Runs every on-disk record decoder on `b`.
pub fn decode_records(b: &[u8]) {
    let _ = Manifest::decode(b);
    let _ = ChunkRecord::decode(b);
    let _ = ObjectMeta::decode("k", b);
    let _ = ShardHeader::decode(b);
    // A stored zstd frame (a compressed chunk or inline object) claiming a plain length.
    let _ = crate::compression::decompress(b, crate::compression::Encoding::Zstd, 1 << 16);
    let _ = rmp_serde::from_slice::<UploadRecord>(b);
    let _ = rmp_serde::from_slice::<PartRecord>(b);
    let _ = crate::object::draft::decode_record(b);
    let _ = serde_json::from_slice::<crate::format::FormatInfo>(b);
    let _ = serde_json::from_slice::<crate::chunk::disks::DiskIdentity>(b);
    if let Ok(s) = std::str::from_utf8(b) {
        let _ = crate::chunk::volume::parse_volume_name(s);
        let _ = crate::names::validate_key(s);
        let _ = crate::names::validate_bucket_name(s);
        let _ = s.parse::<crate::compression::Compression>();
    }
}

/// A shard (header and payload) of `payload`, corrupted by XOR with `noise` from its start;
/// checks that it decodes and verifies only when it is intact. Panics when corrupt bytes pass.
pub fn corrupt_shard(payload: &[u8], noise: &[u8]) {
    let chunk = *blake3::hash(payload).as_bytes();
    let h = ShardHeader::new(&chunk, 0, 4, 2, payload.len() as u32, payload);
    let mut bytes = h.encode().to_vec();
    bytes.extend_from_slice(payload);
    let original = bytes.clone();
    for (b, n) in bytes.iter_mut().zip(noise) {
        *b ^= n;
    }
    let Ok(got) = ShardHeader::decode(&bytes) else {
        return;
    };
    let data = &bytes[HEADER_LEN..];
    let intact = got.verify_blocks(payload.len(), 0, data);
    if intact {
        // Verification passed: the header may differ only outside its hashed fields (index,
        // k, m, lengths are checked by their readers), never in the payload.
        assert_eq!(data, &original[HEADER_LEN..], "corrupt payload verified");
        assert_eq!(got.blocks, h.blocks);
    }
}

/// The header a peer sends with `payload` (even length, at least 2 bytes) as the one shard of
/// chunk `chunk` (a 1 + 0 codec): what [`crate::LocalShards`] takes from a peer.
pub fn peer_shard_header(chunk: &[u8; 32], payload: &[u8]) -> [u8; HEADER_LEN] {
    ShardHeader::new(chunk, 0, 1, 0, payload.len() as u32, payload).encode()
}
