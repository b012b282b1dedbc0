//! Reed-Solomon erasure coding of one chunk into `k` data and `m` parity shards.
//!
//! The code is systematic: data shard `i` holds bytes `[i*S, (i+1)*S)` of the chunk (zero padded),
//! so a byte range can be served from the data shards that cover it alone.

use std::cell::RefCell;

use crate::error::{Error, Result};

thread_local! {
    /// This thread's encoder, kept between chunks (see [`Codec::encode_into`]).
    static ENCODER: RefCell<Option<reed_solomon_simd::ReedSolomonEncoder>> =
        const { RefCell::new(None) };
}

/// Encoder/decoder for a fixed `k + m` layout.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    /// Data shards.
    pub k: usize,
    /// Parity shards.
    pub m: usize,
}

impl Codec {
    /// Total shards per chunk.
    pub fn n(&self) -> usize {
        self.k + self.m
    }

    /// Shard size for a chunk of `len` bytes: `ceil(len / k)` rounded up to an even number.
    pub fn shard_len(&self, len: usize) -> usize {
        let s = len.div_ceil(self.k).max(2);
        s + (s & 1)
    }

    /// Splits `chunk` into `k + m` shards of equal length.
    pub fn encode(&self, chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
        let s = self.shard_len(chunk.len());
        let mut shards: Vec<Vec<u8>> = (0..self.k)
            .map(|i| {
                let start = (i * s).min(chunk.len());
                let end = ((i + 1) * s).min(chunk.len());
                let mut v = Vec::with_capacity(s);
                v.extend_from_slice(&chunk[start..end]);
                v.resize(s, 0);
                v
            })
            .collect();
        if self.m > 0 {
            let parity = reed_solomon_simd::encode(self.k, self.m, &shards)
                .map_err(|e| Error::Config(format!("erasure encode: {e}")))?;
            shards.extend(parity);
        }
        Ok(shards)
    }

    /// Like [`Codec::encode`], but into caller-provided shard buffers of `shard_len(chunk.len())`
    /// bytes each (`k + m` of them), so shards can be laid out where they will be written.
    pub fn encode_into(&self, chunk: &[u8], out: &mut [&mut [u8]]) -> Result<()> {
        let s = self.shard_len(chunk.len());
        if out.len() != self.n() || out.iter().any(|o| o.len() != s) {
            return Err(Error::Config("erasure encode: wrong shard buffers".into()));
        }
        for (i, o) in out[..self.k].iter_mut().enumerate() {
            let start = (i * s).min(chunk.len());
            let end = ((i + 1) * s).min(chunk.len());
            o[..end - start].copy_from_slice(&chunk[start..end]);
            o[end - start..].fill(0);
        }
        if self.m > 0 {
            let (data, parity) = out.split_at_mut(self.k);
            let err = |e: reed_solomon_simd::Error| Error::Config(format!("erasure encode: {e}"));
            // One encoder per thread, reset for each chunk: its working space (several shards'
            // worth) is allocated once instead of mapped, faulted in and unmapped per chunk.
            ENCODER.with(|cell| {
                let mut slot = cell.borrow_mut();
                let enc = match slot.as_mut() {
                    Some(e) => {
                        e.reset(self.k, self.m, s).map_err(err)?;
                        e
                    }
                    None => slot.insert(
                        reed_solomon_simd::ReedSolomonEncoder::new(self.k, self.m, s)
                            .map_err(err)?,
                    ),
                };
                for d in data.iter() {
                    enc.add_original_shard(&**d).map_err(err)?;
                }
                let rec = enc.encode().map_err(err)?;
                for (dst, src) in parity.iter_mut().zip(rec.recovery_iter()) {
                    dst.copy_from_slice(src);
                }
                Ok::<(), Error>(())
            })?;
        }
        Ok(())
    }

    /// Rebuilds every missing shard in place from any `k` present ones.
    pub fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<()> {
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < self.k {
            return Err(Error::ReadQuorum {
                chunk: String::new(),
                intact: present,
                needed: self.k,
            });
        }
        if present == shards.len() {
            return Ok(());
        }
        let data_missing = shards[..self.k].iter().any(|s| s.is_none());
        if data_missing {
            let original = shards[..self.k]
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
            let recovery = shards[self.k..]
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
            let restored = reed_solomon_simd::decode(self.k, self.m, original, recovery)
                .map_err(|e| Error::Corrupt(format!("erasure decode: {e}")))?;
            for (i, data) in restored {
                shards[i] = Some(data);
            }
        }
        if shards[self.k..].iter().any(|s| s.is_none()) {
            let data: Vec<&Vec<u8>> = shards[..self.k].iter().flatten().collect();
            let parity = reed_solomon_simd::encode(self.k, self.m, data)
                .map_err(|e| Error::Corrupt(format!("erasure encode: {e}")))?;
            for (i, p) in parity.into_iter().enumerate() {
                if shards[self.k + i].is_none() {
                    shards[self.k + i] = Some(p);
                }
            }
        }
        Ok(())
    }

    /// Joins the data shards back into a chunk of `len` bytes.
    pub fn join(&self, shards: &[Option<Vec<u8>>], len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        for s in shards[..self.k].iter() {
            let s = s
                .as_ref()
                .ok_or_else(|| Error::Corrupt("data shard missing after reconstruction".into()))?;
            let take = (len - out.len()).min(s.len());
            out.extend_from_slice(&s[..take]);
        }
        if out.len() != len {
            return Err(Error::Corrupt("shards shorter than the chunk".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every combination of up to `m` lost shards is rebuilt bit-exact.
    fn check_all_losses(codec: Codec, data: &[u8]) {
        let shards = codec.encode(data).unwrap();
        let n = codec.n();
        // encode_into lays out the same shards.
        let s = codec.shard_len(data.len());
        let mut bufs = vec![vec![0xeeu8; s]; n];
        let mut slices: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        codec.encode_into(data, &mut slices).unwrap();
        assert_eq!(bufs, shards);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize > codec.m {
                continue;
            }
            let mut s: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
            for (i, slot) in s.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *slot = None;
                }
            }
            codec.reconstruct(&mut s).unwrap();
            assert_eq!(codec.join(&s, data.len()).unwrap(), data);
            for (i, shard) in s.iter().enumerate() {
                assert_eq!(
                    shard.as_ref().unwrap(),
                    &shards[i],
                    "shard {i} mask {mask:b}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn reconstructs_every_loss_combination(
            data in proptest::collection::vec(any::<u8>(), 1..5000),
            k in 1usize..6,
            m in 0usize..4,
        ) {
            check_all_losses(Codec { k, m }, &data);
        }
    }

    #[test]
    fn too_many_losses_is_an_error() {
        let codec = Codec { k: 4, m: 2 };
        let shards = codec.encode(&[7u8; 1000]).unwrap();
        let mut s: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        s[0] = None;
        s[3] = None;
        s[5] = None;
        assert!(matches!(
            codec.reconstruct(&mut s),
            Err(Error::ReadQuorum { .. })
        ));
    }
}
