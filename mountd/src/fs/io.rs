//! Calls on open files and directories as plain methods (no fuser request or reply): open,
//! read, write, fallocate, SEEK_DATA/SEEK_HOLE, release, and directory handles. What the FUSE
//! adapter (`fuse.rs`) answers with, and what the unit tests (`tests.rs`) call without a
//! mount.

use super::*;

/// What `fallocate` may ask for; anything else (collapse, insert, unshare) is not offered.
const FALLOC_KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
const FALLOC_PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE;
const FALLOC_ZERO_RANGE: i32 = libc::FALLOC_FL_ZERO_RANGE;

impl PredaFs {
    /// `open` of a file with the `open(2)` flags: a new handle, and whether the kernel may
    /// keep the pages it cached of the file. A writer attaches to (or starts) the file's
    /// shared open state; `O_TRUNC` empties it.
    pub(crate) fn open_handle(&self, ino: INodeNo, flags: i32) -> Result<(u64, bool), Errno> {
        let acc = flags & libc::O_ACCMODE;
        let writing = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        if writing && self.read_only {
            return Err(Errno::EROFS);
        }
        let trunc = flags & libc::O_TRUNC != 0;
        let path = self.path(ino)?;
        if acc != libc::O_WRONLY {
            self.allow(Action::GetObject, &path)?;
        }
        if writing {
            self.allow(Action::PutObject, &path)?;
        }
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
    }

    /// `read` of up to `size` bytes at `offset` through handle `fh`: what a writer wrote when
    /// the file is open for writing, else the object (with read-ahead for sequential readers).
    pub(crate) fn read_handle(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<bytes::Bytes, Errno> {
        let h = self.handle(FileHandle(fh))?;
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
    }

    /// `write` of `data` at `offset` (at the end with `O_APPEND`) through a writable handle;
    /// the bytes written.
    pub(crate) fn write_handle(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<u32, Errno> {
        let ino = self.writable_ino(FileHandle(fh))?;
        let f = self.open_file(ino).ok_or(Errno::EBADF)?;
        {
            let mut g = f.lock().map_err(|_| Errno::EIO)?;
            let off = if append { g.size() } else { offset };
            g.write(off, data)?;
            if openfile::buffered() > self.write_buffer {
                // This write's data is taken; a failure to store is reported by the next
                // write (which tries again first), flush, fsync or close.
                let _ = g.spill();
            }
        }
        self.relieve_memory(ino);
        Ok(data.len() as u32)
    }

    /// Clears the set-ID bits of `ino` if it has any, as a write, a truncate or a chown does
    /// (the kernel leaves that to the mount: `FUSE_HANDLE_KILLPRIV_V2`).
    pub(crate) fn clear_setid(&self, ino: INodeNo) -> Result<(), Errno> {
        let mode = match self.open_file(ino.0) {
            Some(f) => f.lock().map_err(|_| Errno::EIO)?.posix.mode,
            None => match self.resolve(&self.path(ino)?)? {
                Node::File(m) => m.posix().mode,
                _ => return Ok(()),
            },
        };
        if mode & 0o6000 == 0 {
            return Ok(());
        }
        let change = engine::posix::Change {
            kill_setid: true,
            ..Default::default()
        };
        self.set_attr(ino, change, None).map(|_| ())
    }

    /// `fallocate` through a writable handle: punching a hole or zeroing a range (the file
    /// grows unless `FALLOC_FL_KEEP_SIZE`), or allocating, which checks the space is free now
    /// and sets the size (copy-on-write stores every write anew, so nothing can be set aside).
    pub(crate) fn allocate(
        &self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        if mode & !(FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE | FALLOC_ZERO_RANGE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let ino = self.writable_ino(FileHandle(fh))?;
        let end = offset
            .checked_add(length)
            .filter(|e| *e <= openfile::MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let f = self.open_file(ino).ok_or(Errno::EBADF)?;
        let mut g = f.lock().map_err(|_| Errno::EIO)?;
        let grow = mode & FALLOC_KEEP_SIZE == 0 && end > g.size();
        if mode & (FALLOC_PUNCH_HOLE | FALLOC_ZERO_RANGE) != 0 {
            // The kernel only passes PUNCH_HOLE together with KEEP_SIZE.
            if grow {
                g.truncate(end)?;
            }
            g.zero_range(offset, length)?;
        } else {
            let need = end.saturating_sub(g.size()).min(length);
            if need > self.free_bytes() {
                return Err(Errno::ENOSPC);
            }
            if grow {
                g.truncate(end)?;
            }
        }
        Ok(())
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE` (the kernel handles the other kinds itself):
    /// the next offset at or after `offset` that holds data, or that is in a hole (the end of
    /// the file counts as one); `ENXIO` at or past the end.
    pub(crate) fn seek(
        &self,
        ino: INodeNo,
        fh: u64,
        offset: i64,
        whence: i32,
    ) -> Result<u64, Errno> {
        if !matches!(
            &*self
                .handle(FileHandle(fh))?
                .lock()
                .map_err(|_| Errno::EIO)?,
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
    }

    /// `release` of a file handle: a writer's last close commits the file.
    pub(crate) fn release_handle(&self, fh: u64) -> Result<(), Errno> {
        let h = self.handles.lock().ok().and_then(|mut t| t.remove(&fh));
        let res = match h.as_ref().and_then(|h| h.lock().ok()).as_deref() {
            Some(Handle::File { ino, writable, .. }) => self.detach_handle(*ino, *writable),
            _ => Ok(()),
        };
        res
    }

    /// `opendir`: a handle holding the directory's entries as they are now.
    pub(crate) fn open_dir(&self, ino: INodeNo) -> Result<u64, Errno> {
        let path = self.path(ino)?;
        if !path.is_empty() {
            self.allow_listing(&path)?;
        }
        if let Node::File(_) = self.resolve(&path)? {
            return Err(Errno::ENOTDIR);
        }
        let entries = self.list_dir(&path)?;
        Ok(self.new_fh(Handle::Dir(entries)))
    }

    /// What `readdir` of handle `fh` on directory `ino` lists: `.`, `..`, then the entries
    /// the handle holds; each with its inode, type and name.
    pub(crate) fn dir_entries(
        &self,
        ino: INodeNo,
        fh: u64,
    ) -> Result<Vec<(u64, FileType, String)>, Errno> {
        let h = self.handle(FileHandle(fh))?;
        let h = h.lock().map_err(|_| Errno::EIO)?;
        let Handle::Dir(entries) = &*h else {
            return Err(Errno::ENOTDIR);
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
        let mut out = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (parent, FileType::Directory, "..".to_string()),
        ];
        out.extend(entries.iter().cloned());
        Ok(out)
    }

    /// `releasedir`: forgets a directory handle.
    pub(crate) fn release_dir(&self, fh: u64) {
        if let Ok(mut t) = self.handles.lock() {
            t.remove(&fh);
        }
    }
}
