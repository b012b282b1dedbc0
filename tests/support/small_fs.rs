//! A small tmpfs for tests that fill the disks (root only), shared by the crates' test suites
//! with `#[path = "../../tests/support/small_fs.rs"] mod small_fs;`.

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of a given size mounted at a path, unmounted (lazily) when dropped.
pub struct SmallFs(pub PathBuf);

impl SmallFs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `24m`) at `at`.
    pub fn mount(at: PathBuf, size: &str) -> SmallFs {
        std::fs::create_dir_all(&at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount(8)");
        assert!(st.success(), "mounting a tmpfs needs root");
        SmallFs(at)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
