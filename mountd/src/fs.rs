//! The FUSE filesystem over the engine: buckets are top-level directories, keys with `/` are
//! directory trees, objects are files.
//!
//! A file open for writing is an [`OpenFile`] shared by all its handles: its chunks, changed
//! in place and committed as the object on `flush`, `fsync` and `close` (see
//! [`crate::openfile`]). Reads of files nobody writes go straight to the engine and read only
//! the chunks they touch.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::errno::errno;
use base64::Engine as _;
use engine::posix::{self, Change, FileKind};
use engine::{Engine, ListQuery, ObjectAttrs, ObjectMeta, PosixAttrs, PutOptions};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use futures::StreamExt;

use crate::inodes::{join, split, Inodes, ROOT};
use crate::openfile::{self, OpenFile, MAX_FILE_SIZE};
use crate::readahead::ReadAhead;

/// What a path is.
enum Node {
    Root,
    /// A bucket, with its creation time.
    Bucket(i64),
    /// A directory, with its marker object's metadata when it has a marker.
    Dir(Option<Box<ObjectMeta>>),
    File(Box<ObjectMeta>),
}

/// An open file or directory.
enum Handle {
    /// A file. While any handle has it open for writing, its contents are the [`OpenFile`] in
    /// the registry.
    File {
        ino: u64,
        writable: bool,
        /// Windows read from the engine for a sequential reader.
        ra: ReadAhead,
    },
    /// A directory listing taken at opendir.
    Dir(Vec<(u64, FileType, String)>),
}

/// The filesystem.
pub struct PredaFs {
    engine: Engine,
    rt: tokio::runtime::Handle,
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Arc<Mutex<Handle>>>>,
    next_fh: AtomicU64,
    open: Mutex<Registry>,
    /// Directories whose entries changed since their marker was read: path → time.
    dir_times: Arc<Mutex<HashMap<String, i64>>>,
    /// Subdirectory counts by directory path, and when they were counted.
    nlinks: Mutex<HashMap<String, (u32, std::time::Instant)>>,
    /// For each file whose pages the kernel may cache: the version (last-modified time, ETag)
    /// those pages are of. An open of the same version keeps them (`FOPEN_KEEP_CACHE`); any
    /// other open drops them.
    page_versions: Mutex<HashMap<u64, (i64, String)>>,
    read_only: bool,
    ttl: Duration,
    write_buffer: usize,
    /// When the mount started: the times of the root and of directories without a marker.
    started: SystemTime,
}

/// Files open for writing (by inode) and how many handles each inode has open. Lock order:
/// the registry, then an [`OpenFile`].
#[derive(Default)]
struct Registry {
    files: HashMap<u64, Arc<Mutex<OpenFile>>>,
    handles: HashMap<u64, usize>,
}

/// How the filesystem is mounted.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Refuse every change.
    pub read_only: bool,
    /// How long the kernel may cache attributes and names.
    pub ttl: Duration,
    /// Mount this one bucket as the root (otherwise buckets are the top-level directories).
    pub bucket: Option<String>,
    /// Bytes of modified chunks all open files may hold in memory before they are stored early.
    pub write_buffer: usize,
}

fn to_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
    }
}

