//! Small filesystem helpers every layer uses (the bottom of the engine's imports: they import
//! nothing of the engine but its error type).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::Result;

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| crate::error::Error::Format(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = crate::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    if fsync {
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Total and free bytes of the filesystem holding `path`.
pub fn fs_capacity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return None;
    }
    let f = s.f_frsize as u64;
    Some((s.f_blocks as u64 * f, s.f_bavail as u64 * f))
}
