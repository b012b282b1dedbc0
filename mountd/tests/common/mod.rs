//! What the mount tests share: a real mountd on a temporary data dir, and an s3d beside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mountd on `dir/data` mounted at `dir/mnt`, unmounted and stopped on drop.
pub struct Mount {
    pub child: Child,
    pub mnt: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Makes what the mount at `mnt` changed durable, and visible to other processes, now: an
/// fsync of its root directory commits the write-back window (docs/semantics.md).
pub fn settle(mnt: &Path) {
    std::fs::File::open(mnt)
        .and_then(|d| d.sync_all())
        .unwrap_or_else(|e| panic!("fsync of {}: {e}", mnt.display()));
}

/// After mounts that were killed: GC releases their drafts, and then no draft is left and
/// fsck finds the metadata and the shards in agreement.
pub fn assert_collected_and_clean(data_dir: &Path) {
    let e = engine::Engine::open(engine::EngineConfig::new(data_dir)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gc = rt.block_on(e.gc(true)).unwrap();
    assert_eq!(e.draft_count().unwrap(), 0, "{gc:?}");
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

/// The names in a directory, sorted.
pub fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The errno a call failed with (0 if it succeeded).
pub fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

/// Whether something is mounted at `mnt`.
pub fn mounted(mnt: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let p = mnt.to_string_lossy();
    m.lines().any(|l| l.split(' ').nth(1) == Some(&p))
}

/// `fusermount3 -u mnt`, which must succeed.
pub fn fusermount_u(mnt: &Path) {
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(mnt)
        .status()
        .unwrap();
    assert!(st.success(), "fusermount3 -u {}", mnt.display());
}

/// Takes whatever is mounted at `mnt` away (lazily: open files stay usable), for clean-ups.
pub fn lazy_unmount(mnt: &Path) {
    if mounted(mnt) {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(mnt)
            .status();
    }
}

/// Waits (at most 20 s) until something is mounted at `mnt`; on failure shows the log of the
/// process that should have mounted it.
pub fn wait_mounted(mnt: &Path, log: &Path) {
    let t = Instant::now();
    while !mounted(mnt) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} not mounted: {}",
            mnt.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Mount {
    pub fn start() -> Mount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        Mount::start_in(dir)
    }

    /// Mounts `dir/data` on `dir/mnt` (both may exist from an earlier mount).
    pub fn start_in(dir: tempfile::TempDir) -> Mount {
        Mount::start_with(dir, &[])
    }

    /// A fresh mount with extra mountd arguments.
    pub fn start_args(args: &[&str]) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        Mount::start_with(dir, args)
    }

    pub fn start_with(dir: tempfile::TempDir, args: &[&str]) -> Mount {
        let mnt = dir.path().join("mnt");
        let child = Command::new(env!("CARGO_BIN_EXE_mountd"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .arg(&mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("mountd.log")).unwrap(),
            ))
            .spawn()
            .expect("spawn mountd");
        wait_mounted(&mnt, &dir.path().join("mountd.log"));
        Mount { child, mnt, dir }
    }

    /// `kill -9` of mountd, and its dead mount taken away (lazily, as after a crash).
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        lazy_unmount(&self.mnt);
    }

    /// A new mountd on the same data dir and mount point (after [`Mount::kill_9`]).
    pub fn restart(mut self) -> Mount {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        Mount::start_in(dir)
    }

    /// See [`settle`].
    pub fn settle(&self) {
        settle(&self.mnt);
    }

    /// Unmounts and waits for mountd to exit; returns the directory (data dir inside) for a
    /// look at what is left.
    pub fn unmount(mut self) -> tempfile::TempDir {
        fusermount_u(&self.mnt);
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "mountd exit status {st}");
                return std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            }
            assert!(t.elapsed() < Duration::from_secs(20), "mountd did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        lazy_unmount(&self.mnt);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An s3d on the mount's data dir (the two doors side by side), stopped on drop.
pub struct S3dBeside {
    pub child: std::process::Child,
    /// The mount beside it: settled before each aws call, so that S3 sees what the mount
    /// wrote before it (a window later, it would anyway).
    pub mnt: PathBuf,
    pub port: u16,
    pub ca: PathBuf,
    pub log_path: PathBuf,
}

impl S3dBeside {
    pub const AK: &'static str = "PSMOUNTTESTKEY000001";
    pub const SK: &'static str = "mount-test-secret-0123456789abcdefghijk";

    pub fn start(m: &Mount) -> S3dBeside {
        S3dBeside::start_with(m, &[])
    }

    /// With extra s3d arguments; its log goes to `s3d.log` in the mount's directory.
    pub fn start_with(m: &Mount, args: &[&str]) -> S3dBeside {
        S3dBeside::start_env(m, args, &[])
    }

    /// With extra arguments and environment variables.
    pub fn start_env(m: &Mount, args: &[&str], envs: &[(&str, &str)]) -> S3dBeside {
        let s3d = PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d");
        assert!(
            s3d.exists(),
            "build s3d too (make test builds the whole workspace)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&s3d)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(m.dir.path().join("data"))
            .args(args)
            .envs(envs.iter().copied())
            .env("PREDASTORE_ACCESS_KEY", Self::AK)
            .env("PREDASTORE_SECRET_KEY", Self::SK)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(m.dir.path().join("s3d.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(50));
        }
        S3dBeside {
            child,
            mnt: m.mnt.clone(),
            port,
            ca: m.dir.path().join("data/tls/cert.pem"),
            log_path: m.dir.path().join("s3d.log"),
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs the aws cli against it, once the mount beside it has settled (see
    /// [`settle`]); panics unless it succeeds; its output.
    pub fn aws(&self, args: &[&str]) -> String {
        if mounted(&self.mnt) {
            let _ = std::fs::File::open(&self.mnt).and_then(|d| d.sync_all());
        }
        self.aws_now(args)
    }

    /// [`S3dBeside::aws`] without settling the mount first: S3 as it is now.
    pub fn aws_now(&self, args: &[&str]) -> String {
        let o = Command::new("aws")
            .args([
                "--endpoint-url",
                &format!("https://127.0.0.1:{}", self.port),
                "--region",
                "us-east-1",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", Self::AK)
            .env("AWS_SECRET_ACCESS_KEY", Self::SK)
            .env("AWS_CA_BUNDLE", &self.ca)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for S3dBeside {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
