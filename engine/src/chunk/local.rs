//! A local disk: a directory holding its identity file and `volumes/`, the append-only
//! volume files its shards live in ([`super::volume`]). The one [`ShardIo`] implementation.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::RwLock;

use super::shard::{self, ShardHeader, HEADER_LEN};
use super::shard_io::{DiskState, ShardRead};
use super::shard_io::{Pending, ShardAt, ShardIo};
use super::volume::{self, Appender, PendingSync, ShardBuf, WritePolicy};
use crate::error::{Error, Result};
use crate::meta::ShardLoc;

/// How much of a shard is read before it is verified (whole blocks, at least one): small
/// enough to be hashed from the CPU's L2 cache right after the read copied it there.
const VERIFY_PIECE: usize = 256 << 10;

/// One disk directory.
#[derive(Debug)]
pub struct LocalDisk {
    /// Position in the set.
    pub index: usize,
    /// Directory.
    pub path: PathBuf,
    state: RwLock<DiskState>,
    appender: Appender,
    fsync: bool,
}

impl LocalDisk {
    /// The disk at `path`, position `index`, not probed yet (state `Missing`).
    pub(crate) fn new(index: usize, path: PathBuf, policy: WritePolicy) -> LocalDisk {
        LocalDisk {
            index,
            appender: Appender::new(&path, policy),
            path,
            state: RwLock::new(DiskState::Missing),
            fsync: policy.fsync,
        }
    }

    /// Current state.
    pub fn state(&self) -> DiskState {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or(DiskState::Missing)
    }

    /// Records a probed state; a disk that is not online forgets the volume it appended to.
    pub(crate) fn set_state(&self, s: DiskState) {
        if s != DiskState::Online {
            self.appender.reset();
        }
        if let Ok(mut g) = self.state.write() {
            *g = s;
        }
    }

    /// Starts appending to a fresh volume (a replaced disk holds none of the old ones).
    pub(crate) fn forget_volume(&self) {
        self.appender.reset();
    }

    /// Path of a volume file on this disk.
    pub fn volume_path(&self, id: u64) -> PathBuf {
        volume::volume_path(&self.path, id)
    }
}

/// Where a shard of `shard_len` payload bytes at `loc` ends (header and payload), if its
/// aligned region ends where a file can: a place from a record or from a peer is checked
/// before any arithmetic is done on it.
fn shard_end(loc: ShardLoc, shard_len: usize) -> Option<u64> {
    loc.offset
        .checked_add(volume::region_len(shard_len))
        .filter(|end| *end <= i64::MAX as u64)
        .map(|_| loc.offset + (HEADER_LEN + shard_len) as u64)
}

impl Pending for PendingSync {
    fn key(&self) -> u64 {
        self.volume.id
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn make_durable(&self) -> Result<()> {
        self.volume.make_durable(self.seq)
    }
}

impl ShardIo for LocalDisk {
    type Pending = PendingSync;

    fn is_online(&self) -> bool {
        self.state() == DiskState::Online
    }

    fn append(&self, shard: &ShardBuf, data: bool) -> Result<(ShardLoc, PendingSync)> {
        let r = self.appender.reserve(shard.region().len() as u64)?;
        let pending = r.write(shard, data)?;
        Ok((
            ShardLoc {
                volume: r.volume,
                offset: r.offset,
            },
            pending,
        ))
    }

    fn rewrite(&self, loc: ShardLoc, shard: &ShardBuf) -> Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.volume_path(loc.volume))?;
        // A shard is rewritten where it is: never past the volume's end.
        let size = f.metadata()?.len();
        if shard_end(loc, shard.payload().len()).is_none_or(|end| end > size) {
            return Err(Error::Corrupt(format!(
                "no shard at volume {:016x} offset {} to rewrite: the volume ends at {size}",
                loc.volume, loc.offset
            )));
        }
        let region = shard.region();
        f.write_all_at(&region[..HEADER_LEN + shard.payload().len()], loc.offset)?;
        if self.fsync {
            f.sync_data()?;
        }
        Ok(())
    }

    fn read(&self, at: ShardAt<'_>, lo: usize, hi: usize) -> ShardRead {
        let ShardAt {
            chunk,
            index,
            loc,
            len: shard_len,
        } = at;
        if !self.is_online() || !loc.is_some() || lo > hi || hi > shard_len {
            return ShardRead::Missing;
        }
        let Some(end) = shard_end(loc, shard_len) else {
            return ShardRead::Missing;
        };
        let bl = shard::block_len(shard_len);
        let first = lo / bl;
        let (a, b) = if lo == hi {
            (lo, lo)
        } else {
            (
                first * bl,
                hi.div_ceil(bl).saturating_mul(bl).min(shard_len),
            )
        };
        let path = self.volume_path(loc.volume);
        let payload_at = loc.offset + HEADER_LEN as u64;
        // Header and payload into separate buffers, so the payload is handed on without a copy.
        let mut header = [0u8; HEADER_LEN];
        let read = File::open(&path).and_then(|f| {
            // Ask for all of it at once (a fresh descriptor has no readahead history).
            // SAFETY: plain syscall on an open descriptor.
            let (at, len) = if a == 0 {
                (loc.offset, HEADER_LEN + b)
            } else {
                (payload_at + a as u64, (b - a).max(1))
            };
            unsafe {
                libc::posix_fadvise(
                    std::os::unix::io::AsRawFd::as_raw_fd(&f),
                    at as i64,
                    len as i64,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
            let mut verified = || {
                f.read_exact_at(&mut header, loc.offset)?;
                let h = match ShardHeader::decode(&header) {
                    Ok(h) if &h.chunk == chunk && h.index as usize == index => h,
                    _ => return Ok((Vec::new(), false)),
                };
                // Each piece is verified right after it is read, while it is still in the cache.
                let piece = bl * (VERIFY_PIECE / bl).max(1);
                volume::read_checked_at_new(&f, b - a, payload_at + a as u64, piece, |at, p| {
                    h.verify_blocks(shard_len, first + at / bl, p)
                })
            };
            match verified()? {
                // Corrupt only where the whole shard can be: in a volume cut short inside it (a
                // lost tail) it is missing, written anew elsewhere by repair, not rewritten in
                // a place the volume no longer has.
                (_, false) if f.metadata()?.len() < end => Err(ErrorKind::UnexpectedEof.into()),
                r => Ok(r),
            }
        });
        let data = match read {
            Ok((_, false)) => return ShardRead::Corrupt,
            Ok((p, true)) => p,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::UnexpectedEof) => {
                return ShardRead::Missing
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "shard read failed: {e}");
                return ShardRead::Missing;
            }
        };
        ShardRead::Ok(bytes::Bytes::from(data).slice(lo - a..hi - a))
    }

    fn present(&self, loc: ShardLoc, shard_len: usize) -> bool {
        self.is_online()
            && loc.is_some()
            && shard_end(loc, shard_len).is_some_and(|end| {
                fs::metadata(self.volume_path(loc.volume)).is_ok_and(|m| m.len() >= end)
            })
    }

    fn release(&self, loc: ShardLoc, shard_len: usize) {
        if !loc.is_some() || !self.is_online() {
            return;
        }
        if shard_end(loc, shard_len).is_none() {
            tracing::warn!(
                ?loc,
                shard_len,
                "no shard can be at this place: nothing freed"
            );
            return;
        }
        let path = self.volume_path(loc.volume);
        if let Err(e) = volume::punch(&path, loc.offset, volume::region_len(shard_len)) {
            tracing::warn!(path = %path.display(), "could not free shard space: {e}");
        }
    }

    fn trim_preallocation(&self) -> u64 {
        self.appender.trim()
    }
}

