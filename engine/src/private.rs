//! Files and directories only the store's own user may read: object data, metadata and keys
//! are created with mode 0700 (directories) and 0600 (files) whatever the process's umask, and
//! [`loose_modes`] finds entries that are wider (made by older versions, or by hand).

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory the store creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the store creates.
pub const FILE_MODE: u32 = 0o600;

/// `mkdir -p` with mode 0700 for every directory it creates.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// `mkdir` with mode 0700.
pub fn create_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// Open options that create files with mode 0600.
pub fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// An entry that other users may read, enter or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseMode {
    /// The entry.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

/// Entries under `roots` (each root itself and up to `depth` levels below it) whose mode gives
/// anything to group or others; at most `limit` of them. Symlinks are not followed.
pub fn loose_modes(roots: &[PathBuf], depth: usize, limit: usize) -> Vec<LooseMode> {
    let mut out = Vec::new();
    for r in roots {
        walk(r, depth, limit, &mut out);
    }
    out
}

fn walk(path: &Path, depth: usize, limit: usize, out: &mut Vec<LooseMode>) {
    if out.len() >= limit {
        return;
    }
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if md.file_type().is_symlink() {
        return;
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        out.push(LooseMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    if md.is_dir() && depth > 0 {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                walk(&e.path(), depth - 1, limit, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn created_private_whatever_the_umask() {
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0) };
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        create_dir(&deep.join("d")).unwrap();
        let f = deep.join("f");
        open_options()
            .write(true)
            .create_new(true)
            .open(&f)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        unsafe { libc::umask(old) };
        for p in [
            d.path().join("a"),
            d.path().join("a/b"),
            deep.clone(),
            deep.join("d"),
        ] {
            assert_eq!(
                std::fs::metadata(&p).unwrap().mode() & 0o777,
                0o700,
                "{p:?}"
            );
        }
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        let root = d.path().join("a");
        assert_eq!(loose_modes(std::slice::from_ref(&root), 5, 10), vec![]);
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(
            loose_modes(&[root], 5, 10),
            vec![LooseMode {
                path: f,
                mode: 0o644
            }]
        );
    }
}