fn ns_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A directory's attributes with times `t`: a bucket's creation, or, for the root and a
/// directory no marker object stands for, the mount's start (not 1970).
fn dir_attr(ino: u64, t: SystemTime) -> FileAttr {
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
fn marker_attr(ino: u64, m: &ObjectMeta) -> FileAttr {
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

fn file_attr(ino: u64, m: &ObjectMeta) -> FileAttr {
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
fn open_attr(ino: u64, f: &OpenFile) -> FileAttr {
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
fn kind_of(m: &ObjectMeta) -> FileType {
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

/// The Content-Type a new file gets: guessed from its name.
fn guess_type(key: &str) -> String {
    mime_guess::from_path(key)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// POSIX attributes of something the caller creates now.
fn new_posix(mode: u32, req: &Request) -> PosixAttrs {
    PosixAttrs::new(mode, req.uid(), req.gid(), engine::meta::now_ns())
}

/// A device node's number (as the kernel encodes it for FUSE), 0 for anything else.
fn rdev_of(m: &ObjectMeta) -> u32 {
    match kind_of(m) {
        FileType::CharDevice | FileType::BlockDevice => posix::rdev(&m.attrs.user_metadata),
        _ => 0,
    }
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn name_str(name: &OsStr) -> Result<&str, Errno> {
    let n = name.to_str().ok_or(Errno::EINVAL)?;
    if n.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(n)
}

impl PredaFs {
    /// A filesystem over `engine`.
    pub fn new(
        engine: Engine,
        rt: tokio::runtime::Handle,
        opts: Options,
    ) -> std::io::Result<PredaFs> {
        // Staging files of mountd builds before drafts: never committed, so never needed.
        let _ = std::fs::remove_dir_all(engine.data_dir().join("mountd-staging"));
        Ok(PredaFs {
            engine,
            rt,
            // With one bucket mounted, the root is that bucket's path: everything below it
            // resolves as it would under the all-buckets root.
            inodes: Mutex::new(Inodes::with_root(opts.bucket.as_deref().unwrap_or(""))),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            open: Mutex::new(Registry::default()),
            dir_times: Arc::new(Mutex::new(HashMap::new())),
            nlinks: Mutex::new(HashMap::new()),
            page_versions: Mutex::new(HashMap::new()),
            read_only: opts.read_only,
            ttl: opts.ttl,
            write_buffer: opts.write_buffer,
            started: SystemTime::now(),
        })
    }

    fn path(&self, ino: INodeNo) -> Result<String, Errno> {
        self.inodes
            .lock()
            .map_err(|_| Errno::EIO)?
            .path(ino.0)
            .ok_or(Errno::ENOENT)
    }

    fn ino(&self, path: &str) -> u64 {
        self.inodes.lock().map(|mut t| t.ino(path)).unwrap_or(0)
    }

    fn resolve(&self, path: &str) -> Result<Node, Errno> {
        if path.is_empty() {
            return Ok(Node::Root);
        }
        let (b, k) = split(path);
        if k.is_empty() {
            let info = self.engine.head_bucket(b).map_err(|e| errno(&e))?;
            return Ok(Node::Bucket(info.created_ns));
        }
        match self.engine.head_object(b, k) {
            Ok(m) => return Ok(Node::File(Box::new(m))),
            Err(engine::Error::NoSuchKey { .. }) => {}
            Err(e) => return Err(errno(&e)),
        }
        match self.engine.head_object(b, &format!("{k}/")) {
            Ok(m) => return Ok(Node::Dir(Some(Box::new(m)))),
            Err(engine::Error::NoSuchKey { .. }) => {}
            Err(e) => return Err(errno(&e)),
        }
        let page = self
            .engine
            .list_objects(
                b,
                &ListQuery {
                    prefix: format!("{k}/"),
                    max_keys: 1,
                    ..Default::default()
                },
            )
            .map_err(|e| errno(&e))?;
        if page.objects.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(Node::Dir(None))
    }

    fn attr_of(&self, ino: u64, node: &Node) -> FileAttr {
        let mut a = match node {
            Node::File(m) => return file_attr(ino, m),
            Node::Dir(Some(m)) => marker_attr(ino, m),
            Node::Bucket(created) => dir_attr(ino, to_time(*created)),
            _ => dir_attr(ino, self.started),
        };
        let Ok(path) = self.path(INodeNo(ino)) else {
            return a;
        };
        // An entry created or removed since the marker was last written.
        if let Some(t) = self
            .dir_times
            .lock()
            .ok()
            .and_then(|t| t.get(&path).copied())
        {
            let t = to_time(t);
            a.mtime = a.mtime.max(t);
            a.ctime = a.ctime.max(t);
        }
        a.nlink = 2 + self.subdirs(&path);
        a
    }

    /// Number of subdirectories of the directory at `path` (its nlink is 2 more), counted with
    /// one seek each and kept for a second (dropped at once by changes made on the mount).
    fn subdirs(&self, path: &str) -> u32 {
        const KEEP: Duration = Duration::from_secs(1);
        if let Ok(c) = self.nlinks.lock() {
            if let Some((n, at)) = c.get(path) {
                if at.elapsed() < KEEP {
                    return *n;
                }
            }
        }
        let n = if path.is_empty() {
            self.engine
                .list_buckets()
                .map(|b| b.len() as u64)
                .unwrap_or(0)
        } else {
            let (b, k) = split(path);
            let prefix = if k.is_empty() {
                String::new()
            } else {
                format!("{k}/")
            };
            self.engine.count_subprefixes(b, &prefix).unwrap_or(0)
        };
        let n = n.min(u32::MAX as u64 - 2) as u32;
        if let Ok(mut c) = self.nlinks.lock() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(path.to_string(), (n, std::time::Instant::now()));
        }
        n
    }

    /// An entry of the directory holding `path` was created or removed: its mtime and ctime
    /// move to now — at once on the mount (in memory), and on its marker object (when it has
    /// one) in the next metadata commit, without waiting for it.
    fn touch_parent(&self, path: &str) {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return;
        };
        if let Ok(mut c) = self.nlinks.lock() {
            c.remove(parent);
        }
        let (b, k) = split(parent);
        let now = ns_of(SystemTime::now());
        if let Ok(mut t) = self.dir_times.lock() {
            t.insert(parent.to_string(), now);
        }
        if k.is_empty() {
            return; // a bucket has no marker: its times are kept in memory only
        }
        let (e, b, mk) = (self.engine.clone(), b.to_string(), format!("{k}/"));
        let (times, parent) = (self.dir_times.clone(), parent.to_string());
        self.rt.spawn(async move {
            let _ = e
                .update_object_attrs(&b, &mk, move |a: &mut ObjectAttrs| {
                    if let Some(p) = &mut a.posix {
                        p.mtime_ns = p.mtime_ns.max(now);
                        p.ctime_ns = p.ctime_ns.max(now);
                    }
                })
                .await;
            // The marker has it now (or there is none): the entry is no longer needed.
            if let Ok(mut t) = times.lock() {
                if t.get(&parent) == Some(&now) {
                    t.remove(&parent);
                }
            }
        });
    }

    fn new_fh(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut t) = self.handles.lock() {
            t.insert(fh, Arc::new(Mutex::new(h)));
        }
        fh
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Mutex<Handle>>, Errno> {
        self.handles
            .lock()
            .map_err(|_| Errno::EIO)?
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    /// The path of a new non-directory entry `name` in `parent`: `EROFS` on a read-only mount,
    /// `EPERM` at the top level (only directories, i.e. buckets, live there).
    fn new_file_path(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let pp = self.path(parent)?;
        if pp.is_empty() {
            return Err(Errno::EPERM);
        }
        Ok(join(&pp, name_str(name)?))
    }

    /// Stores a new entry at `path` whose whole body is `body`: an empty file, FIFO, socket
    /// or device node, or a symlink (its target); its inode and metadata.
    fn put_new(
        &self,
        path: &str,
        body: &[u8],
        attrs: ObjectAttrs,
    ) -> Result<(u64, ObjectMeta), Errno> {
        let (b, k) = split(path);
        let opts = PutOptions {
            attrs,
            ..Default::default()
        };
        let m = self
            .rt
            .block_on(self.engine.put_object(b, k, body, opts))
            .map_err(|e| errno(&e))?;
        let ino = self.ino(path);
        self.forget_pages(ino);
        self.touch_parent(path);
        Ok((ino, m))
    }

    /// The inode of a handle open for writing (`EBADF` for any other handle).
    fn writable_ino(&self, fh: FileHandle) -> Result<u64, Errno> {
        match &*self.handle(fh)?.lock().map_err(|_| Errno::EIO)? {
            Handle::File {
                ino,
                writable: true,
                ..
            } => Ok(*ino),
            _ => Err(Errno::EBADF),
        }
    }

    /// `flush`/`fsync` of a handle: commits what its file has changed.
    fn commit_handle(&self, fh: FileHandle) -> Result<(), Errno> {
        let ino = match &*self.handle(fh)?.lock().map_err(|_| Errno::EIO)? {
            Handle::File {
                ino,
                writable: true,
                ..
            } => *ino,
            _ => return Ok(()),
        };
        match self.open_file(ino) {
            Some(f) => f.lock().map_err(|_| Errno::EIO)?.commit(true),
            None => Ok(()),
        }
    }

    /// The shared state of `ino` while it is open for writing.
    fn open_file(&self, ino: u64) -> Option<Arc<Mutex<OpenFile>>> {
        self.open.lock().ok()?.files.get(&ino).cloned()
    }

    /// Whether an open of `ino` (a file, `meta` its current version) may keep the kernel's cached
    /// pages: only when
    /// nobody writes it through the mount and the object is still the version they were read
    /// from. Otherwise the pages go (the kernel drops them at the open), and the current version
    /// is remembered for the next open. The attributes alone cannot tell: an overwrite over S3
    /// may keep the size and the POSIX mtime.
    fn keep_cache(&self, ino: u64, meta: &ObjectMeta, writing: bool) -> bool {
        let Ok(mut pv) = self.page_versions.lock() else {
            return false;
        };
        if writing || self.open_file(ino).is_some() {
            pv.remove(&ino);
            return false;
        }
        let now = (meta.last_modified_ns, meta.etag.clone());
        if pv.get(&ino) == Some(&now) {
            return true;
        }
        pv.insert(ino, now);
        false
    }

    /// The contents of `ino` change through the mount: its cached pages are not of a stored
    /// version any more.
    fn forget_pages(&self, ino: u64) {
        if let Ok(mut pv) = self.page_versions.lock() {
            pv.remove(&ino);
        }
    }

    /// Counts a new handle of `ino`; for a writer, joins (or starts) the file's shared state.
    fn attach(&self, ino: u64, path: &str, writable: bool, truncate: bool) -> Result<(), Errno> {
        let mut reg = self.open.lock().map_err(|_| Errno::EIO)?;
        if writable {
            let f = match reg.files.get(&ino) {
                Some(f) => {
                    let f = f.clone();
                    if truncate {
                        f.lock().map_err(|_| Errno::EIO)?.truncate(0)?;
                    }
                    f
                }
                None => {
                    let f = OpenFile::open(&self.engine, &self.rt, path, truncate)?;
                    let f = Arc::new(Mutex::new(f));
                    reg.files.insert(ino, f.clone());
                    f
                }
            };
            f.lock().map_err(|_| Errno::EIO)?.writers += 1;
        }
        *reg.handles.entry(ino).or_default() += 1;
        Ok(())
    }

    /// A handle of `ino` is closed. The last writer commits; the shared state goes away with
    /// the last writer (or, for a file unlinked while open, with the last handle).
    fn detach_handle(&self, ino: u64, writable: bool) -> Result<(), Errno> {
        let mut res = Ok(());
        if writable {
            if let Some(f) = self.open_file(ino) {
                let mut g = f.lock().map_err(|_| Errno::EIO)?;
                g.writers = g.writers.saturating_sub(1);
                if g.writers == 0 {
                    res = g.commit(true);
                }
            }
        }
        let removed = {
            let mut reg = self.open.lock().map_err(|_| Errno::EIO)?;
            let left = match reg.handles.get_mut(&ino) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n
                }
                None => 0,
            };
            if left == 0 {
                reg.handles.remove(&ino);
            }
            let gone = match reg.files.get(&ino) {
                Some(f) => {
                    let g = f.lock().map_err(|_| Errno::EIO)?;
                    g.writers == 0 && (left == 0 || !g.detached)
                }
                None => false,
            };
            if gone {
                reg.files.remove(&ino)
            } else {
                None
            }
        };
        // Dropped outside the registry lock: closing waits for background stores.
        drop(removed);
        res
    }

    /// Before `path` is unlinked or replaced by a rename: a file still open keeps its contents
    /// (pinned) for its handles. Returns its inode, to [`PredaFs::detached`] once the name is
    /// gone.
    fn before_unlink(&self, path: &str) -> Result<Option<u64>, Errno> {
        let Some(ino) = self.inodes.lock().map_err(|_| Errno::EIO)?.lookup(path) else {
            return Ok(None);
        };
        let mut reg = self.open.lock().map_err(|_| Errno::EIO)?;
        let open = reg.handles.get(&ino).copied().unwrap_or(0) > 0;
        if open && !reg.files.contains_key(&ino) {
            // Only readers: give them a pinned copy to go on reading.
            let f = OpenFile::open(&self.engine, &self.rt, path, false)?;
            reg.files.insert(ino, Arc::new(Mutex::new(f)));
        }
        Ok(Some(ino))
    }

    /// The name of `ino` is gone: its open handles go on without it, and never commit again.
    fn detached(&self, ino: Option<u64>, path: &str) {
        if let Ok(mut t) = self.inodes.lock() {
            t.forget(path);
        }
        let Some(ino) = ino else { return };
        if let Some(f) = self.open_file(ino) {
            if let Ok(mut g) = f.lock() {
                g.detached = true;
            }
        }
    }

    /// Points open files under `from` at `to` after a rename, so later commits go to the new
    /// name.
    fn retarget(&self, from: &str, to: &str) {
        let Ok(reg) = self.open.lock() else { return };
        let below = format!("{from}/");
        for f in reg.files.values() {
            if let Ok(mut g) = f.lock() {
                if g.detached {
                    continue;
                }
                if g.path == from || g.path.starts_with(&below) {
                    g.path = format!("{to}{}", &g.path[from.len()..]);
                }
            }
        }
    }

    /// Under memory pressure, stores modified chunks of other open files early.
    fn relieve_memory(&self, except: u64) {
        if openfile::buffered() <= self.write_buffer {
            return;
        }
        let files: Vec<(u64, Arc<Mutex<OpenFile>>)> = match self.open.lock() {
            Ok(reg) => reg.files.iter().map(|(i, f)| (*i, f.clone())).collect(),
            Err(_) => return,
        };
        for (ino, f) in files {
            if ino == except {
                continue;
            }
            if openfile::buffered() <= self.write_buffer {
                break;
            }
            if let Ok(mut g) = f.try_lock() {
                if let Err(e) = g.spill() {
                    tracing::warn!("storing {} early failed: {e:?}", g.path);
                }
            }
        }
    }

    fn list_dir(&self, path: &str) -> Result<Vec<(u64, FileType, String)>, Errno> {
        let mut out = Vec::new();
        if path.is_empty() {
            for b in self.engine.list_buckets().map_err(|e| errno(&e))? {
                let ino = self.ino(&b.name);
                out.push((ino, FileType::Directory, b.name));
            }
            return Ok(out);
        }
        let (b, k) = split(path);
        let prefix = if k.is_empty() {
            String::new()
        } else {
            format!("{k}/")
        };
        let mut after: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self
                .engine
                .list_objects(
                    b,
                    &ListQuery {
                        prefix: prefix.clone(),
                        delimiter: Some("/".into()),
                        start_after: after.clone(),
                        max_keys: 1000,
                    },
                )
                .map_err(|e| errno(&e))?;
            for cp in &page.common_prefixes {
                let name = cp[prefix.len()..cp.len() - 1].to_string();
                if crate::names::is_showable(&name) && seen.insert(name.clone()) {
                    let ino = self.ino(&join(path, &name));
                    out.push((ino, FileType::Directory, name));
                }
            }
            for o in &page.objects {
                let name = o.key[prefix.len()..].to_string();
                if crate::names::is_showable(&name) && seen.insert(name.clone()) {
                    let ino = self.ino(&join(path, &name));
                    out.push((ino, kind_of(o), name));
                }
            }
            if !page.is_truncated {
                break;
            }
            after = page.next_marker;
        }
        Ok(out)
    }

    /// When `rmdir` of `path` fails as not empty: logs the keys under it that no file name
    /// can show (`crate::names`), which is why a directory that lists empty cannot be removed.
    fn log_hidden_keys(&self, path: &str) {
        let (b, k) = split(path);
        let prefix = if k.is_empty() {
            String::new()
        } else {
            format!("{k}/")
        };
        let q = ListQuery {
            prefix: prefix.clone(),
            max_keys: 1000,
            ..Default::default()
        };
        let Ok(page) = self.engine.list_objects(b, &q) else {
            return;
        };
        let hidden: Vec<&str> = page
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .filter(|key| key.len() > prefix.len() && !crate::names::is_reachable(key))
            .collect();
        if hidden.is_empty() {
            return;
        }
        let shown: Vec<String> = hidden
            .iter()
            .take(5)
            .map(|k| format!("{b}/{k:?}"))
            .collect();
        tracing::warn!(
            "cannot remove {path}: it holds {}{} key(s) that no file name can show (., .., empty or over 255-byte components), e.g. {}; remove them over S3",
            hidden.len(),
            if page.is_truncated { "+" } else { "" },
            shown.join(", ")
        );
    }

    /// `chmod`, `chown`, `utimensat` of the object at `path` (ctime becomes now).
    fn set_posix(&self, path: &str, change: Change) -> Result<ObjectMeta, Errno> {
        let (b, k) = split(path);
        self.rt
            .block_on(self.engine.update_posix(b, k, change))
            .map_err(|e| errno(&e))
    }
}

impl Filesystem for PredaFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Larger requests: fewer round trips through the kernel for streaming reads and writes.
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        // open(O_TRUNC) arrives as a flag of open, not as a separate truncate: the old contents
        // stay committed until the new ones are (a crash in between leaves the old file).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC);
        // When the attributes of a file show it changed (an overwrite over S3), the kernel drops
        // its cached pages of it, also for descriptors that were already open.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_AUTO_INVAL_DATA);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let res = (|| {
            let name = name_str(name)?;
            let path = join(&self.path(parent)?, name);
            let node = self.resolve(&path)?;
            let ino = self.ino(&path);
            if let (Node::File(_), Some(f)) = (&node, self.open_file(ino)) {
                return Ok(open_attr(ino, &*f.lock().map_err(|_| Errno::EIO)?));
            }
            Ok::<_, Errno>(self.attr_of(ino, &node))
        })();
        match res {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if let Some(f) = self.open_file(ino.0) {
            return match f.lock() {
                Ok(g) => reply.attr(&self.ttl, &open_attr(ino.0, &g)),
                Err(_) => reply.error(Errno::EIO),
            };
        }
        match self.path(ino).and_then(|p| self.resolve(&p)) {
            Ok(node) => reply.attr(&self.ttl, &self.attr_of(ino.0, &node)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if size.is_some() {
            self.forget_pages(ino.0);
        }
        let res = (|| {
            let t = |x: TimeOrNow| match x {
                TimeOrNow::SpecificTime(t) => ns_of(t),
                TimeOrNow::Now => ns_of(SystemTime::now()),
            };
            let change = Change {
                perm: mode,
                uid,
                gid,
                atime_ns: atime.map(t),
                mtime_ns: mtime.map(t),
            };
            let posix_change = !change.is_empty();
            // A file open for writing: its shared state is the truth (also once unlinked).
            if let Some(f) = self.open_file(ino.0) {
                if self.read_only {
                    return Err(Errno::EROFS);
                }
                let mut g = f.lock().map_err(|_| Errno::EIO)?;
                if let Some(sz) = size {
                    g.truncate(sz)?;
                }
                if posix_change {
                    g.posix.apply(&change, engine::meta::now_ns());
                    if !g.detached {
                        // Visible over S3 at once, not only at the next commit.
                        let path = g.path.clone();
                        match self.set_posix(&path, change) {
                            Ok(_) | Err(Errno::ENOENT) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                return Ok(open_attr(ino.0, &g));
            }
            let path = self.path(ino)?;
            let node = self.resolve(&path)?;
            if let Node::Dir(marker) = &node {
                if size.is_some() {
                    return Err(Errno::EISDIR);
                }
                if !posix_change {
                    return Ok(self.attr_of(ino.0, &node));
                }
                if self.read_only {
                    return Err(Errno::EROFS);
                }
                // A directory's attributes live on its marker object; make one if it has none.
                let (b, k) = split(&path);
                let mk = format!("{k}/");
                if marker.is_none() {
                    let now = engine::meta::now_ns();
                    let attrs = ObjectAttrs {
                        posix: Some(PosixAttrs::new(libc::S_IFDIR | 0o755, 0, 0, now)),
                        ..Default::default()
                    };
                    self.rt
                        .block_on(self.engine.put_object(
                            b,
                            &mk,
                            &b""[..],
                            PutOptions {
                                attrs,
                                ..Default::default()
                            },
                        ))
                        .map_err(|e| errno(&e))?;
                }
                let m = self.set_posix(&format!("{path}/"), change)?;
                return Ok(marker_attr(ino.0, &m));
            }
            if !matches!(node, Node::File(_)) {
                return Ok(self.attr_of(ino.0, &node));
            }
            if self.read_only {
                return Err(Errno::EROFS);
            }
            if size.is_some_and(|sz| sz > MAX_FILE_SIZE) {
                return Err(Errno::EFBIG);
            }
            if let Some(sz) = size {
                // truncate(2) of a file nobody has open for writing: commit it at once.
                let mut f = OpenFile::open(&self.engine, &self.rt, &path, sz == 0)?;
                f.truncate(sz)?;
                f.commit(false)?;
            }
            let m = if posix_change {
                self.set_posix(&path, change)?
            } else {
                let (b, k) = split(&path);
                self.engine.head_object(b, k).map_err(|e| errno(&e))?
            };
            Ok(file_attr(ino.0, &m))
        })();
        match res {
            Ok(a) => reply.attr(&self.ttl, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let name = name_str(name)?;
            let pp = self.path(parent)?;
            let path = join(&pp, name);
            if pp.is_empty() {
                self.rt
                    .block_on(self.engine.create_bucket(name))
                    .map_err(|e| errno(&e))?;
            } else {
                if self.resolve(&path).is_ok() {
                    return Err(Errno::EEXIST);
                }
                let (b, k) = split(&path);
                let posix = new_posix(libc::S_IFDIR | (mode & !umask & 0o7777), req);
                let m = self
                    .rt
                    .block_on(self.engine.put_object(
                        b,
                        &format!("{k}/"),
                        &b""[..],
                        PutOptions {
                            attrs: ObjectAttrs {
                                posix: Some(posix),
                                ..Default::default()
                            },
                            ..Default::default()
                        },
                    ))
                    .map_err(|e| errno(&e))?;
                self.touch_parent(&path);
                return Ok(marker_attr(self.ino(&path), &m));
            }
            Ok(dir_attr(self.ino(&path), SystemTime::now()))
        })();
        match res {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let path = join(&self.path(parent)?, name_str(name)?);
            match self.resolve(&path)? {
                Node::File(_) => {}
                _ => return Err(Errno::EISDIR),
            }
            let ino = self.before_unlink(&path)?;
            let (b, k) = split(&path);
            self.rt
                .block_on(self.engine.delete_object(b, k))
                .map_err(|e| errno(&e))?;
            self.detached(ino, &path);
            self.touch_parent(&path);
            Ok(())
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let path = join(&self.path(parent)?, name_str(name)?);
            match self.resolve(&path)? {
                Node::File(_) => return Err(Errno::ENOTDIR),
                Node::Root => return Err(Errno::EBUSY),
                Node::Bucket(_) => {
                    let (b, _) = split(&path);
                    let r = self
                        .rt
                        .block_on(self.engine.delete_bucket(b))
                        .map_err(|e| errno(&e));
                    if r == Err(Errno::ENOTEMPTY) {
                        self.log_hidden_keys(&path);
                    }
                    return r;
                }
                Node::Dir(_) => {}
            }
            let (b, k) = split(&path);
            let marker = format!("{k}/");
            let page = self
                .engine
                .list_objects(
                    b,
                    &ListQuery {
                        prefix: marker.clone(),
                        max_keys: 2,
                        ..Default::default()
                    },
                )
                .map_err(|e| errno(&e))?;
            if page.objects.iter().any(|o| o.key != marker) {
                self.log_hidden_keys(&path);
                return Err(Errno::ENOTEMPTY);
            }
            self.rt
                .block_on(self.engine.delete_object(b, &marker))
                .map_err(|e| errno(&e))?;
            if let Ok(mut t) = self.dir_times.lock() {
                t.remove(&path);
            }
            self.touch_parent(&path);
            Ok(())
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let from = join(&self.path(parent)?, name_str(name)?);
            let to = join(&self.path(newparent)?, name_str(newname)?);
            let (fb, fk) = split(&from);
            let (tb, tk) = split(&to);
            if fk.is_empty() || tk.is_empty() {
                return Err(Errno::EPERM); // buckets cannot be renamed
            }
            let target = self.resolve(&to).ok();
            if flags.contains(RenameFlags::RENAME_NOREPLACE) && target.is_some() {
                return Err(Errno::EEXIST);
            }
            let mut replaced = None;
            match self.resolve(&from)? {
                Node::File(_) => {
                    if matches!(target, Some(Node::Dir(_))) {
                        return Err(Errno::EISDIR);
                    }
                    if from == to {
                        return Ok(());
                    }
                    if matches!(target, Some(Node::File(_))) {
                        replaced = self.before_unlink(&to)?;
                    }
                    self.rt
                        .block_on(self.engine.rename_object(fb, fk, tb, tk))
                        .map_err(|e| errno(&e))?;
                }
                Node::Dir(_) => {
                    match target {
                        Some(Node::File(_)) => return Err(Errno::ENOTDIR),
                        Some(Node::Dir(_)) => {
                            let page = self
                                .engine
                                .list_objects(
                                    tb,
                                    &ListQuery {
                                        prefix: format!("{tk}/"),
                                        max_keys: 2,
                                        ..Default::default()
                                    },
                                )
                                .map_err(|e| errno(&e))?;
                            if page.objects.iter().any(|o| o.key != format!("{tk}/")) {
                                return Err(Errno::ENOTEMPTY);
                            }
                        }
                        _ => {}
                    }
                    // Every key under the directory, renamed one by one (metadata only).
                    let prefix = format!("{fk}/");
                    loop {
                        let page = self
                            .engine
                            .list_objects(
                                fb,
                                &ListQuery {
                                    prefix: prefix.clone(),
                                    max_keys: 1000,
                                    ..Default::default()
                                },
                            )
                            .map_err(|e| errno(&e))?;
                        if page.objects.is_empty() {
                            break;
                        }
                        for o in &page.objects {
                            let nk = format!("{tk}/{}", &o.key[prefix.len()..]);
                            self.rt
                                .block_on(self.engine.rename_object(fb, &o.key, tb, &nk))
                                .map_err(|e| errno(&e))?;
                        }
                    }
                }
                _ => return Err(Errno::EPERM),
            }
            if replaced.is_some() {
                self.detached(replaced, &to);
            }
            if let Ok(mut t) = self.inodes.lock() {
                t.rename(&from, &to);
            }
            self.retarget(&from, &to);
            self.touch_parent(&from);
            self.touch_parent(&to);
            Ok(())
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let res = (|| {
            let acc = flags.0 & libc::O_ACCMODE;
            let writing = acc == libc::O_WRONLY || acc == libc::O_RDWR;
            if writing && self.read_only {
                return Err(Errno::EROFS);
            }
            let trunc = flags.0 & libc::O_TRUNC != 0;
            let path = self.path(ino)?;
            let meta = match self.resolve(&path)? {
                Node::File(m) => m,
                _ => return Err(Errno::EISDIR),
            };
            self.attach(ino.0, &path, writing, writing && trunc)?;
            let keep = self.keep_cache(ino.0, &meta, writing);
            let fh = self.new_fh(Handle::File {
                ino: ino.0,
                writable: writing,
                ra: ReadAhead::default(),
            });
            Ok((fh, keep))
        })();
        match res {
            Ok((fh, keep)) => reply.opened(
                FileHandle(fh),
                if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                },
            ),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let res = (|| {
            let path = self.new_file_path(parent, name)?;
            let attrs = ObjectAttrs {
                content_type: Some(guess_type(split(&path).1)),
                posix: Some(new_posix(libc::S_IFREG | (mode & !umask & 0o7777), req)),
                ..Default::default()
            };
            let (ino, m) = self.put_new(&path, b"", attrs)?;
            self.attach(ino, &path, true, false)?;
            let fh = self.new_fh(Handle::File {
                ino,
                writable: true,
                ra: ReadAhead::default(),
            });
            Ok((file_attr(ino, &m), fh))
        })();
        match res {
            Ok((a, fh)) => reply.created(
                &self.ttl,
                &a,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let res = (|| {
            let h = self.handle(fh)?;
            let mut h = h.lock().map_err(|_| Errno::EIO)?;
            let Handle::File { ino, ra, .. } = &mut *h else {
                return Err(Errno::EISDIR);
            };
            if let Some(f) = self.open_file(*ino) {
                // Someone has it open for writing: read what they wrote.
                ra.clear();
                let v = f.lock().map_err(|_| Errno::EIO)?.read(offset, size)?;
                return Ok(bytes::Bytes::from(v));
            }
            let path = self.path(INodeNo(*ino))?;
            let (b, k) = split(&path);
            let m = self.engine.head_object(b, k).map_err(|e| errno(&e))?;
            ra.read(&self.engine, &self.rt, b, k, &m, offset, size)
        })();
        match res {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let res = (|| {
            let ino = self.writable_ino(fh)?;
            let f = self.open_file(ino).ok_or(Errno::EBADF)?;
            {
                let mut g = f.lock().map_err(|_| Errno::EIO)?;
                let off = if flags.0 & libc::O_APPEND != 0 {
                    g.size()
                } else {
                    offset
                };
                g.write(off, data)?;
                if openfile::buffered() > self.write_buffer {
                    // This write's data is taken; a failure to store is reported by the next
                    // write (which tries again first), flush, fsync or close.
                    let _ = g.spill();
                }
            }
            self.relieve_memory(ino);
            Ok(data.len() as u32)
        })();
        match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE;
        const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
        let res = (|| {
            if mode & !(KEEP | PUNCH | ZERO) != 0 {
                // COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE: not offered.
                return Err(Errno::EOPNOTSUPP);
            }
            let ino = self.writable_ino(fh)?;
            let end = offset
                .checked_add(length)
                .filter(|e| *e <= openfile::MAX_FILE_SIZE)
                .ok_or(Errno::EFBIG)?;
            let f = self.open_file(ino).ok_or(Errno::EBADF)?;
            let mut g = f.lock().map_err(|_| Errno::EIO)?;
            let grow = mode & KEEP == 0 && end > g.size();
            if mode & (PUNCH | ZERO) != 0 {
                // The kernel only passes PUNCH_HOLE together with KEEP_SIZE.
                if grow {
                    g.truncate(end)?;
                }
                g.zero_range(offset, length)?;
            } else {
                // Allocation: copy-on-write stores every write anew, so no space can be set
                // aside; what can be promised is that the space is free now, and the size.
                let need = end.saturating_sub(g.size()).min(length);
                if need > self.free_bytes() {
                    return Err(Errno::ENOSPC);
                }
                if grow {
                    g.truncate(end)?;
                }
            }
            Ok(())
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        // The kernel asks only for SEEK_DATA and SEEK_HOLE; it handles the others itself.
        let res = (|| {
            if !matches!(
                &*self.handle(fh)?.lock().map_err(|_| Errno::EIO)?,
                Handle::File { .. }
            ) {
                return Err(Errno::EBADF);
            }
            let (size, extents) = match self.open_file(ino.0) {
                Some(f) => {
                    let g = f.lock().map_err(|_| Errno::EIO)?;
                    (g.size(), g.data_extents())
                }
                None => {
                    let path = self.path(ino)?;
                    let (b, k) = split(&path);
                    let (m, ext) = self.engine.object_extents(b, k).map_err(|e| errno(&e))?;
                    (m.size, ext)
                }
            };
            let off = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
            if off >= size {
                return Err(Errno::ENXIO);
            }
            match whence {
                libc::SEEK_DATA => extents
                    .iter()
                    .find(|(_, e)| *e > off)
                    .map(|(s, _)| (*s).max(off))
                    .ok_or(Errno::ENXIO),
                libc::SEEK_HOLE => Ok(extents
                    .iter()
                    .find(|(s, e)| *s <= off && off < *e)
                    .map(|(_, e)| *e)
                    .unwrap_or(off)),
                _ => Err(Errno::EINVAL),
            }
        })();
        match res {
            Ok(o) => reply.offset(o as i64),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.commit_handle(fh) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.commit_handle(fh) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let h = self.handles.lock().ok().and_then(|mut t| t.remove(&fh.0));
        let res = match h.as_ref().and_then(|h| h.lock().ok()).as_deref() {
            Some(Handle::File { ino, writable, .. }) => self.detach_handle(*ino, *writable),
            _ => Ok(()),
        };
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let res = (|| {
            let path = self.path(ino)?;
            if let Node::File(_) = self.resolve(&path)? {
                return Err(Errno::ENOTDIR);
            }
            let entries = self.list_dir(&path)?;
            Ok(self.new_fh(Handle::Dir(entries)))
        })();
        match res {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Ok(h) = h.lock() else {
            return reply.error(Errno::EIO);
        };
        let Handle::Dir(entries) = &*h else {
            return reply.error(Errno::ENOTDIR);
        };
        let parent = self
            .path(ino)
            .ok()
            .map(|p| {
                p.rsplit_once('/')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default()
            })
            .map(|p| if ino.0 == ROOT { ROOT } else { self.ino(&p) })
            .unwrap_or(ROOT);
        let dots = [
            (ino.0, FileType::Directory, ".".to_string()),
            (parent, FileType::Directory, "..".to_string()),
        ];
        for (i, (e_ino, kind, name)) in dots
            .iter()
            .chain(entries.iter())
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(*e_ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut t) = self.handles.lock() {
            t.remove(&fh.0);
        }
        reply.ok();
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let res = (|| {
            let path = self.new_file_path(parent, link_name)?;
            if self.resolve(&path).is_ok() {
                return Err(Errno::EEXIST);
            }
            let attrs = ObjectAttrs {
                posix: Some(new_posix(libc::S_IFLNK | 0o777, req)),
                ..Default::default()
            };
            let target = target.as_os_str().as_encoded_bytes();
            let (ino, m) = self.put_new(&path, target, attrs)?;
            Ok(file_attr(ino, &m))
        })();
        match res {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let res = (|| {
            let path = self.path(ino)?;
            let Node::File(m) = self.resolve(&path)? else {
                return Err(Errno::EINVAL);
            };
            if kind_of(&m) != FileType::Symlink {
                return Err(Errno::EINVAL);
            }
            let (b, k) = split(&path);
            self.rt.block_on(async {
                let g = self
                    .engine
                    .get_object(b, k, None)
                    .await
                    .map_err(|e| errno(&e))?;
                let mut body = g.body;
                let mut out = Vec::new();
                while let Some(c) = body.next().await {
                    out.extend_from_slice(&c.map_err(|e| errno(&e))?);
                }
                Ok(out)
            })
        })();
        match res {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // Objects have one name each: hard links cannot be represented.
        reply.error(Errno::EPERM);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let res = (|| {
            let path = self.new_file_path(parent, name)?;
            if self.resolve(&path).is_ok() {
                return Err(Errno::EEXIST);
            }
            // The kernel has checked the caller may (CAP_MKNOD for devices); the mount is
            // `nodev`, so a device node here is a name and a number, never a way to a device.
            let kind = match mode & libc::S_IFMT {
                0 => libc::S_IFREG,
                k @ (libc::S_IFREG
                | libc::S_IFIFO
                | libc::S_IFSOCK
                | libc::S_IFCHR
                | libc::S_IFBLK) => k,
                _ => return Err(Errno::EINVAL),
            };
            let mut attrs = ObjectAttrs {
                posix: Some(new_posix(kind | (mode & !umask & 0o7777), req)),
                ..Default::default()
            };
            match kind {
                libc::S_IFREG => attrs.content_type = Some(guess_type(split(&path).1)),
                libc::S_IFCHR | libc::S_IFBLK => {
                    attrs
                        .user_metadata
                        .insert(posix::RDEV.into(), posix::format_rdev(rdev));
                }
                _ => {}
            }
            let (ino, m) = self.put_new(&path, b"", attrs)?;
            Ok(file_attr(ino, &m))
        })();
        match res {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let path = self.path(ino)?;
            let Node::File(m) = self.resolve(&path)? else {
                return Err(Errno::ENOTSUP);
            };
            let name = name.to_str().ok_or(Errno::EINVAL)?;
            if !name.starts_with("user.") {
                return Err(Errno::ENOTSUP);
            }
            let key = posix::xattr_key(name);
            let exists = m.attrs.user_metadata.contains_key(&key);
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(Errno::EEXIST);
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(Errno::NO_XATTR);
            }
            let v = b64(value);
            let (b, k) = split(&path);
            self.rt
                .block_on(self.engine.update_object_attrs(b, k, move |a| {
                    a.user_metadata.insert(key, v);
                }))
                .map(|_| ())
                .map_err(|e| errno(&e))
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: fuser::ReplyXattr,
    ) {
        let res = (|| {
            let path = self.path(ino)?;
            let Node::File(m) = self.resolve(&path)? else {
                return Err(Errno::NO_XATTR);
            };
            let name = name.to_str().ok_or(Errno::EINVAL)?;
            let v = m
                .attrs
                .user_metadata
                .get(&posix::xattr_key(name))
                .ok_or(Errno::NO_XATTR)?;
            unb64(v).ok_or(Errno::EIO)
        })();
        match res {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        let res = (|| {
            let path = self.path(ino)?;
            let mut out = Vec::new();
            if let Node::File(m) = self.resolve(&path)? {
                for k in m.attrs.user_metadata.keys() {
                    if let Some(n) = k.strip_prefix(posix::XATTR_PREFIX) {
                        out.extend_from_slice(n.as_bytes());
                        out.push(0);
                    }
                }
            }
            Ok::<_, Errno>(out)
        })();
        match res {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = (|| {
            if self.read_only {
                return Err(Errno::EROFS);
            }
            let path = self.path(ino)?;
            let Node::File(m) = self.resolve(&path)? else {
                return Err(Errno::NO_XATTR);
            };
            let key = posix::xattr_key(name.to_str().ok_or(Errno::EINVAL)?);
            if !m.attrs.user_metadata.contains_key(&key) {
                return Err(Errno::NO_XATTR);
            }
            let (b, k) = split(&path);
            self.rt
                .block_on(self.engine.update_object_attrs(b, k, move |a| {
                    a.user_metadata.remove(&key);
                }))
                .map(|_| ())
                .map_err(|e| errno(&e))
        })();
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (total, free) = self.capacity();
        let bs = 4096u64;
        reply.statfs(
            total / bs,
            free / bs,
            free / bs,
            0,
            0,
            bs as u32,
            255,
            bs as u32,
        );
    }
}

impl PredaFs {
    /// Total and free bytes for file data: the disks' filesystems (each once), scaled by the
    /// coding overhead.
    fn capacity(&self) -> (u64, u64) {
        let cfg = self.engine.config();
        let (k, n) = (
            cfg.data_shards as u64,
            (cfg.data_shards + cfg.parity_shards) as u64,
        );
        // Each filesystem once (default disks share one), scaled by the coding overhead.
        let mut seen = std::collections::HashSet::new();
        let (mut total, mut free) = (0u64, 0u64);
        for d in self.engine.disk_status() {
            let dev = std::os::unix::fs::MetadataExt::dev(&match std::fs::metadata(&d.path) {
                Ok(m) => m,
                Err(_) => continue,
            });
            if seen.insert(dev) {
                total += d.total_bytes;
                free += d.free_bytes;
            }
        }
        (total * k / n.max(1), free * k / n.max(1))
    }

    /// Free bytes for file data.
    fn free_bytes(&self) -> u64 {
        self.capacity().1
    }
}
