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
}
