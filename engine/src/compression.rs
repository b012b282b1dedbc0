//! Optional zstd compression of stored bytes: of each chunk, and of inline objects. Decided per
//! piece: the compressed form is kept only when it saves at least [`MIN_SAVING_PERCENT`] of the
//! plain size, and a large piece is first tried on a sample from its middle, so data that does
//! not compress (JPEG, video, encrypted backups) costs one small trial, not a whole pass.
//!
//! Names, checksums, ETags and sizes are always those of the plain bytes: a chunk is named by
//! the BLAKE3 of its plain bytes whatever its stored form (dedup is unchanged).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a store or a bucket asks for new data: `off`, or `zstd` at a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Compression {
    /// Stored as given.
    #[default]
    Off,
    /// zstd at this level (1 ..= 19; `zstd` alone is level [`Compression::DEFAULT_LEVEL`]).
    Zstd(i32),
}

impl Compression {
    /// zstd's own default: fast (hundreds of MB/s per core) and a good ratio on text.
    pub const DEFAULT_LEVEL: i32 = 3;
    /// The highest level accepted (zstd's 20..22 need far more memory per writer).
    pub const MAX_LEVEL: i32 = 19;
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Off => f.write_str("off"),
            Compression::Zstd(l) => write!(f, "zstd:{l}"),
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    /// `off`, `zstd` or `zstd:LEVEL` (1..=19).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(Compression::Off);
        }
        let bad = || format!("compression {s:?}: expected off, zstd or zstd:LEVEL (1..=19)");
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, l.trim().parse::<i32>().map_err(|_| bad())?),
            None => (s, Compression::DEFAULT_LEVEL),
        };
        if !name.eq_ignore_ascii_case("zstd") || !(1..=Compression::MAX_LEVEL).contains(&level) {
            return Err(bad());
        }
        Ok(Compression::Zstd(level))
    }
}

impl TryFrom<String> for Compression {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Compression> for String {
    fn from(c: Compression) -> String {
        c.to_string()
    }
}

/// How stored bytes are encoded (in chunk records, shard headers and inline manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Encoding {
    /// The plain bytes.
    #[default]
    Plain = 0,
    /// One zstd frame holding the plain bytes.
    Zstd = 1,
}

impl Encoding {
    /// The encoding numbered `b` on disk.
    pub fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            0 => Some(Encoding::Plain),
            1 => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// The share of the plain size compression must save for the compressed form to be stored.
pub const MIN_SAVING_PERCENT: usize = 10;
/// Pieces shorter than this are stored plain (a zstd frame's own overhead eats the gain).
const MIN_LEN: usize = 128;
/// Size of the trial sample taken from a large piece.
const SAMPLE: usize = 64 * 1024;

fn worth_it(plain: usize, stored: usize) -> bool {
    stored * 100 <= plain * (100 - MIN_SAVING_PERCENT)
}

/// The compressed form of `data` when `c` asks for one and it saves enough; `None`: store it
/// plain.
pub fn compress(data: &[u8], c: Compression) -> Option<Vec<u8>> {
    let Compression::Zstd(level) = c else {
        return None;
    };
    if data.len() < MIN_LEN {
        return None;
    }
    if data.len() >= 4 * SAMPLE {
        let mid = data.len() / 2 - SAMPLE / 2;
        let sample = &data[mid..mid + SAMPLE];
        let trial = zstd_frame(sample, level)?;
        if !worth_it(sample.len(), trial.len()) {
            return None;
        }
    }
    let out = zstd_frame(data, level)?;
    worth_it(data.len(), out.len()).then_some(out)
}

/// One zstd frame with its content checksum (4 bytes): a frame damaged where nothing else
/// checks it (an inline object in the metadata store) fails to decompress.
fn zstd_frame(data: &[u8], level: i32) -> Option<Vec<u8>> {
    let mut z = zstd::bulk::Compressor::new(level).ok()?;
    z.include_checksum(true).ok()?;
    z.compress(data).ok()
}

/// The plain bytes of `stored`, which must be exactly `plain_len` long: anything else (a
/// damaged frame, a frame that would grow larger) is corruption, never a bigger allocation.
pub fn decompress(stored: &[u8], encoding: Encoding, plain_len: usize) -> Result<Vec<u8>> {
    match encoding {
        Encoding::Plain => Ok(stored.to_vec()),
        Encoding::Zstd => {
            let out = zstd::bulk::decompress(stored, plain_len)
                .map_err(|e| Error::Corrupt(format!("zstd frame: {e}")))?;
            if out.len() != plain_len {
                return Err(Error::Corrupt(format!(
                    "zstd frame holds {} bytes, {plain_len} expected",
                    out.len()
                )));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        let line = b"2026-12-07T00:00:01Z INFO request op=GetObject status=200 bytes=4096\n";
        line.iter().copied().cycle().take(n).collect()
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn settings_parse_and_print() {
        assert_eq!("off".parse::<Compression>().unwrap(), Compression::Off);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd(3));
        assert_eq!(
            " zstd:9".parse::<Compression>().unwrap(),
            Compression::Zstd(9)
        );
        for bad in ["zstd:0", "zstd:20", "zstd:x", "gzip", "lz4:1", ""] {
            assert!(bad.parse::<Compression>().is_err(), "{bad}");
        }
        for c in [
            Compression::Off,
            Compression::Zstd(1),
            Compression::Zstd(19),
        ] {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
    }

    #[test]
    fn text_is_compressed_and_comes_back() {
        for n in [MIN_LEN, 4096, 300_000, 4 << 20] {
            let plain = text(n);
            let z = compress(&plain, Compression::Zstd(3)).expect("text compresses");
            assert!(n < 4096 || z.len() * 10 < plain.len(), "{n}: {}", z.len());
            assert_eq!(decompress(&z, Encoding::Zstd, n).unwrap(), plain);
        }
        assert!(compress(&text(MIN_LEN - 1), Compression::Zstd(3)).is_none());
        assert!(compress(&text(4096), Compression::Off).is_none());
    }

    #[test]
    fn random_data_is_left_plain() {
        for n in [1000, 100_000, 4 << 20] {
            assert!(compress(&random(n, n as u64), Compression::Zstd(3)).is_none());
        }
        // Random with a compressible head: the sample from the middle decides.
        let mut mixed = text(64 * 1024);
        mixed.extend(random(1 << 20, 5));
        assert!(compress(&mixed, Compression::Zstd(3)).is_none());
    }

    #[test]
    fn damaged_or_lying_frames_are_corruption() {
        let plain = text(100_000);
        let z = compress(&plain, Compression::Zstd(3)).unwrap();
        assert!(decompress(&z, Encoding::Zstd, plain.len() - 1).is_err());
        assert!(decompress(&z, Encoding::Zstd, plain.len() + 1).is_err());
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        assert!(decompress(&bad, Encoding::Zstd, plain.len()).is_err());
        assert!(decompress(&z[..z.len() / 2], Encoding::Zstd, plain.len()).is_err());
        assert_eq!(Encoding::from_u8(1), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_u8(2), None);
    }
}
