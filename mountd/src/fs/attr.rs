//! What `stat` shows: a file's, a directory's and an open file's attributes from the engine's
//! records and the POSIX model (`engine::posix`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::posix::{self, FileKind};
use engine::{ObjectMeta, PosixAttrs};
use fuser::{FileAttr, FileType, INodeNo};

use crate::openfile::OpenFile;

pub(super) fn to_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
    }
}

pub(super) fn ns_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A directory's attributes with times `t`: a bucket's creation, or, for the root and a
/// directory no marker object stands for, the mount's start (not 1970).
pub(super) fn dir_attr(ino: u64, t: SystemTime) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: FileType::Directory,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

/// A directory's attributes from its marker object (defaults when it has no POSIX attributes,
/// e.g. a marker made by another S3 tool).
pub(super) fn marker_attr(ino: u64, m: &ObjectMeta) -> FileAttr {
    let p = m
        .attrs
        .posix
        .unwrap_or_else(|| PosixAttrs::default_dir(m.last_modified_ns));
    let mut a = dir_attr(ino, to_time(m.last_modified_ns));
    a.perm = p.perm() as u16;
    a.uid = p.uid;
    a.gid = p.gid;
    a.atime = to_time(p.atime_ns);
    a.mtime = to_time(p.mtime_ns);
    a.ctime = to_time(p.ctime_ns);
    a
}

pub(super) fn file_attr(ino: u64, m: &ObjectMeta) -> FileAttr {
    let p = m.posix();
    FileAttr {
        ino: INodeNo(ino),
        size: m.size,
        blocks: m.size.saturating_sub(m.hole_bytes).div_ceil(512),
        atime: to_time(p.atime_ns),
        mtime: to_time(p.mtime_ns),
        ctime: to_time(p.ctime_ns),
        crtime: to_time(m.last_modified_ns),
        kind: kind_of(m),
        perm: p.perm() as u16,
        nlink: 1,
        uid: p.uid,
        gid: p.gid,
        rdev: rdev_of(m),
        flags: 0,
        blksize: 4096,
    }
}

/// Attributes of a file open for writing, from its shared state.
pub(super) fn open_attr(ino: u64, f: &OpenFile) -> FileAttr {
    let p = f.posix;
    FileAttr {
        ino: INodeNo(ino),
        size: f.size(),
        blocks: f.allocated().div_ceil(512),
        atime: to_time(p.atime_ns),
        mtime: to_time(p.mtime_ns),
        ctime: to_time(p.ctime_ns),
        crtime: to_time(f.created_ns),
        kind: FileType::RegularFile,
        perm: (p.mode & 0o7777) as u16,
        nlink: if f.detached { 0 } else { 1 },
        uid: p.uid,
        gid: p.gid,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

/// The file type an object's POSIX mode says (regular without one). A symlink's body is its
/// target; FIFOs, sockets and device nodes are empty objects (the kernel implements them).
pub(super) fn kind_of(m: &ObjectMeta) -> FileType {
    match m.posix().kind() {
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
        // A directory's type comes from its key (`dir/`), never from an object's mode.
        FileKind::Regular | FileKind::Directory => FileType::RegularFile,
    }
}

/// A device node's number (as the kernel encodes it for FUSE), 0 for anything else.
pub(super) fn rdev_of(m: &ObjectMeta) -> u32 {
    match kind_of(m) {
        FileType::CharDevice | FileType::BlockDevice => posix::rdev(&m.attrs.user_metadata),
        _ => 0,
    }
}
