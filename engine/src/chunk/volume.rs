//! Volume files: large append-only files on each disk that hold shards back to back.
//!
//! A shard is written once, at a 4 KiB-aligned offset of a volume, as header + payload (see
//! [`crate::chunk::shard`]); the chunk record in LMDB says which volume and offset. Writing shards into a
//! few large files instead of one file per shard saves the file system's inode allocation, a
//! rename and a directory fsync per shard, which cost more CPU than all hashing and coding of a
//! large put.
//!
//! Each process appends to its own volume per disk (created on first write, held with an
//! exclusive `flock` while open so GC never deletes it), preallocating space in growing steps.
//! Space of removed shards is given back with `fallocate(PUNCH_HOLE)`; a volume with no live shard
//! left is deleted by GC's orphan sweep.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::chunk::shard::{ShardHeader, HEADER_LEN};
use crate::error::{Error, Result};

/// Directory of a disk holding its volume files.
pub const VOLUME_DIR: &str = "volumes";
/// Alignment of every shard in a volume (a file system block, so punched space is freed).
pub const ALIGN: u64 = 4096;
/// A process starts a new volume once its current one reaches this size.
pub const MAX_VOLUME_BYTES: u64 = 1 << 30;
const PREALLOC_FIRST: u64 = 1 << 20;
const PREALLOC_MAX: u64 = 64 << 20;
/// Bytes written to a volume since its last `fdatasync` began after which a background
/// `fdatasync` is started (durable writes only). A device with a volatile write cache makes
/// the flush of a sync cost about as much as the data written since the previous one; syncing
/// ahead while a large put is still writing leaves the sync before its commit little to do.
/// Measured with fio, six streams paced at 50 MiB/s each, 128 MiB per stream: 205 MB/s with
/// one sync at the end, 300 MB/s (the pace) with one every 16 MiB; in the engine (`load`, 4 A/B
/// rounds), 256 MiB puts went from 153 to 182 MB/s with 8 MiB (4 MiB: no better).
pub const SYNC_AHEAD_BYTES: u64 = 8 << 20;

/// How shards are written to volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePolicy {
    /// Writes are made durable (fdatasync) before a commit.
    pub fsync: bool,
    /// `O_DIRECT` writes (see [`crate::EngineConfig::direct_io`]).
    pub direct: bool,
    /// Keep durable data shards' pages in the page cache (see
    /// [`crate::EngineConfig::cache_writes`]). Parity shards' pages are always dropped once a
    /// sync has made them durable (drop-behind), and data shards' too when this is false.
    pub cache_writes: bool,
}

/// Path of volume `id` on the disk at `disk`.
pub fn volume_path(disk: &Path, id: u64) -> PathBuf {
    disk.join(VOLUME_DIR).join(format!("{id:016x}.vol"))
}

/// The volume id a file name stands for (`<16 hex>.vol`), if it is one.
pub fn parse_volume_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".vol")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|id| *id != 0)
}

/// Bytes a shard of `shard_len` payload bytes occupies in a volume (header included, aligned).
pub fn region_len(shard_len: usize) -> u64 {
    ((HEADER_LEN + shard_len) as u64).div_ceil(ALIGN) * ALIGN
}

/// One shard laid out as it is written to a volume: a 4 KiB-aligned region holding the header,
/// the payload and zero padding, so it can be written with `O_DIRECT` (no copy into the page
/// cache) in one call.
pub struct ShardBuf {
    buf: Vec<u8>,
    start: usize,
    shard_len: usize,
}

impl ShardBuf {
    /// A zeroed buffer for a shard of `shard_len` payload bytes.
    pub fn new(shard_len: usize) -> ShardBuf {
        let region = region_len(shard_len) as usize;
        let buf = vec![0u8; region + ALIGN as usize];
        let start = buf.as_ptr().align_offset(ALIGN as usize);
        ShardBuf {
            buf,
            start,
            shard_len,
        }
    }

    /// A buffer holding a copy of `payload`.
    pub fn from_payload(payload: &[u8]) -> ShardBuf {
        let mut b = ShardBuf::new(payload.len());
        b.payload_mut().copy_from_slice(payload);
        b
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let a = self.start + HEADER_LEN;
        &self.buf[a..a + self.shard_len]
    }

