//! The FUSE adapter: fuser's callbacks unpack the request, call the filesystem's logic
//! (`ops.rs` for what changes the tree, `io.rs` for open files and directories, `mod.rs` and
//! `attr.rs` for lookups and attributes) and answer.

use super::*;

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
        // The mount clears set-ID bits itself on write, truncate and chown: the kernel then
        // does not ask for `security.capability` before every write nor fetch the attributes
        // before every chown — two round trips per file that `tar x` writes.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        answer_entry(reply, &self.ttl, self.look_up(parent, name))
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
        req: &Request,
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
            // A chown always; a truncate by a caller without CAP_FSETID (fuser does not pass
            // the kernel's FATTR_KILL_SUIDGID: root stands for the capability).
            kill_setid: uid.is_some() || gid.is_some() || (size.is_some() && req.uid() != 0),
        };
        let res = self.set_attr(ino, change, size);
        answer_attr(reply, &self.ttl, res)
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
        let res = self.make_dir(NewEntry::of(req, parent, name), mode & !umask);
        answer_entry(reply, &self.ttl, res)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = self.remove_file(parent, name);
        answer(reply, res)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = self.remove_dir(parent, name);
        answer(reply, res)
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
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let res = self.rename_entry(parent, name, newparent, newname, no_replace);
        answer(reply, res)
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // open(O_TRUNC) by a caller without CAP_FSETID clears set-ID bits (fuser does not pass
        // the kernel's FUSE_OPEN_KILL_SUIDGID: root stands for the capability).
        let kill_setid = flags.0 & libc::O_TRUNC != 0 && req.uid() != 0;
        let opened = self.open_handle(ino, flags.0).and_then(|(fh, keep)| {
            if kill_setid {
                if let Err(e) = self.clear_setid(ino) {
                    // The kernel never learns of the handle: nothing else would release it.
                    let _ = self.release_handle(fh);
                    return Err(e);
                }
            }
            Ok((fh, keep))
        });
        match opened {
            Ok((fh, keep)) => reply.opened(
                FileHandle(fh),
                if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    page_cache_use(flags.0)
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
        flags: i32,
        reply: ReplyCreate,
    ) {
        let res = self.create_file(NewEntry::of(req, parent, name), mode & !umask);
        match res {
            Ok((a, fh)) => reply.created(
                &self.ttl,
                &a,
                Generation(0),
                FileHandle(fh),
                page_cache_use(flags),
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
        match self.read_handle(fh.0, offset, size) {
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
        write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let append = flags.0 & libc::O_APPEND != 0;
        // Set by the kernel when the file has a set-ID bit and the writer lacks CAP_FSETID.
        let kill_setid = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        let written = self.write_handle(fh.0, offset, data, append).and_then(|n| {
            if kill_setid {
                self.clear_setid(INodeNo(self.writable_ino(fh)?))?;
            }
            Ok(n)
        });
        match written {
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
        answer(reply, self.allocate(fh.0, offset, length, mode))
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
        match self.seek(ino, fh.0, offset, whence) {
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
        answer(reply, self.commit_handle(fh))
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        answer(
            reply,
            self.commit_handle(fh).and_then(|_| self.make_durable()),
        )
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        answer(reply, self.make_durable())
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
        answer(reply, self.release_handle(fh.0))
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.open_dir(ino) {
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
        let entries = match self.dir_entries(ino, fh.0) {
            Ok(e) => e,
            Err(e) => return reply.error(e),
        };
        for (i, (e_ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
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
        self.release_dir(fh.0);
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
        let target = target.as_os_str().as_encoded_bytes();
        let res = self.make_symlink(NewEntry::of(req, parent, link_name), target);
        answer_entry(reply, &self.ttl, res)
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let res = self.read_link(ino);
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
        let res = self.make_node(NewEntry::of(req, parent, name), mode & !umask, rdev);
        answer_entry(reply, &self.ttl, res)
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
        let res = self.set_xattr(ino, name, value, flags);
        answer(reply, res)
    }

    fn getxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: fuser::ReplyXattr,
    ) {
        let res = self.get_xattr(ino, name);
        answer_xattr(reply, size, res)
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        let res = self.list_xattr(ino);
        answer_xattr(reply, size, res)
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let res = self.remove_xattr(ino, name);
        answer(reply, res)
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

/// How a new handle uses the kernel's page cache. One opened write-only bypasses it
/// (`FOPEN_DIRECT_IO`): its writes go from the writer's buffer to the mount without being
/// copied into cache pages nobody reads through this handle (`cp`, `tar`, `rsync` and `dd`
/// write that way), which on a large copy also spares the memory of a second copy of the file.
/// The kernel drops cached pages of the range a direct write covers, so other handles still
/// read what was written. A handle that may read keeps the cache (and `mmap`).
fn page_cache_use(open_flags: i32) -> FopenFlags {
    if open_flags & libc::O_ACCMODE == libc::O_WRONLY {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::empty()
    }
}

/// Answers a call that returns nothing.
fn answer(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

/// Answers a call that returns attributes.
fn answer_attr(reply: ReplyAttr, ttl: &Duration, r: Result<FileAttr, Errno>) {
    match r {
        Ok(a) => reply.attr(ttl, &a),
        Err(e) => reply.error(e),
    }
}

/// Answers a call that returns a new or found entry.
fn answer_entry(reply: ReplyEntry, ttl: &Duration, r: Result<FileAttr, Errno>) {
    match r {
        Ok(a) => reply.entry(ttl, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}

/// Answers `getxattr` or `listxattr`: the size asked for with `size` 0, else the bytes
/// (`ERANGE` when they do not fit).
fn answer_xattr(reply: fuser::ReplyXattr, size: u32, r: Result<Vec<u8>, Errno>) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}
