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
use std::time::{Duration, SystemTime};

use crate::errno::errno;
use base64::Engine as _;
use engine::access::Action;
use engine::posix::{self, Change};
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

mod attr;
mod fuse;
mod gate;
mod io;
mod ops;
mod pin;
#[cfg(test)]
mod tests;

use attr::*;
pub use gate::Gate;
pub(crate) use ops::NewEntry;

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
    open: Arc<Mutex<Registry>>,
    /// Directories whose entries changed since their marker was read: path → time.
    dir_times: Arc<Mutex<HashMap<String, i64>>>,
    /// Subdirectory counts by directory path, and when they were counted.
    nlinks: Mutex<HashMap<String, (u32, std::time::Instant)>>,
    /// For each file whose pages the kernel may cache: the version (last-modified time, ETag)
    /// those pages are of. An open of the same version keeps them (`FOPEN_KEEP_CACHE`); any
    /// other open drops them.
    page_versions: Mutex<HashMap<u64, (i64, String)>>,
    read_only: bool,
    /// Who the mount acts as.
    gate: Gate,
    ttl: Duration,
    write_buffer: usize,
    /// When the mount started: the times of the root and of directories without a marker.
    started: SystemTime,
    /// In a cluster, pins what open files have stored and not committed (see `pin.rs`).
    _pinner: Option<pin::Pinner>,
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
    /// The key the mount acts as (`None`: an administrator).
    pub principal: Option<engine::Principal>,
}

/// The Content-Type a new file gets: guessed from its name.
fn guess_type(key: &str) -> String {
    mime_guess::from_path(key)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
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
        let open = Arc::new(Mutex::new(Registry::default()));
        let pinner = (engine.config().cluster.is_some() && !opts.read_only).then(|| {
            let (after, every) = pin::schedule(engine.config().write_limit);
            pin::Pinner::start(Arc::downgrade(&open), after, every)
        });
        Ok(PredaFs {
            engine,
            rt,
            // With one bucket mounted, the root is that bucket's path: everything below it
            // resolves as it would under the all-buckets root.
            inodes: Mutex::new(Inodes::with_root(opts.bucket.as_deref().unwrap_or(""))),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            open,
            dir_times: Arc::new(Mutex::new(HashMap::new())),
            nlinks: Mutex::new(HashMap::new()),
            page_versions: Mutex::new(HashMap::new()),
            read_only: opts.read_only,
            gate: Gate(opts.principal),
            ttl: opts.ttl,
            write_buffer: opts.write_buffer,
            started: SystemTime::now(),
            _pinner: pinner,
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
        if self.keys_under(b, &format!("{k}/"), 1)?.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(Node::Dir(None))
    }

    /// The first `max_keys` objects of `bucket` whose keys start with `prefix`, in key order.
    pub(crate) fn keys_under(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: usize,
    ) -> Result<Vec<ObjectMeta>, Errno> {
        let q = ListQuery {
            prefix: prefix.to_string(),
            max_keys,
            ..Default::default()
        };
        match self.engine.list_objects(bucket, &q) {
            Ok(page) => Ok(page.objects),
            Err(e) => Err(errno(&e)),
        }
    }

    /// `lookup` of `name` in `parent`: its attributes, if the mount's key may see it.
    pub(crate) fn look_up(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        let name = name_str(name)?;
        let path = join(&self.path(parent)?, name);
        self.allow_lookup(&path)?;
        let node = self.resolve(&path)?;
        let ino = self.ino(&path);
        if let (Node::File(_), Some(f)) = (&node, self.open_file(ino)) {
            return Ok(open_attr(ino, &*f.lock().map_err(|_| Errno::EIO)?));
        }
        Ok(self.attr_of(ino, &node))
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
    /// one) in the next metadata commit, without waiting for it. With `dirs_changed` (the
    /// entry is, or may be, a directory) its subdirectory count is taken again; a file leaves
    /// it alone (counting scans the directory: once per file would make filling a directory
    /// quadratic).
    fn touch_parent(&self, path: &str, dirs_changed: bool) {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return;
        };
        if dirs_changed {
            if let Ok(mut c) = self.nlinks.lock() {
                c.remove(parent);
            }
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
        let update = async move {
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
        };
        if self.engine.config().writeback.is_some() {
            // A write-back commit does not wait for a disk: done here, no task to wake.
            self.rt.block_on(update);
        } else {
            self.rt.spawn(update);
        }
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
        let path = join(&pp, name_str(name)?);
        self.allow(Action::PutObject, &path)?;
        Ok(path)
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
        self.touch_parent(path, false);
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

    /// `fsync`: everything changed through the mount so far becomes durable (and visible over
    /// S3) before this returns; `EIO` if a write-back commit failed or dropped a change since
    /// the last `fsync`.
    fn make_durable(&self) -> Result<(), Errno> {
        self.engine.flush_blocking().map_err(|e| {
            tracing::error!("fsync: {e}");
            Errno::EIO
        })
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
            for b in self.visible_buckets()? {
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
        const LOOKED_AT: usize = 1000;
        let Ok(mut objects) = self.keys_under(b, &prefix, LOOKED_AT + 1) else {
            return;
        };
        let more = objects.len() > LOOKED_AT;
        objects.truncate(LOOKED_AT);
        let hidden: Vec<&str> = objects
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
            if more { "+" } else { "" },
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