/// The [`ShardIo`] contract (`shard_io/contract.rs`) run against the local implementation.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::shard_io::contract;

    /// An online disk in a fresh directory (kept while the `TempDir` lives).
    fn disk() -> (tempfile::TempDir, LocalDisk) {
        let dir = tempfile::tempdir().unwrap();
        let policy = WritePolicy {
            fsync: true,
            direct: false,
            cache_writes: true,
        };
        std::fs::create_dir_all(dir.path().join(volume::VOLUME_DIR)).unwrap();
        let d = LocalDisk::new(0, dir.path().to_path_buf(), policy);
        d.set_state(DiskState::Online);
        (dir, d)
    }

    #[test]
    fn appended_shards_read_back_verified_in_whole_and_in_part() {
        let (_dir, d) = disk();
        let chunk = [7u8; 32];
        let (_, pa) = d.append(&contract::shard(&chunk, 1, 0), true).unwrap();
        let (_, pb) = d.append(&contract::shard(&chunk, 5, 9), false).unwrap();
        assert_eq!(pa.key(), pb.key(), "one volume: one flush covers both");
        assert!(pb.seq() > pa.seq());
        contract::appended_shards_read_back_verified_in_whole_and_in_part(&d);
    }

    #[test]
    fn a_corrupt_shard_is_detected_and_rewritten_in_place() {
        let (_dir, d) = disk();
        contract::a_corrupt_shard_is_detected_and_rewritten_in_place(&d, |loc, at, bytes| {
            let f = OpenOptions::new()
                .write(true)
                .open(d.volume_path(loc.volume))
                .unwrap();
            f.write_all_at(bytes, loc.offset + at).unwrap();
        });
    }

    #[test]
    fn a_shard_in_a_volume_cut_short_is_missing_not_corrupt() {
        let (_dir, d) = disk();
        let chunk = [3u8; 32];
        let shard = contract::shard(&chunk, 2, 4);
        let len = shard.payload().len();
        let (loc, p) = d.append(&shard, true).unwrap();
        p.make_durable().unwrap();
        let at = ShardAt {
            chunk: &chunk,
            index: 2,
            loc,
            len,
        };
        let f = OpenOptions::new()
            .write(true)
            .open(d.volume_path(loc.volume))
            .unwrap();
        // A payload byte early in the shard flipped: corrupt, whatever is read of it.
        f.write_all_at(
            &[!shard.payload()[10]],
            loc.offset + (HEADER_LEN + 10) as u64,
        )
        .unwrap();
        assert!(matches!(d.read(at, 0, len), ShardRead::Corrupt));
        assert!(matches!(d.read(at, 0, 64), ShardRead::Corrupt));
        // The volume then cut short inside the shard: missing, so that repair writes it anew
        // rather than rewriting it past the volume's end (which a rewrite refuses).
        f.set_len(loc.offset + (HEADER_LEN + len / 2) as u64)
            .unwrap();
        assert!(matches!(d.read(at, 0, len), ShardRead::Missing));
        assert!(matches!(d.read(at, 0, 64), ShardRead::Missing));
        assert!(d.rewrite(loc, &shard).is_err());
        // So is one whose header is gone bad too.
        f.write_all_at(&[0xff; 8], loc.offset).unwrap();
        assert!(matches!(d.read(at, 0, len), ShardRead::Missing));
    }

    #[test]
    fn released_shards_read_as_missing_and_offline_disks_serve_nothing() {
        let (_dir, d) = disk();
        contract::released_shards_read_as_missing_and_offline_disks_serve_nothing(&d, |on| {
            d.set_state(if on {
                DiskState::Online
            } else {
                DiskState::Missing
            })
        });
    }
}
