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

/// Where a call makes a new entry (a name in a directory), and who makes it: its owner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEntry<'a> {
    pub caller: Caller,
    pub parent: INodeNo,
    pub name: &'a OsStr,
}

impl<'a> NewEntry<'a> {
    /// The entry `name` in `parent` that a FUSE request makes.
    pub fn of(req: &Request, parent: INodeNo, name: &'a OsStr) -> Self {
        NewEntry {
            caller: Caller::of(req),
            parent,
            name,
        }
    }
}

impl PredaFs {
    /// `mkdir`: a bucket at the root, elsewhere a `dir/` marker with `mode` (umask applied)
    /// owned by the caller.
    pub(crate) fn make_dir(&self, at: NewEntry<'_>, mode: u32) -> Result<FileAttr, Errno> {
        let NewEntry {
            caller,
            parent,
            name,
        } = at;
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let name = name_str(name)?;
        let pp = self.path(parent)?;
        let path = join(&pp, name);
        if pp.is_empty() {
            self.allow(Action::CreateBucket, name)?;
            let owner = self.gate.0.as_ref().and_then(|p| p.owner_id());
            self.rt
                .block_on(self.engine.create_bucket_as(name, owner, false))
                .map_err(|e| errno(&e))?;
        } else {
            self.allow(Action::PutObject, &format!("{path}/"))?;
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
            self.touch_parent(&path, true);
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
        self.allow(Action::DeleteObject, &path)?;
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
        self.touch_parent(&path, false);
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
                self.allow(Action::DeleteBucket, b)?;
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
        self.allow(Action::DeleteObject, &format!("{path}/"))?;
        let (b, k) = split(&path);
        if self.dir_has_entries(b, k)? {
            self.log_hidden_keys(&path);
            return Err(Errno::ENOTEMPTY);
        }
        self.rt
            .block_on(self.engine.delete_object(b, &format!("{k}/")))
            .map_err(|e| errno(&e))?;
        if let Ok(mut t) = self.dir_times.lock() {
            t.remove(&path);
        }
        self.touch_parent(&path, true);
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
        self.allow_entry(Action::PutObject, &self.path(ino)?)?;
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
                // With unflushed writes in write-back mode, the change rides with the file's
                // commit (close or fsync), as `tar x` does it: three attribute changes per
                // file, no commit of their own.
                let rides = g.is_dirty() && self.engine.config().writeback.is_some();
                if !g.detached && !rides {
                    // Visible over S3 now, not only at the next commit.
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

    /// `rename`: a file, or a directory with everything under it (one metadata rename per
    /// key, no data copied), onto a free name, a file, or an empty directory. Buckets keep
    /// their names (`EPERM`); `no_replace`: `RENAME_NOREPLACE`.
    pub(crate) fn rename_entry(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
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
        for (action, path) in [
            (Action::GetObject, &from),
            (Action::DeleteObject, &from),
            (Action::PutObject, &to),
        ] {
            self.allow_entry(action, path)?;
        }
        let target = self.resolve(&to).ok();
        if no_replace && target.is_some() {
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
                    Some(Node::Dir(_)) if self.dir_has_entries(tb, tk)? => {
                        return Err(Errno::ENOTEMPTY);
                    }
                    _ => {}
                }
                // Every key under the directory, renamed one by one (metadata only).
                let prefix = format!("{fk}/");
                loop {
                    let objects = self.keys_under(fb, &prefix, 1000)?;
                    if objects.is_empty() {
                        break;
                    }
                    for o in &objects {
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
        self.touch_parent(&from, true);
        self.touch_parent(&to, true);
        Ok(())
    }

    /// Whether directory `key` of `bucket` holds anything beside its own marker.
    pub(crate) fn dir_has_entries(&self, bucket: &str, key: &str) -> Result<bool, Errno> {
        let marker = format!("{key}/");
        let objects = self.keys_under(bucket, &marker, 2)?;
        Ok(objects.iter().any(|o| o.key != marker))
    }

    /// `create`: a new empty file with `mode` (umask applied), owned by the caller, opened
    /// for writing; returns its attributes and the handle.
    pub(crate) fn create_file(
        &self,
        at: NewEntry<'_>,
        mode: u32,
    ) -> Result<(FileAttr, u64), Errno> {
        let path = self.new_file_path(at.parent, at.name)?;
        let attrs = ObjectAttrs {
            content_type: Some(guess_type(split(&path).1)),
            posix: Some(at.caller.posix(libc::S_IFREG | (mode & 0o7777))),
            ..Default::default()
        };
        let (ino, m) = self.put_new(&path, b"", attrs)?;
        self.attach(ino, &path, true, false)?;
        if m.versioned {
            if let Some(f) = self.open_file(ino) {
                f.lock().map_err(|_| Errno::EIO)?.placeholder = m.version_id().map(str::to_string);
            }
        }
        let fh = self.new_fh(Handle::File {
            ino,
            writable: true,
            ra: ReadAhead::default(),
        });
        Ok((file_attr(ino, &m), fh))
    }

    /// `symlink`: a link object whose body is the target.
    pub(crate) fn make_symlink(&self, at: NewEntry<'_>, target: &[u8]) -> Result<FileAttr, Errno> {
        let path = self.new_file_path(at.parent, at.name)?;
        if self.resolve(&path).is_ok() {
            return Err(Errno::EEXIST);
        }
        let attrs = ObjectAttrs {
            posix: Some(at.caller.posix(libc::S_IFLNK | 0o777)),
            ..Default::default()
        };
        let (ino, m) = self.put_new(&path, target, attrs)?;
        Ok(file_attr(ino, &m))
    }

    /// `readlink`: a symlink's target (anything else: `EINVAL`).
    pub(crate) fn read_link(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let path = self.path(ino)?;
        self.allow(Action::GetObject, &path)?;
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
    }

    /// `mknod`: a regular file, FIFO, socket or device node (its number kept in `rdev`), with
    /// `mode` (type and bits, umask applied).
    pub(crate) fn make_node(
        &self,
        at: NewEntry<'_>,
        mode: u32,
        rdev: u32,
    ) -> Result<FileAttr, Errno> {
        let path = self.new_file_path(at.parent, at.name)?;
        if self.resolve(&path).is_ok() {
            return Err(Errno::EEXIST);
        }
        // The kernel has checked the caller may (CAP_MKNOD for devices); the mount is
        // `nodev`, so a device node here is a name and a number, never a way to a device.
        let kind = match mode & libc::S_IFMT {
            0 => libc::S_IFREG,
            k
            @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => k,
            _ => return Err(Errno::EINVAL),
        };
        let mut attrs = ObjectAttrs {
            posix: Some(at.caller.posix(kind | (mode & 0o7777))),
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
    }

    /// `setxattr` of a `user.*` attribute on a file (kept as `x-amz-meta-xattr-*`, base64).
    pub(crate) fn set_xattr(
        &self,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let path = self.path(ino)?;
        self.allow(Action::PutObject, &path)?;
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
                a.user_metadata.insert(key.clone(), v.clone());
            }))
            .map(|_| ())
            .map_err(|e| errno(&e))
    }

    /// `getxattr`: the value of one extended attribute.
    pub(crate) fn get_xattr(&self, ino: INodeNo, name: &OsStr) -> Result<Vec<u8>, Errno> {
        let path = self.path(ino)?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        // Only `user.*` can be set (setxattr refuses the rest): metadata an S3 client wrote
        // under another namespace's name (`security.capability`, say) is never one. The
        // kernel asks for `security.capability` before every write: answered here, without
        // a lookup.
        if !name.starts_with("user.") {
            return Err(Errno::NO_XATTR);
        }
        self.allow_entry(Action::GetObject, &path)?;
        let Node::File(m) = self.resolve(&path)? else {
            return Err(Errno::NO_XATTR);
        };
        let v = m
            .attrs
            .user_metadata
            .get(&posix::xattr_key(name))
            .ok_or(Errno::NO_XATTR)?;
        unb64(v).ok_or(Errno::EIO)
    }

    /// `listxattr`: the names of a file's extended attributes, each ending in a NUL.
    pub(crate) fn list_xattr(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let path = self.path(ino)?;
        self.allow_entry(Action::GetObject, &path)?;
        let mut out = Vec::new();
        if let Node::File(m) = self.resolve(&path)? {
            for k in m.attrs.user_metadata.keys() {
                if let Some(n) = k
                    .strip_prefix(posix::XATTR_PREFIX)
                    .filter(|n| n.starts_with("user."))
                {
                    out.extend_from_slice(n.as_bytes());
                    out.push(0);
                }
            }
        }
        Ok(out)
    }

    /// `removexattr`: drops one extended attribute (`ENODATA` when it has none).
    pub(crate) fn remove_xattr(&self, ino: INodeNo, name: &OsStr) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let path = self.path(ino)?;
        self.allow(Action::PutObject, &path)?;
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
    }
}
