//! What holds a directory tree's disk space: every file under it with the bytes it occupies
//! (punched and sparse ranges not counted) and its length. Shared by test suites with `#[path]`.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Every file under `dir` (recursively): path, bytes held on disk, length.
pub fn held_files(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), m.blocks() * 512, m.len()));
            }
        }
    }
    out
}

/// Bytes all files under `dir` hold on disk.
pub fn held_bytes(dir: &Path) -> u64 {
    held_files(dir).iter().map(|f| f.1).sum()
}