    /// The payload, to fill in.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let a = self.start + HEADER_LEN;
        &mut self.buf[a..a + self.shard_len]
    }

    /// Writes the header in front of the payload.
    pub fn set_header(&mut self, h: &ShardHeader) {
        self.buf[self.start..self.start + HEADER_LEN].copy_from_slice(&h.encode());
    }

    /// The whole aligned region as written to the volume.
    pub fn region(&self) -> &[u8] {
        &self.buf[self.start..self.start + region_len(self.shard_len) as usize]
    }
}

/// An open volume file, and how much of what was written to it is durable.
///
/// Writes are not synced one by one: a writer notes its write's sequence number and, before it
/// commits, asks for everything up to it to be durable ([`VolumeFile::make_durable`]). One
/// `fdatasync` covers every write completed before it started, so concurrent writers (and the
/// many chunks of one large put) share syncs instead of paying one each.
#[derive(Debug)]
pub struct VolumeFile {
    /// Volume id.
    pub(crate) id: u64,
    pub(crate) file: File,
    fsync: bool,
    /// Opened with `O_DIRECT` (no page cache, no writeback to start).
    direct: bool,
    /// Pages a sync made durable are dropped from the page cache (buffered durable writes).
    drop_behind: bool,
    /// ... except those of data shards.
    cache_data: bool,
    sync: Mutex<SyncState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Writes completed so far.
    written: u64,
    /// Every write up to this number is durable.
    durable: u64,
    /// An fdatasync is running.
    syncing: bool,
    /// A sync failed: nothing written to this file may be counted durable any more.
    failed: Option<String>,
    /// fdatasync calls made.
    syncs: u64,
    /// Bytes written since the last fdatasync began.
    unsynced_bytes: u64,
    /// Completed writes whose pages leave the page cache once durable (drop-behind): their
    /// sequence number, offset and length.
    to_drop: Vec<(u64, u64, u64)>,
}

impl VolumeFile {
    /// Notes a completed write of `len` bytes; returns its sequence number. Once
    /// [`SYNC_AHEAD_BYTES`] have been written since the last sync began, starts one in the
    /// background (see there).
    fn wrote(self: &Arc<Self>, offset: u64, len: u64, keep_cached: bool) -> u64 {
        let mut st = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        st.written += 1;
        st.unsynced_bytes += len;
        let seq = st.written;
        if self.drop_behind && !keep_cached {
            st.to_drop.push((seq, offset, len));
        }
        if self.fsync && !st.syncing && st.failed.is_none() && st.unsynced_bytes >= SYNC_AHEAD_BYTES
        {
            st.syncing = true;
            st.unsynced_bytes = 0;
            drop(st);
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("sync-ahead".into())
                .spawn(move || me.finish_sync(seq, me.file.sync_data()));
            if spawned.is_err() {
                // No thread: the sync before the commit does it all, as without sync-ahead.
                let mut st = self.sync.lock().unwrap_or_else(|e| e.into_inner());
                st.syncing = false;
                self.cv.notify_all();
            }
        }
        seq
    }

