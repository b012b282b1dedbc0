//! A real FUSE mount (root, /dev/fuse) of a real data dir, with s3d on the same data dir.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::Digest;

struct Mount {
    child: Child,
    mnt: PathBuf,
    dir: tempfile::TempDir,
}

fn mounted(mnt: &Path) -> bool {
    let m = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let p = mnt.to_string_lossy();
    m.lines().any(|l| l.split(' ').nth(1) == Some(&p))
}

impl Mount {
    fn start() -> Mount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        Mount::start_in(dir)
    }

    /// Mounts `dir/data` on `dir/mnt` (both may exist from an earlier mount).
    fn start_in(dir: tempfile::TempDir) -> Mount {
        let mnt = dir.path().join("mnt");
        let child = Command::new(env!("CARGO_BIN_EXE_mountd"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg(&mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("mountd.log")).unwrap(),
            ))
            .spawn()
            .expect("spawn mountd");
        let t = Instant::now();
        while !mounted(&mnt) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "not mounted: {}",
                std::fs::read_to_string(dir.path().join("mountd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount { child, mnt, dir }
    }

    fn unmount(mut self) {
        let st = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .status()
            .unwrap();
        assert!(st.success());
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "mountd exit status {st}");
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "mountd did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mounted(&self.mnt) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.mnt)
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn md5(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

#[test]
fn files_dirs_errors_and_attributes() {
    let m = Mount::start();
    let b = m.mnt.join("files");
    std::fs::create_dir(&b).unwrap();
    // A tree of mixed files in, and back out.
    let sizes = [
        0usize,
        1,
        4 * 1024 * 1024 - 1,
        4 * 1024 * 1024,
        4 * 1024 * 1024 + 1,
        20 * 1024 * 1024,
    ];
    std::fs::create_dir_all(b.join("t/sub")).unwrap();
    for (i, s) in sizes.iter().enumerate() {
        std::fs::write(b.join(format!("t/sub/f{i}")), data(i as u64, *s)).unwrap();
    }
    for (i, s) in sizes.iter().enumerate() {
        let got = std::fs::read(b.join(format!("t/sub/f{i}"))).unwrap();
        assert_eq!(md5(&got), md5(&data(i as u64, *s)), "f{i}");
        assert_eq!(
            std::fs::metadata(b.join(format!("t/sub/f{i}")))
                .unwrap()
                .len(),
            *s as u64
        );
    }
    let out = m.dir.path().join("out");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(b.join("t"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(cp.success());
    for (i, s) in sizes.iter().enumerate() {
        assert_eq!(
            md5(&std::fs::read(out.join(format!("sub/f{i}"))).unwrap()),
            md5(&data(i as u64, *s))
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(b.join("t/sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4", "f5"]);

    // Writes in the middle, appends, truncation.
    let p = b.join("rw.bin");
    std::fs::write(&p, data(9, 100_000)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    f.seek(SeekFrom::Start(50_000)).unwrap();
    f.write_all(b"MIDDLE").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut want = data(9, 100_000);
    want[50_000..50_006].copy_from_slice(b"MIDDLE");
    assert_eq!(std::fs::read(&p).unwrap(), want);
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"TAIL").unwrap();
    drop(f);
    want.extend_from_slice(b"TAIL");
    assert_eq!(std::fs::read(&p).unwrap(), want);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(10).unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), &want[..10]);

    // A file unlinked while open stays gone when it is written and closed.
    let doomed = b.join("doomed.txt");
    let mut f = std::fs::File::create(&doomed).unwrap();
    std::fs::remove_file(&doomed).unwrap();
    f.write_all(b"written after unlink").unwrap();
    drop(f);
    assert!(!doomed.exists(), "an unlinked file came back on close");
    // A file renamed while open for writing is committed under its new name.
    let mut f = std::fs::File::create(b.join("draft.txt")).unwrap();
    f.write_all(b"first ").unwrap();
    f.sync_all().unwrap();
    std::fs::rename(b.join("draft.txt"), b.join("final.txt")).unwrap();
    f.write_all(b"second").unwrap();
    drop(f);
    assert!(!b.join("draft.txt").exists(), "the old name came back");
    assert_eq!(std::fs::read(b.join("final.txt")).unwrap(), b"first second");
    // ftruncate on an open file shows the new size at once; a size past 5 TiB is EFBIG.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(b.join("ft.bin"))
        .unwrap();
    f.set_len(12345).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 12345);
    assert_eq!(errno_of(f.set_len(6 << 40)), libc::EFBIG);
    drop(f);
    assert_eq!(std::fs::metadata(b.join("ft.bin")).unwrap().len(), 12345);

    // Attributes persist.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // rename of a file (replacing the target) and of a directory.
    std::fs::write(b.join("target"), b"old").unwrap();
    std::fs::rename(&p, b.join("target")).unwrap();
    assert_eq!(std::fs::read(b.join("target")).unwrap(), &want[..10]);
    assert!(!p.exists());
    std::fs::rename(b.join("t"), b.join("moved")).unwrap();
    assert_eq!(
        md5(&std::fs::read(b.join("moved/sub/f5")).unwrap()),
        md5(&data(5, sizes[5]))
    );
    assert!(!b.join("t").exists());

    // Error paths.
    assert_eq!(errno_of(std::fs::read(b.join("nope"))), libc::ENOENT);
    assert_eq!(errno_of(std::fs::create_dir(b.join("moved"))), libc::EEXIST);
    assert_eq!(
        errno_of(std::fs::remove_dir(b.join("moved"))),
        libc::ENOTEMPTY
    );
    assert_eq!(errno_of(std::fs::remove_dir(&b)), libc::ENOTEMPTY);
    assert_eq!(
        errno_of(std::fs::write(b.join("moved"), b"x")),
        libc::EISDIR
    );
    assert_eq!(
        errno_of(std::fs::create_dir(b.join("target/x"))),
        libc::ENOTDIR
    );
    assert_eq!(
        errno_of(std::fs::write(b.join("n".repeat(300)), b"x")),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno_of(std::fs::create_dir(m.mnt.join("Bad_Name"))),
        libc::EINVAL
    );
    assert_eq!(
        errno_of(std::fs::write(m.mnt.join("top-level-file"), b"x")),
        libc::EPERM
    );
    // Directories keep their mode, owner and times (on their marker object).
    let d = b.join("perm-dir");
    std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
    assert_eq!(
        std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    let md = std::fs::metadata(&d).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&md),
            std::os::unix::fs::MetadataExt::gid(&md)
        ),
        (65534, 65534)
    );
    assert!(md.modified().unwrap() > std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    // A directory that exists only as a prefix (a key put over S3, no marker) gets a marker
    // when its attributes change. The key is put by a second engine on the same data dir.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let e = engine::Engine::open(engine::EngineConfig::new(m.dir.path().join("data"))).unwrap();
        e.put_object("files", "implied/child.txt", &b"x"[..], Default::default())
            .await
            .unwrap();
        assert!(matches!(
            e.head_object("files", "implied/"),
            Err(engine::Error::NoSuchKey { .. })
        ));
    });
    assert_eq!(
        std::fs::metadata(b.join("implied"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    std::fs::set_permissions(b.join("implied"), std::fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(
        std::fs::metadata(b.join("implied"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o750
    );

    // Empty directories come and go.
    std::fs::create_dir(b.join("empty")).unwrap();
    assert!(b.join("empty").is_dir());
    std::fs::remove_dir(b.join("empty")).unwrap();
    assert!(!b.join("empty").exists());
    let st = Command::new("df").arg(&m.mnt).output().unwrap();
    assert!(st.status.success());
    m.unmount();
}

/// s3d on the same data dir: what the mount writes is an S3 object, and the other way round.
#[test]
fn cross_door_with_s3d() {
    let s3d = PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d");
    assert!(
        s3d.exists(),
        "build s3d too (make test builds the whole workspace)"
    );
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("shared")).unwrap();
    std::fs::create_dir_all(m.mnt.join("shared/docs")).unwrap();
    let body = data(77, 5_000_000);
    std::fs::write(m.mnt.join("shared/docs/report.json"), &body).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ak, sk) = (
        "PSMOUNTTESTKEY000001",
        "mount-test-secret-0123456789abcdefghijk",
    );
    let mut server = Command::new(&s3d)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            ak,
            "--secret-key",
            sk,
        ])
        .arg("--data-dir")
        .arg(m.dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = m.dir.path().join("data/tls/cert.pem");
    let aws = |args: &[&str]| {
        let o = Command::new("aws")
            .args([
                "--endpoint-url",
                &format!("https://127.0.0.1:{port}"),
                "--region",
                "us-east-1",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_CA_BUNDLE", &ca)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Written on the mount → fetched over S3, with the MD5 ETag and a guessed Content-Type.
    let got = m.dir.path().join("got.json");
    aws(&[
        "s3",
        "cp",
        "s3://shared/docs/report.json",
        got.to_str().unwrap(),
    ]);
    assert_eq!(md5(&std::fs::read(&got).unwrap()), md5(&body));
    let head = aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "shared",
        "--key",
        "docs/report.json",
    ]);
    assert!(
        head.contains(&md5(&body)) && head.contains("application/json"),
        "{head}"
    );
    // Put over S3 → read on the mount.
    let up = m.dir.path().join("up.bin");
    std::fs::write(&up, data(78, 3_000_000)).unwrap();
    aws(&[
        "s3",
        "cp",
        up.to_str().unwrap(),
        "s3://shared/from-s3/up.bin",
    ]);
    assert_eq!(
        md5(&std::fs::read(m.mnt.join("shared/from-s3/up.bin")).unwrap()),
        md5(&data(78, 3_000_000))
    );
    // Rename on the mount → seen over S3.
    std::fs::rename(
        m.mnt.join("shared/docs/report.json"),
        m.mnt.join("shared/docs/renamed.json"),
    )
    .unwrap();
    let ls = aws(&["s3", "ls", "--recursive", "s3://shared"]);
    assert!(
        ls.contains("docs/renamed.json") && !ls.contains("docs/report.json"),
        "{ls}"
    );
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    m.unmount();
}

#[test]
fn symlinks_xattrs_and_unsupported_calls() {
    let m = Mount::start();
    let b = m.mnt.join("links");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("real.txt"), b"content").unwrap();
    std::os::unix::fs::symlink("real.txt", b.join("ln")).unwrap();
    assert_eq!(
        std::fs::read_link(b.join("ln")).unwrap(),
        PathBuf::from("real.txt")
    );
    assert_eq!(std::fs::read(b.join("ln")).unwrap(), b"content");
    assert!(std::fs::symlink_metadata(b.join("ln"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Hard links cannot be represented: a clear EPERM, never a silent copy.
    assert_eq!(
        errno_of(std::fs::hard_link(b.join("real.txt"), b.join("hard"))),
        libc::EPERM
    );
    // Extended attributes (user namespace) round-trip.
    let set = Command::new("setfattr")
        .args(["-n", "user.color", "-v", "blue"])
        .arg(b.join("real.txt"))
        .status();
    if let Ok(st) = set {
        assert!(st.success());
        let out = Command::new("getfattr")
            .args(["-n", "user.color", "--only-values"])
            .arg(b.join("real.txt"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "blue");
    } else {
        // No attr tools: use the syscalls directly.
        let p = std::ffi::CString::new(b.join("real.txt").to_string_lossy().as_bytes()).unwrap();
        let n = std::ffi::CString::new("user.color").unwrap();
        let rc = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), b"blue".as_ptr().cast(), 4, 0) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let mut buf = [0u8; 16];
        let got =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..got as usize], b"blue");
    }
    m.unmount();
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{:?}: {}\n{}",
        cmd,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn tar_rsync_sqlite_git_on_the_mount() {
    let m = Mount::start();
    let b = m.mnt.join("tools");
    std::fs::create_dir(&b).unwrap();
    let src = m.dir.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    for (i, p) in ["x", "a/y", "a/b/z"].iter().enumerate() {
        std::fs::write(src.join(p), data(100 + i as u64, 10_000 * (i + 1))).unwrap();
    }
    // tar c onto the mount, tar x from it.
    run(Command::new("tar")
        .arg("-cf")
        .arg(b.join("t.tar"))
        .arg("-C")
        .arg(&src)
        .arg("."));
    let x = m.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(b.join("t.tar"))
        .arg("-C")
        .arg(&x));
    for p in ["x", "a/y", "a/b/z"] {
        assert_eq!(
            std::fs::read(src.join(p)).unwrap(),
            std::fs::read(x.join(p)).unwrap(),
            "{p}"
        );
    }
    // rsync -a in (temporary file + rename), and again: nothing transferred.
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(b.join("r")));
    let again = run(Command::new("rsync")
        .arg("-a")
        .arg("--stats")
        .arg(format!("{}/", src.display()))
        .arg(b.join("r")));
    assert!(
        again.contains("Number of regular files transferred: 0"),
        "{again}"
    );
    for p in ["x", "a/y", "a/b/z"] {
        assert_eq!(
            std::fs::read(src.join(p)).unwrap(),
            std::fs::read(b.join("r").join(p)).unwrap()
        );
    }
    // SQLite: random writes and fsync, then an integrity check.
    let db = b.join("test.db");
    run(Command::new("sqlite3").arg(&db).arg(
        "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000)
         INSERT INTO t(v) SELECT hex(randomblob(100)) FROM c;
         UPDATE t SET v = 'changed' WHERE id % 7 = 0; DELETE FROM t WHERE id % 11 = 0;",
    ));
    let check = run(Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA integrity_check; SELECT count(*) FROM t;"));
    assert_eq!(check.trim(), "ok\n1819", "{check}");
    // git: init, commit, fsck.
    let repo = b.join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo))
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), b"hello\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "first"]);
    std::fs::write(repo.join("README"), b"hello again\n").unwrap();
    git(&["commit", "-q", "-am", "second"]);
    git(&["fsck", "--strict"]);
    assert_eq!(git(&["rev-list", "--count", "HEAD"]).trim(), "2");
    m.unmount();
}

#[test]
fn restic_repository_on_the_mount() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("backups")).unwrap();
    let src = m.dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/big.bin"), data(200, 6 * 1024 * 1024)).unwrap();
    std::fs::write(src.join("small.txt"), b"small file\n").unwrap();
    let repo = m.mnt.join("backups/repo");
    let restic = |args: &[&str]| {
        run(Command::new("restic")
            .args(args)
            .arg("--no-cache")
            .env("RESTIC_REPOSITORY", &repo)
            .env("RESTIC_PASSWORD", "test-password"))
    };
    restic(&["init"]);
    restic(&["backup", src.to_str().unwrap()]);
    restic(&["check", "--read-data"]);
    let target = m.dir.path().join("restore");
    restic(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(restored.join("d/big.bin")).unwrap(),
        data(200, 6 * 1024 * 1024)
    );
    assert_eq!(
        std::fs::read(restored.join("small.txt")).unwrap(),
        b"small file\n"
    );
    m.unmount();
}

