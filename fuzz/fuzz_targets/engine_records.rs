//! The engine's on-disk decoders (manifests, chunk and object records, upload and part
//! records, drafts, shard headers, format and identity files) fed corrupt bytes; and a real
//! shard corrupted by XOR must never verify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (record, payload, noise) = data;
    engine::fuzzing::decode_records(&record);
    if !payload.is_empty() && payload.len() <= 1 << 16 {
        engine::fuzzing::corrupt_shard(&payload, &noise);
    }
});