    /// Records the outcome of an fdatasync that began once write `target` had completed; then
    /// drops the pages it made durable that are not to stay cached (drop-behind).
    fn finish_sync(&self, target: u64, r: std::io::Result<()>) {
        let mut st = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        st.syncing = false;
        st.syncs += 1;
        let mut durable_now = Vec::new();
        match r {
            Ok(()) => {
                st.durable = st.durable.max(target);
                // Writes up to `target` had completed when the sync began: their pages are
                // clean now, so the kernel can drop them.
                let n = st.to_drop.partition_point(|&(seq, _, _)| seq <= target);
                durable_now = st.to_drop.drain(..n).collect();
            }
            Err(e) => {
                st.failed = Some(format!("fdatasync of volume {:016x}: {e}", self.id));
                st.to_drop.clear();
            }
        }
        self.cv.notify_all();
        drop(st);
        for (_, offset, len) in durable_now {
            // SAFETY: plain syscall on an open descriptor. A failure just leaves the pages
            // cached.
            unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    offset as i64,
                    len as i64,
                    libc::POSIX_FADV_DONTNEED,
                );
            }
        }
    }

    /// Returns once every write up to `seq` is durable (at once without fsync durability).
    pub fn make_durable(&self, seq: u64) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let mut st = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = &st.failed {
                return Err(Error::Io(std::io::Error::other(e.clone())));
            }
            if st.durable >= seq {
                return Ok(());
            }
            if st.syncing {
                st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // This sync covers everything written so far.
            let target = st.written;
            st.syncing = true;
            st.unsynced_bytes = 0;
            drop(st);
            self.finish_sync(target, self.file.sync_data());
            st = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl VolumeFile {
    /// How many fdatasync calls this volume has had.
    #[cfg(test)]
    pub fn sync_count(&self) -> u64 {
        self.sync.lock().map(|s| s.syncs).unwrap_or(0)
    }
}

/// A write that is not durable yet: `make_durable` on its volume makes it so.
#[derive(Debug, Clone)]
pub struct PendingSync {
    /// The volume written to.
    pub volume: Arc<VolumeFile>,
    /// The write's sequence number in it.
    pub seq: u64,
}

/// The volume one process appends to on one disk.
#[derive(Debug)]
pub(crate) struct Appender {
    disk: PathBuf,
    policy: WritePolicy,
    active: Mutex<Option<Active>>,
}

#[derive(Debug)]
struct Active {
    id: u64,
    file: Arc<VolumeFile>,
    tail: u64,
    allocated: u64,
    step: u64,
}

/// A region reserved for one shard.
pub(crate) struct Reservation {
    pub(crate) volume: u64,
    pub(crate) file: Arc<VolumeFile>,
    pub(crate) offset: u64,
}

impl Reservation {
    /// Writes a shard's region at the reserved place; what it returns makes it durable.
    /// `data`: a data shard, kept in the page cache once durable if the policy says so
    /// (parity never is).
    pub(crate) fn write(&self, shard: &ShardBuf, data: bool) -> Result<PendingSync> {
        self.file.file.write_all_at(shard.region(), self.offset)?;
        if self.file.fsync && !self.file.direct {
            // Start writing it back now, without waiting: the device works while the next
            // chunks are hashed and coded, and the fdatasync before the commit finds little
            // left to do.
            // SAFETY: plain syscall on an open descriptor.
            unsafe {
                libc::sync_file_range(
                    self.file.file.as_raw_fd(),
                    self.offset as i64,
                    shard.region().len() as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        Ok(PendingSync {
            volume: self.file.clone(),
            seq: self.file.wrote(
                self.offset,
                shard.region().len() as u64,
                data && self.file.cache_data,
            ),
        })
    }
}

impl Appender {
    pub(crate) fn new(disk: &Path, policy: WritePolicy) -> Appender {
        Appender {
            disk: disk.to_path_buf(),
            policy,
            active: Mutex::new(None),
        }
    }

    /// Reserves `len` bytes (a multiple of [`ALIGN`]) at the end of the current volume, starting
    /// a new volume when there is none, it is full, or it was deleted under us.
    pub(crate) fn reserve(&self, len: u64) -> Result<Reservation> {
        let mut g = self
            .active
            .lock()
            .map_err(|_| Error::Format("volume lock poisoned".into()))?;
        if let Some(a) = g.as_ref() {
            let gone = a
                .file
                .file
                .metadata()
                .map(|m| m.nlink() == 0)
                .unwrap_or(true);
            if gone || a.tail + len > MAX_VOLUME_BYTES.max(len) {
                *g = None;
            }
        }
        if g.is_none() {
            *g = Some(self.create()?);
        }
        let a = g
            .as_mut()
            .ok_or_else(|| Error::Format("no active volume".into()))?;
        if a.tail + len > a.allocated {
            let need = a.tail + len - a.allocated;
            // Never more than a sixteenth of what is free: on a filling disk (or one that the
            // other disks' volumes share) space held ahead would be missing elsewhere.
            let step = match crate::fsutil::fs_capacity(&self.disk) {
                Some((_, free)) => a.step.min(free / 16 / ALIGN * ALIGN),
                None => a.step,
            };
            let mut grow = step.max(need);
            match preallocate(&a.file.file, a.allocated, grow) {
                Ok(()) => a.step = (a.step * 2).min(PREALLOC_MAX),
                // A nearly full disk: no room for a step ahead, perhaps for this shard.
                Err(e) if e.is_no_space() && grow > need => {
                    preallocate(&a.file.file, a.allocated, need)?;
                    grow = need;
                }
                Err(e) => return Err(e),
            }
            a.allocated += grow;
        }
        let offset = a.tail;
        a.tail += len;
        Ok(Reservation {
            volume: a.id,
            file: a.file.clone(),
            offset,
        })
    }

    /// Gives back the space preallocated beyond the current volume's last shard (the disk, or
    /// the filesystem it shares with other disks, is full), and starts preallocating small
    /// again. Returns the bytes given back.
    pub(crate) fn trim(&self) -> u64 {
        let Ok(mut g) = self.active.lock() else {
            return 0;
        };
        let Some(a) = g.as_mut() else {
            return 0;
        };
        a.step = PREALLOC_FIRST;
        if a.allocated <= a.tail {
            return 0;
        }
        let n = a.allocated - a.tail;
        match punch_file(&a.file.file, a.tail, n) {
            Ok(true) => {
                a.allocated = a.tail;
                n
            }
            _ => 0,
        }
    }

    /// Forgets the current volume (its disk went away); the next write starts a new one.
    pub(crate) fn reset(&self) {
        if let Ok(mut g) = self.active.lock() {
            *g = None;
        }
    }

    fn create(&self) -> Result<Active> {
        let dir = self.disk.join(VOLUME_DIR);
        if !dir.is_dir() {
            if !self.disk.is_dir() {
                return Err(Error::Io(std::io::Error::new(
                    ErrorKind::NotFound,
                    format!("disk {} is gone", self.disk.display()),
                )));
            }
            crate::private::create_dir(&dir)?;
            if self.policy.fsync {
                crate::fsutil::sync_dir(&self.disk)?;
            }
        }
        loop {
            let id = rand::random::<u64>();
            if id == 0 {
                continue;
            }
            let path = volume_path(&self.disk, id);
            // With `direct_io`, O_DIRECT: shards go from our buffers to the device without a
            // copy into the page cache. File systems without it (tmpfs) get buffered writes.
            let open = |direct: bool| {
                let mut o = crate::private::open_options();
                o.read(true).write(true).create_new(true);
                if direct {
                    o.custom_flags(libc::O_DIRECT);
                }
                o.open(&path)
            };
            let mut direct = self.policy.direct;
            let file = match open(direct) {
                Ok(f) => f,
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    let _ = fs::remove_file(&path);
                    direct = false;
                    open(false)?
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            };
            // Held while this process may append: GC never deletes a volume in use.
            file.try_lock()
                .map_err(|e| Error::Format(format!("cannot lock new volume: {e}")))?;
            if self.policy.fsync {
                crate::fsutil::sync_dir(&dir)?;
            }
            return Ok(Active {
                id,
                file: Arc::new(VolumeFile {
                    id,
                    file,
                    fsync: self.policy.fsync,
                    direct,
                    drop_behind: self.policy.fsync && !direct,
                    cache_data: self.policy.cache_writes,
                    sync: Mutex::new(SyncState::default()),
                    cv: Condvar::new(),
                }),
                tail: 0,
                allocated: 0,
                step: PREALLOC_FIRST,
            });
        }
    }
}

/// Extends `file` by `len` bytes of allocated space at `offset` (file systems without
/// `fallocate` just grow on write).
/// Reads exactly `len` bytes at `offset` into a new buffer that is never zeroed first (reads
/// are the hot path of every get: clearing a megabyte only to overwrite it costs as much as a
/// tenth of the read). A short file gives `UnexpectedEof`.
#[cfg(test)]
pub fn read_exact_at_new(f: &File, len: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    read_checked_at_new(f, len, offset, len, |_, _| true).map(|(buf, _)| buf)
}

/// Reads exactly `len` bytes at `offset` into a new buffer that is never zeroed first (reads
/// are the hot path of every get), in pieces of `piece` bytes, handing each piece to `check` as soon as
/// it is read (while it is still in the CPU's cache) and stopping at the first piece `check`
/// rejects. Returns the buffer and whether every piece passed.
pub fn read_checked_at_new(
    f: &File,
    len: usize,
    offset: u64,
    piece: usize,
    mut check: impl FnMut(usize, &[u8]) -> bool,
) -> std::io::Result<(Vec<u8>, bool)> {
    let piece = piece.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut checked = 0usize;
    while checked < len {
        let want = piece.min(len - checked);
        while buf.len() < checked + want {
            let done = buf.len();
            let spare = buf.spare_capacity_mut();
            // SAFETY: `pread` writes at most `checked + want - done` bytes into the spare
            // capacity (which holds `len - done`); only what it reports is counted.
            let n = unsafe {
                libc::pread(
                    f.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    checked + want - done,
                    (offset + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            // SAFETY: the first `done + n` bytes have been written by `pread`.
            unsafe { buf.set_len(done + n as usize) };
        }
        if !check(checked, &buf[checked..checked + want]) {
            return Ok((buf, false));
        }
        checked += want;
    }
    Ok((buf, true))
}

fn preallocate(file: &File, offset: u64, len: u64) -> Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as i64, len as i64) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(e.into()),
    }
}

/// Gives the space of `[offset, offset + len)` of a volume back to the file system. Returns
/// false when the file system cannot punch holes (the space then stays used until the whole
/// volume is deleted).
pub fn punch(path: &Path, offset: u64, len: u64) -> Result<bool> {
    let f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    punch_file(&f, offset, len)
}

pub(crate) fn punch_file(f: &File, offset: u64, len: u64) -> Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(e.into()),
    }
}

/// Byte ranges `[start, end)` of a file that hold data (not holes), by `SEEK_DATA`/`SEEK_HOLE`.
pub fn data_ranges(f: &File) -> Result<Vec<(u64, u64)>> {
    let size = f.metadata()?.len();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut off: i64 = 0;
    while (off as u64) < size {
        // SAFETY: plain syscalls on an open descriptor.
        let d = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if d < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            if e.raw_os_error() == Some(libc::EINVAL) {
                // No SEEK_DATA support: all of it counts as data.
                return Ok(vec![(0, size)]);
            }
            return Err(e.into());
        }
        // SAFETY: as above.
        let h = unsafe { libc::lseek(fd, d, libc::SEEK_HOLE) };
        if h < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        out.push((d as u64, h as u64));
        off = h;
    }
    Ok(out)
}

/// Punches every part of a volume outside the given live regions (`(offset, len)`, sorted) and
/// returns how many bytes of data that freed.
pub(crate) fn punch_outside(path: &Path, live: &[(u64, u64)]) -> Result<u64> {
    let f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let data = data_ranges(&f)?;
    let mut freed = 0u64;
    let mut li = 0;
    for (mut a, b) in data {
        // Walk the data range, skipping live regions.
        while a < b {
            while li < live.len() && live[li].0 + live[li].1 <= a {
                li += 1;
            }
            let (gap_end, next) = match live.get(li) {
                Some(&(s, l)) if s <= a => {
                    a = s + l;
                    continue;
                }
                Some(&(s, _)) => (s.min(b), s.min(b)),
                None => (b, b),
            };
            // Only whole blocks are freed; a partial block at a range end is left alone.
            let pa = a.div_ceil(ALIGN) * ALIGN;
            let pb = gap_end / ALIGN * ALIGN;
            if pb > pa && punch_file(&f, pa, pb - pa)? {
                freed += pb - pa;
            }
            a = next;
        }
    }
    Ok(freed)
}

/// Deletes a volume unless a process holds it open for appending. Returns whether it was deleted.
pub(crate) fn remove_if_unused(path: &Path) -> Result<bool> {
    let f = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if f.try_lock().is_err() {
        return Ok(false);
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// Every shard found in a volume file: `(offset, header)`, by scanning its data ranges for
/// shard headers at aligned offsets. For tools and tests; the engine itself finds shards through
/// the chunk records.
pub fn scan_shards(path: &Path) -> Result<Vec<(u64, ShardHeader)>> {
    let f = File::open(path)?;
    let mut out = Vec::new();
    for (a, b) in data_ranges(&f)? {
        let mut off = a / ALIGN * ALIGN;
        let mut h = [0u8; HEADER_LEN];
        while off < b {
            let n = f.read_at(&mut h, off)?;
            match ShardHeader::decode(&h[..n]) {
                Ok(hdr) => {
                    let codec = crate::chunk::erasure::Codec {
                        k: (hdr.k as usize).max(1),
                        m: hdr.m as usize,
                    };
                    let s = codec.shard_len(hdr.chunk_len as usize);
                    out.push((off, hdr));
                    off += region_len(s);
                }
                Err(_) => off += ALIGN,
            }
        }
    }
    Ok(out)
}

/// Volume files on a disk: `(id, path)`.
pub fn list_volumes(disk: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = fs::read_dir(disk.join(VOLUME_DIR)) else {
        return Vec::new();
    };
    let mut v: Vec<(u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let id = parse_volume_name(&e.file_name().to_string_lossy())?;
            Some((id, e.path()))
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(fsync: bool, direct: bool) -> WritePolicy {
        WritePolicy {
            fsync,
            direct,
            cache_writes: false,
        }
    }

    #[test]
    fn reads_into_fresh_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(read_exact_at_new(&f, 0, 5).unwrap(), Vec::<u8>::new());
        assert_eq!(read_exact_at_new(&f, 1000, 0).unwrap(), &data[..1000]);
        assert_eq!(
            read_exact_at_new(&f, 200_000, 99_999).unwrap(),
            &data[99_999..299_999]
        );
        let short = read_exact_at_new(&f, 2, 299_999).unwrap_err();
        assert_eq!(short.kind(), ErrorKind::UnexpectedEof);
    }

    /// Checked reads hand over every byte once, in order, in pieces of the size asked for, and
    /// stop at the first piece rejected.
    #[test]
    fn checked_reads_check_each_piece_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let mut seen = Vec::new();
        let (buf, ok) = read_checked_at_new(&f, 250_000, 7, 65_536, |at, piece| {
            assert_eq!(at, seen.len());
            assert!(piece.len() == 65_536 || at + piece.len() == 250_000);
            seen.extend_from_slice(piece);
            true
        })
        .unwrap();
        assert!(ok);
        assert_eq!(buf, &data[7..250_007]);
        assert_eq!(seen, buf);
        let mut calls = 0;
        let (_, ok) = read_checked_at_new(&f, 250_000, 0, 65_536, |at, _| {
            calls += 1;
            at < 65_536
        })
        .unwrap();
        assert!(!ok);
        assert_eq!(calls, 2, "stops at the first rejected piece");
        let short = read_checked_at_new(&f, 10, 299_995, 4, |_, _| true).unwrap_err();
        assert_eq!(short.kind(), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn names_roundtrip() {
        let p = volume_path(Path::new("/d"), 0xabc);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, "0000000000000abc.vol");
        assert_eq!(parse_volume_name(&name), Some(0xabc));
        assert_eq!(parse_volume_name("0000000000000000.vol"), None);
        assert_eq!(parse_volume_name("abc.vol"), None);
        assert_eq!(parse_volume_name("000000000000zzzz.vol"), None);
    }

    #[test]
    fn regions_are_aligned() {
        assert_eq!(region_len(0), 4096);
        assert_eq!(region_len(4096 - HEADER_LEN), 4096);
        assert_eq!(region_len(4097 - HEADER_LEN), 8192);
        assert_eq!(region_len(1 << 20), (1 << 20) + 4096);
    }

    /// tmpfs has no O_DIRECT: volumes there are written through the page cache.
    #[test]
    fn appends_work_without_direct_io() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let a = Appender::new(dir.path(), policy(true, true));
        let buf = ShardBuf::from_payload(&[7u8; 5000]);
        let r = a.reserve(buf.region().len() as u64).unwrap();
        let p = r.write(&buf, true).unwrap();
        p.volume.make_durable(p.seq).unwrap();
        let r2 = a.reserve(buf.region().len() as u64).unwrap();
        assert_eq!(r2.offset, 8192);
        let f = File::open(volume_path(dir.path(), r.volume)).unwrap();
        let mut back = vec![0u8; 5000];
        f.read_exact_at(&mut back, HEADER_LEN as u64).unwrap();
        assert_eq!(back, vec![7u8; 5000]);
    }

    /// Space preallocated ahead of the last shard is given back by `trim`, and is never more
    /// than a sixteenth of what the filesystem has free.
    #[test]
    fn preallocation_is_bounded_by_free_space_and_trimmed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let a = Appender::new(dir.path(), policy(false, false));
        let buf = ShardBuf::from_payload(&[3u8; 5000]);
        let r = a.reserve(buf.region().len() as u64).unwrap();
        r.write(&buf, true).unwrap();
        let path = volume_path(dir.path(), r.volume);
        let allocated = || File::open(&path).unwrap().metadata().unwrap().blocks() * 512;
        let region = buf.region().len() as u64;
        let (_, free) = crate::fsutil::fs_capacity(dir.path()).unwrap();
        let held = allocated();
        assert!(held > region, "a step is preallocated: {held}");
        assert!(held <= PREALLOC_FIRST.min(free / 16).max(region) + ALIGN);
        assert_eq!(a.trim(), PREALLOC_FIRST - region);
        assert!(allocated() <= region + ALIGN, "{}", allocated());
        assert_eq!(a.trim(), 0);
        // Appending goes on after the trim, right after the last shard.
        let r2 = a.reserve(region).unwrap();
        assert_eq!(r2.offset, region);
        r2.write(&buf, true).unwrap();
    }

    /// One fdatasync makes every write before it durable; waiting for an older write costs
    /// none; concurrent writers share syncs.
    #[test]
    fn syncs_are_shared() {
        let dir = tempfile::tempdir().unwrap();
        let a = Appender::new(dir.path(), policy(true, true));
        let buf = ShardBuf::from_payload(&[1u8; 100]);
        let pending: Vec<PendingSync> = (0..5)
            .map(|_| a.reserve(ALIGN).unwrap().write(&buf, true).unwrap())
            .collect();
        let v = pending[0].volume.clone();
        v.make_durable(pending[4].seq).unwrap();
        assert_eq!(v.sync_count(), 1);
        v.make_durable(pending[2].seq).unwrap();
        assert_eq!(v.sync_count(), 1, "already durable");
        let p = a.reserve(ALIGN).unwrap().write(&buf, true).unwrap();
        v.make_durable(p.seq).unwrap();
        assert_eq!(v.sync_count(), 2);
        // 8 writers, 20 write+sync rounds each: every sync succeeds, fewer syncs than writes.
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let p = a.reserve(ALIGN).unwrap().write(&buf, true).unwrap();
                        p.volume.make_durable(p.seq).unwrap();
                    }
                });
            }
        });
        assert!(v.sync_count() <= 2 + 160, "{}", v.sync_count());
        let st = v.sync.lock().unwrap();
        assert_eq!(st.durable, st.written);
    }

    /// For each page of `f` in `[0, len)`: 1 if it is in the page cache, else 0.
    fn cached_pages(f: &File, len: usize) -> Vec<usize> {
        crate::testing::resident_pages(f, len)
            .unwrap()
            .into_iter()
            .map(usize::from)
            .collect()
    }

    /// Once a sync has made them durable, parity shards leave the page cache; data shards stay
    /// with `cache_writes` (the default) and leave too without it.
    #[test]
    fn durable_parity_leaves_the_page_cache_and_data_unless_cached_writes() {
        let dir = tempfile::tempdir().unwrap();
        for cache_writes in [true, false] {
            let disk = dir.path().join(format!("d{cache_writes}"));
            std::fs::create_dir_all(&disk).unwrap();
            let a = Appender::new(
                &disk,
                WritePolicy {
                    fsync: true,
                    direct: false,
                    cache_writes,
                },
            );
            let buf = ShardBuf::from_payload(&vec![5u8; (1 << 20) - HEADER_LEN]);
            let per = buf.region().len() as u64;
            // Four data shards, then two parity shards, of 1 MiB (256 pages) each.
            let pending: Vec<PendingSync> = (0..6)
                .map(|i| a.reserve(per).unwrap().write(&buf, i < 4).unwrap())
                .collect();
            let last = pending.last().unwrap();
            last.volume.make_durable(last.seq).unwrap();
            let resident = cached_pages(&last.volume.file, 6 << 20);
            let data: usize = resident[..1024].iter().sum();
            let parity: usize = resident[1024..].iter().sum();
            assert_eq!(
                parity, 0,
                "parity pages dropped (cache_writes {cache_writes})"
            );
            if cache_writes {
                assert_eq!(data, 1024, "data pages kept");
            } else {
                assert_eq!(data, 0, "data pages dropped");
            }
        }
    }

    /// Once [`SYNC_AHEAD_BYTES`] are written, a sync starts by itself, and the writes before it
    /// become durable without anyone waiting; a later wait needs only what came after.
    #[test]
    fn syncs_start_ahead_of_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        for direct in [false, true] {
            let a = Appender::new(dir.path(), policy(true, direct));
            let buf = ShardBuf::from_payload(&vec![3u8; (1 << 20) - HEADER_LEN]);
            let per = buf.region().len() as u64;
            let n = SYNC_AHEAD_BYTES / per;
            let pending: Vec<PendingSync> = (0..n + 2)
                .map(|_| a.reserve(per).unwrap().write(&buf, true).unwrap())
                .collect();
            let v = pending[0].volume.clone();
            let crossed = pending[n as usize - 1].seq;
            let t = std::time::Instant::now();
            while v.sync.lock().unwrap().durable < crossed {
                assert!(
                    t.elapsed().as_secs() < 30,
                    "no sync-ahead (direct {direct})"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(v.sync_count(), 1, "direct {direct}");
            v.make_durable(crossed).unwrap();
            assert_eq!(v.sync_count(), 1, "already durable");
            v.make_durable(pending.last().unwrap().seq).unwrap();
            assert_eq!(v.sync_count(), 2);
            a.reset();
        }
        // Without fsync durability nothing is synced, ahead or not.
        let a = Appender::new(dir.path(), policy(false, false));
        let buf = ShardBuf::from_payload(&vec![4u8; 1 << 20]);
        let mut last = None;
        for _ in 0..2 * SYNC_AHEAD_BYTES / (1 << 20) {
            last = Some(
                a.reserve(buf.region().len() as u64)
                    .unwrap()
                    .write(&buf, true)
                    .unwrap(),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(last.unwrap().volume.sync_count(), 0);
    }

    #[test]
    fn punch_outside_keeps_live_regions() {
        let dir = tempfile::tempdir().unwrap();
        let a = Appender::new(dir.path(), policy(false, false));
        let mut regions = Vec::new();
        for i in 0..6u8 {
            let buf = ShardBuf::from_payload(&vec![i + 1; 2 * ALIGN as usize]);
            assert_eq!(buf.region().len() as u64, 3 * ALIGN);
            assert_eq!(buf.region().as_ptr() as usize % ALIGN as usize, 0);
            let r = a.reserve(3 * ALIGN).unwrap();
            r.write(&buf, true).unwrap();
            regions.push((r.volume, r.offset));
        }
        let path = volume_path(dir.path(), regions[0].0);
        // Keep regions 1 and 4; everything else is garbage.
        let live = vec![(regions[1].1, 3 * ALIGN), (regions[4].1, 3 * ALIGN)];
        let freed = punch_outside(&path, &live).unwrap();
        assert_eq!(freed, 4 * 3 * ALIGN);
        let f = File::open(&path).unwrap();
        let mut buf = vec![0u8; 2 * ALIGN as usize];
        for (i, (_, off)) in regions.iter().enumerate() {
            f.read_exact_at(&mut buf, *off + HEADER_LEN as u64).unwrap();
            let want = if i == 1 || i == 4 { i as u8 + 1 } else { 0 };
            assert!(buf.iter().all(|b| *b == want), "region {i}");
        }
        // A volume held by its appender is not deleted; once released it is.
        assert!(!remove_if_unused(&path).unwrap());
        a.reset();
        assert!(remove_if_unused(&path).unwrap());
        assert!(!path.exists());
    }
}
