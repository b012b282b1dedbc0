//! Filesystem calls as plain methods (no fuser request or reply): what the FUSE adapter
//! (`fuse.rs`) answers with, and what the unit tests (`tests.rs`) call without a mount.

use super::*;

/// Who makes a call: the owner of what it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
    /// The caller of a FUSE request.
    pub fn of(req: &Request) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
        }
    }

    /// POSIX attributes of something this caller creates now with `mode` (type and bits).
    pub fn posix(self, mode: u32) -> PosixAttrs {
        PosixAttrs::new(mode, self.uid, self.gid, engine::meta::now_ns())
    }
}

impl PredaFs {
    /// `mkdir`: a bucket at the root, elsewhere a `dir/` marker with `mode` (umask applied)
    /// owned by the caller.
    pub(crate) fn make_dir(
        &self,
        caller: Caller,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
    ) -> Result<FileAttr, Errno> {
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
            let posix = caller.posix(libc::S_IFDIR | (mode & 0o7777));
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
    }

    /// `unlink`: removes a file (a directory: `EISDIR`).
    pub(crate) fn remove_file(&self, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
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
    }

    /// `rmdir`: removes an empty directory or bucket (`ENOTEMPTY` otherwise; keys no file
    /// name can show count, and are logged).
    pub(crate) fn remove_dir(&self, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
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
    }

    /// `setattr`: `chmod`, `chown`, `utimensat` (ctime becomes now) and `truncate`. A
    /// directory's attributes live on its marker object, made when it has none.
    pub(crate) fn set_attr(
        &self,
        ino: INodeNo,
        change: Change,
        size: Option<u64>,
    ) -> Result<FileAttr, Errno> {
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
    }
}
