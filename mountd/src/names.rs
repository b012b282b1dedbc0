//! Which keys the mount can show as file names.
//!
//! S3 keys may hold components no file name can be: `.` and `..`, empty ones (`a//b`, a
//! leading `/`), components longer than 255 bytes (the kernel's `NAME_MAX`), and NUL bytes.
//! Such entries are left out of directory listings (and so can never be looked up); a
//! directory holding only such keys is still not empty, so `rmdir` and `rm -rf` fail with
//! `ENOTEMPTY` on it, and the mount logs the keys it could not show. See `docs/semantics.md`.

/// Longest file name the kernel accepts.
pub const NAME_MAX: usize = 255;

/// Whether `name` (one path component taken from a key) can appear in a directory listing.
pub fn is_showable(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= NAME_MAX
        && !name.contains('\0')
}

/// Whether a whole key (below the bucket) can be reached through the mount: every component
/// showable. A trailing `/` (a directory marker) is allowed.
pub fn is_reachable(key: &str) -> bool {
    let key = key.strip_suffix('/').unwrap_or(key);
    key.split('/').all(is_showable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_no_file_can_have_are_hidden() {
        for ok in ["a", "...", ".a", "a.", "é", &"x".repeat(255)] {
            assert!(is_showable(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a\0b", &"x".repeat(256)] {
            assert!(!is_showable(bad), "{bad:?}");
        }
    }

    #[test]
    fn reachable_keys() {
        for ok in ["a", "a/b", "dir/", "a/.../b", "a/.x"] {
            assert!(is_reachable(ok), "{ok}");
        }
        for bad in [
            "/a",
            "a//b",
            "a/./b",
            "a/../b",
            "..",
            &format!("a/{}", "y".repeat(300)),
        ] {
            assert!(!is_reachable(bad), "{bad}");
        }
    }
}