/// A directory of 100,000 entries lists completely (paged scans underneath). The objects are
/// put by a second engine on the same data dir, which LMDB allows beside the mount's.
#[test]
fn directory_of_100k_entries() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("huge")).unwrap();
    let data_dir = m.dir.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = engine::Engine::open(engine::EngineConfig::new(&data_dir)).unwrap();
        let mut tasks = Vec::new();
        for w in 0..64u32 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while i < 100_000 {
                    e.put_object("huge", &format!("d/f{i:06}"), &b"x"[..], Default::default())
                        .await
                        .unwrap();
                    i += 64;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let n = std::fs::read_dir(m.mnt.join("huge/d")).unwrap().count();
    assert_eq!(n, 100_000);
    let out = Command::new("ls")
        .arg("-f")
        .arg(m.mnt.join("huge/d"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        100_002
    );
    assert_eq!(std::fs::read(m.mnt.join("huge/d/f099999")).unwrap(), b"x");
    m.unmount();
}

/// Runs mountd to completion (for --daemon, which returns once the mount is up).
fn mountd(args: &[&std::ffi::OsStr], envs: &[(&str, &std::ffi::OsStr)]) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mountd"));
    c.args(args).env_remove("PREDASTORE_DATA_DIR");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run mountd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Pids of processes whose command line mentions `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) && pid != std::process::id() {
            out.push(pid);
        }
    }
    out
}

fn unmount_daemon(mnt: &Path) {
    assert!(Command::new("fusermount3")
        .arg("-u")
        .arg(mnt)
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    while !pids_with(&mnt.to_string_lossy()).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "daemon did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lazily unmounts a daemon's mount point if a test fails half-way.
struct LazyUnmount(PathBuf);

impl Drop for LazyUnmount {
    fn drop(&mut self) {
        if mounted(&self.0) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.0)
                .status();
        }
    }
}

#[test]
fn config_file_one_bucket_root_and_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _guard = LazyUnmount(mnt.clone());
    // The same file s3d reads: mountd takes `storage` and ignores the rest.
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  port: 18443\nstorage:\n  data_dir: {}\n  chunk_size: 65536\nauth:\n  keys: []\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("mountd.log");
    let daemon = |extra: &[&str]| {
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "--config".as_ref(),
            cfg.as_os_str(),
            "--daemon".as_ref(),
            "--log-file".as_ref(),
            log.as_os_str(),
        ];
        a.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        a.push(mnt.as_os_str());
        mountd(&a, &[])
    };
    // All buckets: --daemon returns only once the mount is up.
    let (ok, err) = daemon(&[]);
    assert!(ok, "{err}");
    assert!(mounted(&mnt), "mounted when --daemon returns");
    std::fs::create_dir(mnt.join("photos")).unwrap();
    std::fs::create_dir(mnt.join("other")).unwrap();
    std::fs::write(mnt.join("photos/a.jpg"), data(1, 100_000)).unwrap();
    unmount_daemon(&mnt);
    assert!(!mounted(&mnt));
    // A bucket that does not exist: a clear error, and the exit status says so.
    let (ok, err) = daemon(&["--bucket", "nosuch"]);
    assert!(!ok);
    assert!(err.contains("nosuch"), "{err}");
    assert!(!mounted(&mnt));
    // One bucket as the root.
    let (ok, err) = daemon(&["--bucket", "photos"]);
    assert!(ok, "{err}");
    let names = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&mnt), vec!["a.jpg"]);
    assert_eq!(std::fs::read(mnt.join("a.jpg")).unwrap(), data(1, 100_000));
    std::fs::create_dir(mnt.join("sub")).unwrap();
    std::fs::write(mnt.join("sub/b.txt"), b"inside").unwrap();
    std::fs::rename(mnt.join("sub/b.txt"), mnt.join("c.txt")).unwrap();
    assert_eq!(names(&mnt), vec!["a.jpg", "c.txt", "sub"]);
    assert!(std::fs::metadata(&mnt).unwrap().is_dir());
    unmount_daemon(&mnt);
    // PREDASTORE_DATA_DIR (no config file) reaches the same data; the keys landed in photos.
    let (ok, err) = mountd(
        &["--daemon".as_ref(), mnt.as_os_str()],
        &[("PREDASTORE_DATA_DIR", data_dir.as_os_str())],
    );
    assert!(ok, "{err}");
    assert_eq!(names(&mnt), vec!["other", "photos"]);
    assert_eq!(names(&mnt.join("photos")), vec!["a.jpg", "c.txt", "sub"]);
    assert_eq!(std::fs::read(mnt.join("photos/c.txt")).unwrap(), b"inside");
    unmount_daemon(&mnt);
    // The config file is really read: an invalid chunk size there is refused.
    std::fs::write(&cfg, "storage:\n  chunk_size: 100\n").unwrap();
    let (ok, err) = mountd(
        &["--config".as_ref(), cfg.as_os_str(), mnt.as_os_str()],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("chunk_size"), "{err}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("mounted"));
}

#[test]
fn kill_9_loses_only_what_was_not_closed_or_fsynced() {
    let mut m = Mount::start();
    std::fs::create_dir(m.mnt.join("crash")).unwrap();
    // name → content acknowledged by fsync + close
    let mut acked: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let rounds = 5u64;
    for round in 0..rounds {
        for i in 0..3u64 {
            let name = format!("r{round}-f{i}");
            let body = data(round * 10 + i, 300_000 + (i as usize) * 70_000);
            let mut f = std::fs::File::create(m.mnt.join("crash").join(&name)).unwrap();
            f.write_all(&body).unwrap();
            f.sync_all().unwrap();
            drop(f);
            acked.insert(name, body);
        }
        // In flight when mountd dies: an overwrite of an acknowledged file (closed, so it may
        // have committed), then a large file that is never closed.
        let target = m.mnt.join("crash").join(format!("r{round}-f0"));
        let pending = m.mnt.join("crash").join(format!("pending{round}"));
        let new_body = data(1000 + round, 500_000);
        let nb = new_body.clone();
        let writer = std::thread::spawn(move || {
            let _ = std::fs::write(&target, &nb);
            if let Ok(mut f) = std::fs::File::create(&pending) {
                // Keep writing (never closing) until the mount is gone.
                let t = Instant::now();
                let mut k = 0u64;
                while t.elapsed() < Duration::from_secs(20) {
                    if f.write_all(&data(k, 64 * 1024)).is_err() {
                        break;
                    }
                    k += 1;
                    if k > 400 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(20 + (round * 37) % 150));
        m.child.kill().unwrap();
        m.child.wait().unwrap();
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(&m.mnt)
            .status();
        writer.join().unwrap();
        let dir = std::mem::replace(&mut m.dir, tempfile::tempdir().unwrap());
        drop(m);
        m = Mount::start_in(dir);
        // Every acknowledged file is intact; the overwritten one is old or new, never torn.
        for (name, body) in &acked {
            let got = std::fs::read(m.mnt.join("crash").join(name)).unwrap();
            if name == &format!("r{round}-f0") && got == new_body {
                continue;
            }
            assert!(
                got == *body,
                "round {round}: {name} torn or lost ({} bytes)",
                got.len()
            );
        }
        if let Ok(got) = std::fs::read(m.mnt.join("crash").join(format!("r{round}-f0"))) {
            if got == new_body {
                acked.insert(format!("r{round}-f0"), new_body.clone());
            }
        }
        // The never-closed file was created (an empty object, as creat(2) makes) but none of
        // its unflushed data was ever committed.
        if let Ok(md) = std::fs::metadata(m.mnt.join("crash").join(format!("pending{round}"))) {
            assert_eq!(md.len(), 0, "round {round}: unflushed data became visible");
        }
        // Staging leftovers of the killed mount are gone.
        let staged = std::fs::read_dir(m.dir.path().join("data/mountd-staging"))
            .unwrap()
            .count();
        assert_eq!(staged, 0, "round {round}");
    }
    // The metadata adds up (a second process on the same data dir, as s3d would be).
    let e = engine::Engine::open(engine::EngineConfig::new(m.dir.path().join("data"))).unwrap();
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    drop(e);
    m.unmount();
}
