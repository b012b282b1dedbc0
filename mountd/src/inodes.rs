//! FUSE inode numbers ↔ paths (`""` root, `bucket`, `bucket/dir`, `bucket/dir/file`; with one
//! bucket mounted, the root inode is `bucket`).
//! Numbers are never reused within a mount, so a stale number can only miss, never alias.

use std::collections::HashMap;

/// The root directory's inode.
pub const ROOT: u64 = 1;

/// The two-way table.
pub struct Inodes {
    by_path: HashMap<String, u64>,
    by_ino: HashMap<u64, String>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        Inodes::with_root("")
    }
}

impl Inodes {
    /// A table whose root inode stands for `root` (`""`: all buckets; a bucket name: that
    /// bucket).
    pub fn with_root(root: &str) -> Inodes {
        let mut t = Inodes {
            by_path: HashMap::new(),
            by_ino: HashMap::new(),
            next: ROOT + 1,
        };
        t.by_path.insert(root.to_string(), ROOT);
        t.by_ino.insert(ROOT, root.to_string());
        t
    }

    /// The inode of `path`, allocating one on first sight.
    pub fn ino(&mut self, path: &str) -> u64 {
        if let Some(i) = self.by_path.get(path) {
            return *i;
        }
        let i = self.next;
        self.next += 1;
        self.by_path.insert(path.to_string(), i);
        self.by_ino.insert(i, path.to_string());
        i
    }

    /// The inode of `path`, if it has one (no allocation).
    pub fn lookup(&self, path: &str) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// Forgets `path` (unlinked): its inode number is never handed out again, and a new file
    /// under the same name gets a new one.
    pub fn forget(&mut self, path: &str) {
        if let Some(i) = self.by_path.remove(path) {
            self.by_ino.remove(&i);
        }
    }

    /// The path of an inode.
    pub fn path(&self, ino: u64) -> Option<String> {
        self.by_ino.get(&ino).cloned()
    }

    /// Moves `from` (and everything below it) to `to`, keeping inode numbers.
    pub fn rename(&mut self, from: &str, to: &str) {
        let below = format!("{from}/");
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&below))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, i) in moved {
            let np = format!("{to}{}", &p[from.len()..]);
            self.by_path.remove(&p);
            if let Some(old) = self.by_path.insert(np.clone(), i) {
                self.by_ino.remove(&old);
            }
            self.by_ino.insert(i, np);
        }
    }
}

/// `parent/name`, or `name` under the root.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Splits a path into bucket and key (`""` for the bucket itself).
pub fn split(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_rename() {
        let mut t = Inodes::default();
        let a = t.ino("b/a");
        let f = t.ino("b/a/f");
        assert_eq!(t.ino("b/a"), a);
        t.rename("b/a", "b/z");
        assert_eq!(t.path(a).as_deref(), Some("b/z"));
        assert_eq!(t.path(f).as_deref(), Some("b/z/f"));
        assert_eq!(t.ino("b/z/f"), f);
        assert_eq!(split("b/z/f"), ("b", "z/f"));
        assert_eq!(split("b"), ("b", ""));
        assert_eq!(join("", "b"), "b");
    }
}
