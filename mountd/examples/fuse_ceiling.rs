//! The ceiling of any FUSE filesystem on this machine: a mount that holds one file, `data`,
//! whose reads are answered from one constant 1 MiB buffer, with no storage, no hashing and no
//! allocation. It is mounted as mountd mounts (same init options, four threads, 1 MiB kernel
//! read-ahead), so what fio reads from it is what FUSE itself costs: the request round trips,
//! the kernel's copy of each reply into the page cache and the reader's copy out of it.
//!
//! `cargo run --release -p mountd --example fuse_ceiling -- MOUNTPOINT SIZE_MIB`; with
//! `CEILING_DIRECT_IO=1` the file is opened with `FOPEN_DIRECT_IO` (no page cache: what FUSE
//! costs without its page-cache copy and allocation).
//! (root; runs until SIGINT/SIGTERM or `fusermount3 -u MOUNTPOINT`). `scripts/mount-fio.sh`
//! reads it next to the mount and the engine.

use std::ffi::OsStr;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request,
};

const FILE_INO: u64 = 2;
const BUF: usize = 1 << 20;

struct Ceiling {
    size: u64,
    buf: Vec<u8>,
}

fn attr(ino: u64, size: u64) -> FileAttr {
    let dir = ino == 1;
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o444 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

impl Filesystem for Ceiling {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == 1 && name == "data" {
            reply.entry(
                &Duration::from_secs(60),
                &attr(FILE_INO, self.size),
                Generation(0),
            );
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
            1 => reply.attr(&Duration::from_secs(60), &attr(1, 0)),
            FILE_INO => reply.attr(&Duration::from_secs(60), &attr(FILE_INO, self.size)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == FILE_INO {
            // CEILING_DIRECT_IO=1: replies go straight to the reader's buffer (no page cache).
            let flags = match std::env::var("CEILING_DIRECT_IO").as_deref() {
                Ok("1") => FopenFlags::FOPEN_DIRECT_IO,
                _ => FopenFlags::empty(),
            };
            reply.opened(FileHandle(1), flags);
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let end = (offset + size as u64).min(self.size);
        let n = end.saturating_sub(offset).min(BUF as u64) as usize;
        reply.data(&self.buf[..n]);
    }
}

/// Raises the mount's bdi read-ahead to 1 MiB, as mountd does.
fn raise_readahead(mountpoint: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(mountpoint) {
        let dev = m.dev();
        let path = format!(
            "/sys/class/bdi/{}:{}/read_ahead_kb",
            libc::major(dev),
            libc::minor(dev)
        );
        if let Err(e) = std::fs::write(&path, "1024\n") {
            eprintln!("{path}: {e}");
        }
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mountpoint, mib] = &args[..] else {
        return Err("usage: fuse_ceiling MOUNTPOINT SIZE_MIB".into());
    };
    let mib: u64 = mib.parse().map_err(|e| format!("SIZE_MIB: {e}"))?;
    let fs = Ceiling {
        size: mib << 20,
        buf: (0..BUF).map(|i| (i % 251) as u8).collect(),
    };
    let mountpoint = std::path::PathBuf::from(mountpoint);
    // SIGINT/SIGTERM are taken with sigtimedwait below: blocked before any thread starts, so
    // that every thread inherits the mask.
    // SAFETY: a zeroed sigset_t is a valid value to initialise with sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain signal-mask calls on a local set.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut config = fuser::Config::default();
    config
        .mount_options
        .push(fuser::MountOption::FSName("fuse_ceiling".into()));
    config.mount_options.push(fuser::MountOption::RO);
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(fs, &mountpoint, &config).map_err(|e| e.to_string())?;
    raise_readahead(&mountpoint);
    println!("mounted on {}", mountpoint.display());
    let mp = mountpoint.to_string_lossy().into_owned();
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 500_000_000,
        };
        // SAFETY: waits for a signal of the blocked set, with a timeout.
        let got = unsafe { libc::sigtimedwait(&set, &mut info, &ts) };
        if got > 0 {
            break;
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        if !mounts.lines().any(|l| l.split(' ').nth(1) == Some(&mp)) {
            break;
        }
    }
    drop(session);
    Ok(())
}
