//! A real FUSE mount (root, /dev/fuse) of a real data dir, with s3d on the same data dir.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use md5::Digest;

#[path = "../../tests/support/small_fs.rs"]
mod small_fs;
use small_fs::SmallFs;
#[path = "../../tests/support/held_files.rs"]
mod held_files;
use held_files::held_files;

mod common;
use common::{errno_of, mounted, names, Mount, S3dBeside};

use engine::testing::pseudo_random as data;

fn md5(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
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
        let e = engine_of(&m);
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
    let _ = m.unmount();
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

    let server = S3dBeside::start(&m);
    let aws = |args: &[&str]| server.aws(args);
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
    // POSIX attributes set on the mount are user metadata over S3 (rclone's and s3fs's names) ...
    let f = m.mnt.join("shared/docs/renamed.json");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let when = std::time::UNIX_EPOCH + Duration::new(1_600_000_000, 250_000_000);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let head = |key: &str| -> serde_json::Value {
        let out = aws(&["s3api", "head-object", "--bucket", "shared", "--key", key]);
        serde_json::from_str(&out).unwrap()
    };
    let meta = head("docs/renamed.json")["Metadata"].clone();
    assert_eq!(meta["mode"], "0100640", "{meta}");
    assert_eq!(meta["uid"], "1234", "{meta}");
    assert_eq!(meta["gid"], "5678", "{meta}");
    assert_eq!(meta["mtime"], "1600000000.250000000", "{meta}");
    // ... and given as user metadata to a put, they are what the mount shows.
    aws(&[
        "s3",
        "cp",
        up.to_str().unwrap(),
        "s3://shared/from-s3/owned.bin",
        "--metadata",
        "mode=100600,uid=42,gid=43,mtime=1500000000.5,color=blue",
    ]);
    let st = std::fs::metadata(m.mnt.join("shared/from-s3/owned.bin")).unwrap();
    assert_eq!(st.mode(), 0o100600);
    assert_eq!((st.uid(), st.gid()), (42, 43));
    assert_eq!((st.mtime(), st.mtime_nsec()), (1_500_000_000, 500_000_000));
    let meta = head("from-s3/owned.bin")["Metadata"].clone();
    assert_eq!(meta["color"], "blue", "{meta}");
    assert_eq!(meta["mode"], "0100600", "{meta}");
    // An object put without them shows none.
    let meta = head("from-s3/up.bin");
    assert!(
        meta.get("Metadata").is_none_or(|m| m.get("mode").is_none()),
        "{meta}"
    );
    // A chmod of it on the mount changes its ctime only: mtime and atime stay its upload time.
    let up_path = m.mnt.join("shared/from-s3/up.bin");
    let before = std::fs::metadata(&up_path).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::set_permissions(&up_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let after = std::fs::metadata(&up_path).unwrap();
    assert_eq!(after.mode(), 0o100600);
    assert_eq!(
        (after.mtime(), after.mtime_nsec(), after.atime()),
        (before.mtime(), before.mtime_nsec(), before.atime())
    );
    assert!(after.ctime() > before.ctime());
    drop(server);
    let _ = m.unmount();
}

#[test]
fn keys_no_file_name_can_be_are_hidden_and_keep_their_directory() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("odd")).unwrap();
    let long = format!("d/{}", "L".repeat(300));
    let hidden = [
        "d/./dot",
        "d/../up",
        "d//empty",
        "/lead",
        "d/..",
        long.as_str(),
    ];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let e = engine_of(&m);
        for k in hidden.iter().chain(&["d/ok", "top"]) {
            e.put_object("odd", k, &b"x"[..], Default::default())
                .await
                .unwrap();
        }
    });
    // Only what a file name can be: no second `.`/`..`, no empty or over-long names.
    assert_eq!(names(&m.mnt.join("odd")), vec!["d", "top"]);
    assert_eq!(names(&m.mnt.join("odd/d")), vec!["ok"]);
    let ls = run(Command::new("ls").arg("-la").arg(m.mnt.join("odd/d")));
    assert!(!ls.contains('?'), "{ls}");
    assert_eq!(ls.lines().filter(|l| l.ends_with(" .")).count(), 1, "{ls}");
    // Removing the tree removes what it can and fails clearly on what it cannot.
    let o = Command::new("rm")
        .arg("-rf")
        .arg(m.mnt.join("odd"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Directory not empty"), "{err}");
    assert!(!m.mnt.join("odd/d/ok").exists() && !m.mnt.join("odd/top").exists());
    let log = std::fs::read_to_string(m.dir.path().join("mountd.log")).unwrap();
    assert!(
        log.contains("no file name can show") && log.contains("d//empty"),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log}");
    // Nothing hidden was lost: the keys are still there for S3 to remove.
    let left = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let e = engine_of(&m);
        e.list_objects(
            "odd",
            &engine::ListQuery {
                max_keys: 100,
                ..Default::default()
            },
        )
        .unwrap()
        .objects
        .len()
    });
    assert_eq!(left, hidden.len());
    let _ = m.unmount();
}

#[test]
fn modes_over_s3_cannot_make_set_id_files_or_devices() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("trust")).unwrap();
    let server = S3dBeside::start(&m);
    let up = m.dir.path().join("up.bin");
    std::fs::write(&up, b"#!/bin/sh\n").unwrap();
    let put = |key: &str, meta: &str| {
        server.aws(&[
            "s3",
            "cp",
            up.to_str().unwrap(),
            &format!("s3://trust/{key}"),
            "--metadata",
            meta,
        ]);
    };
    put("suid", "mode=104755,uid=0,gid=0");
    put("sgid", "mode=102755");
    put("dev", "mode=20666,rdev=103");
    put("blk", "mode=60660,rdev=801");
    put("plain", "mode=100750,uid=7");
    let mode = |k: &str| {
        std::fs::symlink_metadata(m.mnt.join("trust").join(k))
            .unwrap()
            .mode()
    };
    assert_eq!(mode("suid"), 0o100755);
    assert_eq!(mode("sgid"), 0o100755);
    assert_eq!(mode("dev"), 0o100666);
    assert_eq!(mode("blk"), 0o100660);
    assert_eq!(mode("plain"), 0o100750);
    // `cp -a` as root out of the mount carries no set-id bit and makes no device node.
    let out = m.dir.path().join("copied");
    run(Command::new("cp")
        .arg("-a")
        .arg(m.mnt.join("trust"))
        .arg(&out));
    for k in ["suid", "sgid", "dev", "blk"] {
        let md = std::fs::symlink_metadata(out.join(k)).unwrap();
        assert!(md.file_type().is_file(), "{k}");
        assert_eq!(md.mode() & 0o6000, 0, "{k}");
    }
    // The mount itself (a local user) may still make them.
    mknod(
        &m.mnt.join("trust/null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    )
    .unwrap();
    assert_eq!(mode("null") & libc::S_IFMT, libc::S_IFCHR);
    drop(server);
    let _ = m.unmount();
}

/// Runs `sh -c script` as user and group 65534 (nobody); its exit status and stderr.
fn as_nobody(script: &str) -> (bool, String) {
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(script)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn other_users_get_in_by_default_and_permission_bits_hold() {
    let m = Mount::start();
    // The temporary directory is 0700: let nobody reach the mount point.
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = m.mnt.join("people");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("open"), b"for all").unwrap();
    std::fs::write(d.join("secret"), b"for root").unwrap();
    std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(d.join("drop")).unwrap();
    std::fs::set_permissions(d.join("drop"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let p = |name: &str| d.join(name).display().to_string();
    let (ok, err) = as_nobody(&format!("cat {}", p("open")));
    assert!(ok, "{err}");
    let (ok, err) = as_nobody(&format!("cat {}", p("secret")));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    let (ok, err) = as_nobody(&format!("echo x >> {}", p("open")));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    // A service running as its own user writes where the bits let it, as itself.
    assert!(as_nobody(&format!("echo mine > {}/f", p("drop"))).0);
    let st = std::fs::metadata(d.join("drop/f")).unwrap();
    assert_eq!((st.uid(), st.gid()), (65534, 65534));
    let dir = m.unmount();
    // --no-allow-other keeps the mount to the user who mounted it.
    let m = Mount::start_with(dir, &["--no-allow-other"]);
    let (ok, err) = as_nobody(&format!("ls {}", m.mnt.display()));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    assert!(m.mnt.join("people/open").exists());
    let _ = m.unmount();
}

/// The mount clears set-ID bits itself (`FUSE_HANDLE_KILLPRIV_V2`), as Linux does: a write or
/// truncate by a user without `CAP_FSETID` and any chown clear set-user-ID, and set-group-ID
/// when the group may execute; root's writes keep them, and so do directories.
#[test]
fn set_id_bits_are_cleared_by_write_truncate_and_chown() {
    let m = Mount::start();
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = m.mnt.join("setid");
    std::fs::create_dir(&d).unwrap();
    let file = |name: &str, mode: u32| {
        std::fs::write(d.join(name), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        d.join(name).display().to_string()
    };
    let e = engine_of(&m);
    // What is stored, and what the mount shows once the kernel's attributes have expired.
    let modes = |name: &str| {
        m.settle();
        let stored = e.head_object("setid", name).unwrap().posix().mode;
        std::thread::sleep(Duration::from_millis(1100));
        let shown = std::fs::metadata(d.join(name)).unwrap().mode();
        (stored & 0o7777, shown & 0o7777)
    };
    let w = file("written", 0o6777);
    let (ok, err) = as_nobody(&format!("echo x >> {w}"));
    assert!(ok, "{err}");
    assert_eq!(modes("written"), (0o777, 0o777));
    let t = file("truncated", 0o6777);
    let (ok, err) = as_nobody(&format!("truncate -s 1 {t}"));
    assert!(ok, "{err}");
    assert_eq!(modes("truncated"), (0o777, 0o777));
    // Set-group-ID without group execute marks mandatory locking: it stays.
    let l = file("locking", 0o2767);
    let (ok, err) = as_nobody(&format!("echo x >> {l}"));
    assert!(ok, "{err}");
    assert_eq!(modes("locking"), (0o2767, 0o2767));
    // Root has CAP_FSETID: its writes and truncates keep the bits.
    let r = file("by-root", 0o6755);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&r)
        .unwrap()
        .write_all(b"echo\n")
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&r)
        .unwrap()
        .set_len(3)
        .unwrap();
    assert_eq!(modes("by-root"), (0o6755, 0o6755));
    // A chown clears them, also root's.
    let c = file("chowned", 0o6755);
    std::os::unix::fs::chown(&c, Some(65534), None).unwrap();
    assert_eq!(modes("chowned"), (0o755, 0o755));
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o2775)).unwrap();
    std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
    assert_eq!(std::fs::metadata(&sub).unwrap().mode() & 0o7777, 0o2775);
    drop(e);
    let _ = m.unmount();
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
    // Metadata an S3 client wrote under another namespace's name is never an attribute of
    // that namespace on the mount (a `security.capability` from S3 would give a file
    // capabilities).
    let e = engine_of(&m);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut attrs = engine::ObjectAttrs::default();
    for (k, v) in [
        ("xattr-security.capability", "AQAAAgAgAAAAAAAAAAAAAAAAAAA="),
        ("xattr-trusted.x", "eA=="),
        ("xattr-user.ok", "eQ=="),
    ] {
        attrs.user_metadata.insert(k.into(), v.into());
    }
    rt.block_on(e.put_object(
        "links",
        "from-s3",
        &b"x"[..],
        engine::PutOptions {
            attrs,
            ..Default::default()
        },
    ))
    .unwrap();
    let p = std::ffi::CString::new(b.join("from-s3").to_string_lossy().as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    for (name, want) in [
        ("security.capability", None),
        ("trusted.x", None),
        ("user.ok", Some(&b"y"[..])),
    ] {
        let n = std::ffi::CString::new(name).unwrap();
        let got =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match want {
            Some(v) => assert_eq!(&buf[..got.max(0) as usize], v, "{name}"),
            None => assert_eq!(
                (got, std::io::Error::last_os_error().raw_os_error()),
                (-1, Some(libc::ENODATA)),
                "{name}"
            ),
        }
    }
    let n = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(&buf[..n.max(0) as usize], b"user.ok\0");
    let _ = m.unmount();
}

/// `mknod(2)`; the errno on failure.
fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> Result<(), i32> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    match unsafe { libc::mknod(c.as_ptr(), mode, dev) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}

#[test]
fn fifos_sockets_and_device_nodes() {
    use std::os::unix::fs::FileTypeExt;
    let m = Mount::start();
    let b = m.mnt.join("special");
    std::fs::create_dir(&b).unwrap();
    // Device nodes and set-uid bits that anyone with S3 access could write never take effect.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(m.mnt.to_str().unwrap()))
        .unwrap();
    assert!(line.contains("nosuid") && line.contains("nodev"), "{line}");
    // A FIFO is the kernel's pipe under a name kept in the store.
    mknod(&b.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
    let st = std::fs::metadata(b.join("fifo")).unwrap();
    assert!(st.file_type().is_fifo());
    assert_eq!(st.mode() & 0o7777, 0o640);
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(b.join("fifo"))
        .unwrap();
    f.write_all(b"through the pipe").unwrap();
    let mut got = [0u8; 16];
    std::io::Read::read_exact(&mut f, &mut got).unwrap();
    assert_eq!(&got, b"through the pipe");
    drop(f);
    // Device nodes keep their number; opening one is refused (nodev).
    let null = libc::makedev(1, 3);
    mknod(&b.join("null"), libc::S_IFCHR | 0o666, null).unwrap();
    mknod(&b.join("sda1"), libc::S_IFBLK | 0o660, libc::makedev(8, 1)).unwrap();
    let st = std::fs::metadata(b.join("null")).unwrap();
    assert!(st.file_type().is_char_device());
    assert_eq!(st.rdev(), null);
    let st = std::fs::metadata(b.join("sda1")).unwrap();
    assert!(st.file_type().is_block_device());
    assert_eq!(st.rdev(), libc::makedev(8, 1));
    assert_eq!(errno_of(std::fs::read(b.join("null"))), libc::EACCES);
    // A Unix socket bound on the mount.
    let sock = std::os::unix::net::UnixListener::bind(b.join("sock")).unwrap();
    assert!(std::fs::metadata(b.join("sock"))
        .unwrap()
        .file_type()
        .is_socket());
    drop(sock);
    // mknod of a regular file makes an empty one; of an existing name, EEXIST.
    mknod(&b.join("plain.txt"), libc::S_IFREG | 0o600, 0).unwrap();
    assert_eq!(std::fs::read(b.join("plain.txt")).unwrap(), b"");
    assert_eq!(
        mknod(&b.join("fifo"), libc::S_IFIFO | 0o600, 0),
        Err(libc::EEXIST)
    );
    // They are objects: kept across a remount, renamed and removed like files.
    let m = Mount::start_in(m.unmount());
    let b = m.mnt.join("special");
    std::fs::rename(b.join("null"), b.join("null2")).unwrap();
    let st = std::fs::symlink_metadata(b.join("null2")).unwrap();
    assert!(st.file_type().is_char_device() && st.rdev() == null);
    assert!(std::fs::metadata(b.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::remove_file(b.join("fifo")).unwrap();
    // rsync -a and tar carry them onto the mount (rsync -a includes devices and specials).
    let src = m.dir.path().join("tree");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), b"data").unwrap();
    mknod(&src.join("pipe"), libc::S_IFIFO | 0o600, 0).unwrap();
    mknod(&src.join("tty"), libc::S_IFCHR | 0o620, libc::makedev(4, 1)).unwrap();
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(b.join("r")));
    run(Command::new("tar")
        .arg("-cf")
        .arg(m.dir.path().join("t.tar"))
        .arg("-C")
        .arg(&src)
        .arg("."));
    std::fs::create_dir(b.join("t")).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(m.dir.path().join("t.tar"))
        .arg("-C")
        .arg(b.join("t")));
    for d in ["r", "t"] {
        let st = std::fs::symlink_metadata(b.join(d).join("pipe")).unwrap();
        assert!(st.file_type().is_fifo(), "{d}");
        let st = std::fs::symlink_metadata(b.join(d).join("tty")).unwrap();
        assert!(st.file_type().is_char_device(), "{d}");
        assert_eq!(st.rdev(), libc::makedev(4, 1), "{d}");
        let want = std::fs::symlink_metadata(src.join("tty")).unwrap().mode();
        assert_eq!(st.mode(), want, "{d}");
        assert_eq!(std::fs::read(b.join(d).join("file")).unwrap(), b"data");
    }
    let again = run(Command::new("rsync")
        .arg("-a")
        .arg("--itemize-changes")
        .arg(format!("{}/", src.display()))
        .arg(b.join("r")));
    assert_eq!(again.trim(), "", "a second rsync -a changes nothing");
    // Over S3 a device node is an empty object with its mode and number.
    let e = engine_of(&m);
    let meta = e.head_object("special", "r/tty").unwrap();
    assert_eq!(meta.size, 0);
    assert_eq!(
        meta.posix().mode,
        std::fs::symlink_metadata(src.join("tty")).unwrap().mode()
    );
    assert_eq!(meta.posix().mode & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(
        meta.attrs.user_metadata["rdev"],
        format!("{:x}", libc::makedev(4, 1))
    );
    drop(e);
    let _ = m.unmount();
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
    let _ = m.unmount();
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
    let _ = m.unmount();
}

/// A directory of 100,000 entries lists completely (paged scans underneath). The objects are
/// put by a second engine on the same data dir, which LMDB allows beside the mount's.
#[test]
fn directory_of_100k_entries() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("huge")).unwrap();
    m.settle();
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
    let _ = m.unmount();
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
        common::lazy_unmount(&self.0);
    }
}

#[test]
fn config_file_one_bucket_root_and_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _guard = LazyUnmount(mnt.clone());
    // The same file s3d reads (server and auth sections too, checked as strictly as s3d does).
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
            // Keep writing (never closing) until the mount is gone. In a process of its own:
            // every close of a descriptor flushes (commits) the file, and a child that another
            // test thread spawns closes its copies of this process's descriptors at exec.
            let _ = Command::new("python3")
                .arg("-c")
                .arg(
                    "import os, sys, time\n\
                     fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n\
                     t, k = time.time(), 0\n\
                     while time.time() - t < 20:\n\
                     \x20   try:\n\
                     \x20       os.write(fd, os.urandom(65536))\n\
                     \x20   except OSError:\n\
                     \x20       break\n\
                     \x20   k += 1\n\
                     \x20   if k > 400:\n\
                     \x20       time.sleep(0.02)\n\
                     os._exit(0)\n",
                )
                .arg(&pending)
                .status();
        });
        // Once the never-closed file holds unflushed data, at a different moment each round.
        let pending = m.mnt.join("crash").join(format!("pending{round}"));
        let t = Instant::now();
        while std::fs::metadata(&pending).map(|m| m.len()).unwrap_or(0) < 128 << 10 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the writer never wrote"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis((round * 37) % 150));
        m.kill_9();
        writer.join().unwrap();
        m = m.restart();
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
    }
    let dir = m.unmount();
    common::assert_collected_and_clean(&dir.path().join("data"));
}

/// An engine handle on the mount's data dir, from this (second) process, as s3d would have.
fn engine_of(m: &Mount) -> engine::Engine {
    m.settle();
    engine::Engine::open(engine::EngineConfig::new(m.dir.path().join("data"))).unwrap()
}

/// Hashes of the chunks some committed object (or draft) references.
fn live_chunks(e: &engine::Engine) -> std::collections::BTreeSet<[u8; 32]> {
    e.chunk_records()
        .unwrap()
        .into_iter()
        .filter(|(_, r)| r.refs > 0)
        .map(|(h, _)| h)
        .collect()
}

/// A whole object as the engine (and so s3d) serves it.
fn get_all(rt: &tokio::runtime::Runtime, e: &engine::Engine, bucket: &str, key: &str) -> Vec<u8> {
    rt.block_on(async {
        let g = e.get_object(bucket, key, None).await.unwrap();
        let mut body = g.body;
        let mut out = Vec::new();
        while let Some(c) = futures::StreamExt::next(&mut body).await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    })
}

/// S3's multipart ETag over `body` cut into `part` byte pieces.
fn multipart_etag(body: &[u8], part: usize) -> String {
    let mut h = md5::Md5::new();
    for p in body.chunks(part) {
        h.update(md5::Md5::digest(p));
    }
    format!(
        "{}-{}",
        hex::encode(h.finalize()),
        body.len().div_ceil(part)
    )
}

#[test]
fn writes_change_only_the_chunks_they_touch() {
    const MIB: usize = 1 << 20;
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("cow")).unwrap();
    let path = m.mnt.join("cow/big.bin");
    let mut model = data(7, 40 * MIB);
    std::fs::write(&path, &model).unwrap();
    let e = engine_of(&m);
    // Written from start to end: the ETag is the plain MD5 of the body.
    assert_eq!(e.head_object("cow", "big.bin").unwrap().etag, md5(&model));
    let before = live_chunks(&e);
    assert_eq!(before.len(), 10);

    // 4 KiB in the middle of the 5th chunk: one chunk stored anew, nine kept.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.seek(SeekFrom::Start(17 * MIB as u64 + 5)).unwrap();
    let patch = data(8, 4096);
    f.write_all(&patch).unwrap();
    model[17 * MIB + 5..17 * MIB + 5 + 4096].copy_from_slice(&patch);
    // Before close, another handle sees the write.
    assert_eq!(std::fs::read(&path).unwrap(), model);
    drop(f);
    m.settle();
    let after = live_chunks(&e);
    assert_eq!(after.difference(&before).count(), 1, "one new chunk");
    assert_eq!(before.difference(&after).count(), 1, "one chunk replaced");
    let meta = e.head_object("cow", "big.bin").unwrap();
    assert_eq!(
        meta.etag,
        multipart_etag(&model, 4 * MIB),
        "S3's rule, parts = chunks"
    );
    assert_eq!(meta.parts_count, 10);

    // Append, shrink, grow with a hole, write past the end: each time the S3 view and the
    // mount agree with a local model.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let tail = data(9, MIB + 3);
    f.write_all(&tail).unwrap();
    model.extend_from_slice(&tail);
    drop(f);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(10 * MIB as u64 + 7).unwrap();
    model.truncate(10 * MIB + 7);
    f.set_len(12 * MIB as u64).unwrap();
    model.resize(12 * MIB, 0);
    drop(f);
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(30 * MIB as u64)).unwrap();
    f.write_all(b"past the end").unwrap();
    model.resize(30 * MIB, 0);
    model.extend_from_slice(b"past the end");
    f.sync_all().unwrap();
    // fsync made it an S3 object while the file is still open.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = get_all(&rt, &e, "cow", "big.bin");
    assert!(got == model, "S3 view after fsync");
    drop(f);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), model.len() as u64);
    assert!(std::fs::read(&path).unwrap() == model, "mount view");
    // The runs of zeros the holes left are stored as holes: parts are the pieces stored.
    m.settle();
    let meta = e.head_object("cow", "big.bin").unwrap();
    assert!(
        meta.hole_bytes >= (2 * MIB + 16 * MIB) as u64,
        "{}",
        meta.hole_bytes
    );
    assert_eq!(meta.etag, etag_of_parts(&e, "cow", "big.bin", &model));
    drop(e);
    let dir = m.unmount();
    let e = engine::Engine::open(engine::EngineConfig::new(dir.path().join("data"))).unwrap();
    rt.block_on(e.gc(true)).unwrap();
    assert_eq!(e.draft_count().unwrap(), 0);
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

/// A file written in order from its start has the plain MD5 of its body as ETag, like a single
/// PUT — also when it was preallocated or extended first (as fio and download tools do) and
/// when fsync commits it along the way; a change to bytes already hashed falls back to S3's
/// multipart rule over the chunks.
#[test]
fn files_written_in_order_get_the_plain_md5_etag() {
    const MIB: usize = 1 << 20;
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("seq")).unwrap();
    let e = engine_of(&m);
    let etag = |key: &str| e.head_object("seq", key).unwrap().etag;
    use std::os::unix::fs::FileExt;

    // Preallocated, then written in 1 MiB blocks, as fio lays out its files.
    let body = data(21, 18 * MIB + 5);
    let f = std::fs::File::create(m.mnt.join("seq/falloc.bin")).unwrap();
    fallocate(&f, 0, 0, body.len() as u64).unwrap();
    for (i, block) in body.chunks(MIB).enumerate() {
        f.write_all_at(block, (i * MIB) as u64).unwrap();
    }
    f.sync_all().unwrap();
    assert_eq!(etag("falloc.bin"), md5(&body), "preallocated");
    drop(f);

    // Appended with an fsync along the way.
    let body = data(22, 19 * MIB + 11);
    let mut f = std::fs::File::create(m.mnt.join("seq/log.bin")).unwrap();
    f.write_all(&body[..6 * MIB + 1]).unwrap();
    f.sync_all().unwrap();
    assert_eq!(etag("log.bin"), md5(&body[..6 * MIB + 1]), "first fsync");
    f.write_all(&body[6 * MIB + 1..]).unwrap();
    f.sync_all().unwrap();
    assert_eq!(etag("log.bin"), md5(&body), "second fsync");
    drop(f);

    // Extended to its size first; an fsync half-way commits zeros never written: S3's rule
    // over the chunks then, the plain MD5 once all of it is written.
    let body = data(23, 10 * MIB);
    let f = std::fs::File::create(m.mnt.join("seq/grown.bin")).unwrap();
    f.set_len(body.len() as u64).unwrap();
    f.write_all_at(&body[..5 * MIB], 0).unwrap();
    f.sync_all().unwrap();
    let mut half = body[..5 * MIB].to_vec();
    half.resize(body.len(), 0);
    assert_eq!(
        etag("grown.bin"),
        etag_of_parts(&e, "seq", "grown.bin", &half)
    );
    assert_eq!(
        e.head_object("seq", "grown.bin").unwrap().size,
        body.len() as u64
    );
    f.write_all_at(&body[5 * MIB..], 5 * MIB as u64).unwrap();
    drop(f);
    m.settle();
    assert_eq!(etag("grown.bin"), md5(&body), "written over");

    // A block rewritten after it was hashed: S3's rule over the chunks.
    let mut body = data(24, 9 * MIB);
    let f = std::fs::File::create(m.mnt.join("seq/rewritten.bin")).unwrap();
    f.write_all_at(&body, 0).unwrap();
    let patch = data(25, 4096);
    f.write_all_at(&patch, MIB as u64).unwrap();
    body[MIB..MIB + 4096].copy_from_slice(&patch);
    drop(f);
    m.settle();
    let meta = e.head_object("seq", "rewritten.bin").unwrap();
    assert!(meta.parts_count > 1, "{meta:?}");
    assert_eq!(meta.etag, etag_of_parts(&e, "seq", "rewritten.bin", &body));
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(get_all(&rt, &e, "seq", "rewritten.bin") == body, "S3 view");
    assert!(get_all(&rt, &e, "seq", "falloc.bin") == data(21, 18 * MIB + 5));
    drop(e);
    let dir = m.unmount();
    let e = engine::Engine::open(engine::EngineConfig::new(dir.path().join("data"))).unwrap();
    rt.block_on(e.gc(true)).unwrap();
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

/// Pages of `f`'s file in the page cache (`cachestat(2)`, which needs no read access).
fn cached_pages(f: &std::fs::File) -> u64 {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: 0, len: 0 };
    let mut st = Stat::default();
    // SAFETY: a valid descriptor, and pointers to structs of the layout the call expects.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            f.as_raw_fd(),
            &range as *const Range,
            &mut st as *mut Stat,
            0,
        )
    };
    assert_eq!(r, 0, "cachestat: {}", std::io::Error::last_os_error());
    st.nr_cache
}

/// A handle opened write-only bypasses the page cache (`cp`, `tar`, `dd` write that way), and
/// what it writes is what every other handle reads, also one that had the old bytes cached.
#[test]
fn write_only_handles_bypass_the_page_cache_and_readers_see_their_writes() {
    const MIB: usize = 1 << 20;
    use std::os::unix::fs::FileExt;
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("direct")).unwrap();
    let p = m.mnt.join("direct/f.bin");
    let mut model = data(31, 3 * MIB);
    let mut w = std::fs::File::create(&p).unwrap();
    w.write_all(&model).unwrap();
    assert_eq!(cached_pages(&w), 0, "a write-only handle caches nothing");
    drop(w);
    // Read and writable handles cache as before.
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    rw.write_all_at(b"through the cache", 0).unwrap();
    model[..17].copy_from_slice(b"through the cache");
    assert!(cached_pages(&rw) > 0, "a read-write handle caches");
    drop(rw);
    // A reader with the file cached, then a write-only writer over part of it.
    let r = std::fs::File::open(&p).unwrap();
    let mut got = vec![0u8; model.len()];
    r.read_exact_at(&mut got, 0).unwrap();
    assert!(got == model);
    assert!(cached_pages(&r) > 0);
    let w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    let patch = data(32, 3 * 4096 + 5);
    w.write_all_at(&patch, MIB as u64 + 100).unwrap();
    model[MIB + 100..MIB + 100 + patch.len()].copy_from_slice(&patch);
    r.read_exact_at(&mut got, 0).unwrap();
    assert!(
        got == model,
        "the reader sees the write while the writer is open"
    );
    drop(w);
    r.read_exact_at(&mut got, 0).unwrap();
    assert!(got == model, "and after it closed");
    drop(r);
    m.settle();
    let e = engine_of(&m);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(get_all(&rt, &e, "direct", "f.bin") == model, "S3 view");
    drop(e);
    let _ = m.unmount();
}

/// A tiny deterministic generator for the model test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_writes_truncates_and_reopens_match_a_local_model() {
    // 32 KiB chunks (inline up to 64 KiB): chunk boundaries, inline and chunked commits and
    // the switch between them all come up often.
    let m = Mount::start_args(&["--chunk-size", "32768"]);
    std::fs::create_dir(m.mnt.join("model")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd);
    let names = ["a.db", "b.log", "c.bin"];
    let open = |dir: &Path, name: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(name))
            .unwrap()
    };
    let mdir = m.mnt.join("model");
    let mut handles: Vec<Option<(std::fs::File, std::fs::File)>> = vec![None, None, None];
    for step in 0..400 {
        let i = rng.below(3) as usize;
        let name = names[i];
        if handles[i].is_none() {
            handles[i] = Some((open(&mdir, name), open(local.path(), name)));
        }
        let op = rng.below(10);
        if op == 7 {
            // Close and reopen: what was committed is what is read.
            handles[i] = None;
            handles[i] = Some((open(&mdir, name), open(local.path(), name)));
        }
        let (mf, lf) = handles[i].as_mut().unwrap();
        let size = lf.metadata().unwrap().len();
        match op {
            0..=4 => {
                let off = rng.below(size + 70_000);
                let max = if rng.below(4) == 0 { 150_000 } else { 5_000 };
                let len = 1 + rng.below(max) as usize;
                let buf = data(step, len);
                use std::os::unix::fs::FileExt;
                mf.write_all_at(&buf, off).unwrap();
                lf.write_all_at(&buf, off).unwrap();
            }
            5 => {
                let n = rng.below(size + 100_000);
                mf.set_len(n).unwrap();
                lf.set_len(n).unwrap();
            }
            6 => mf.sync_all().unwrap(),
            7 => {}
            _ => {
                // Read a range through a second handle of the same file.
                let off = rng.below(size + 10);
                let len = rng.below(100_000) as usize;
                use std::os::unix::fs::FileExt;
                let other = std::fs::File::open(mdir.join(name)).unwrap();
                let mut a = vec![0u8; len];
                let mut b = vec![0u8; len];
                let na = other.read_at(&mut a, off).unwrap();
                let nb = lf.read_at(&mut b, off).unwrap();
                assert_eq!(na, nb, "step {step}: short read of {name}");
                assert!(
                    a[..na] == b[..nb],
                    "step {step}: {name} differs at {off}+{len}"
                );
            }
        }
        assert_eq!(
            mf.metadata().unwrap().len(),
            lf.metadata().unwrap().len(),
            "step {step}: size of {name}"
        );
    }
    handles.clear();
    let e = engine_of(&m);
    for name in names {
        let want = std::fs::read(local.path().join(name)).unwrap();
        assert!(std::fs::read(mdir.join(name)).unwrap() == want, "{name}");
        m.settle();
        let meta = e.head_object("model", name).unwrap();
        assert_eq!(meta.size, want.len() as u64);
        if meta.parts_count == 0 {
            assert_eq!(meta.etag, md5(&want), "{name}");
        } else {
            // S3's rule over the parts the object says it has (its chunks).
            let mut h = md5::Md5::new();
            for p in 1..=meta.parts_count {
                let (a, b) = e.part_range("model", name, p).unwrap();
                h.update(md5::Md5::digest(&want[a as usize..b as usize]));
            }
            let etag = format!("{}-{}", hex::encode(h.finalize()), meta.parts_count);
            assert_eq!(meta.etag, etag, "{name}");
        }
    }
    drop(e);
    let dir = m.unmount();
    let e = engine::Engine::open(engine::EngineConfig::new(dir.path().join("data"))).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(e.gc(true)).unwrap();
    assert_eq!(e.draft_count().unwrap(), 0);
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

#[test]
fn open_files_keep_their_contents_when_unlinked_replaced_or_collected() {
    const MIB: usize = 1 << 20;
    let m = Mount::start();
    let d = m.mnt.join("unlinked");
    std::fs::create_dir(&d).unwrap();
    let original = data(11, 20 * MIB + 17);
    std::fs::write(d.join("video.mp4"), &original).unwrap();
    // A reader holds the file; it is unlinked, a new file takes its name, and GC runs in
    // another process. The reader still reads the original, bit for bit.
    let mut reader = std::fs::File::open(d.join("video.mp4")).unwrap();
    std::fs::remove_file(d.join("video.mp4")).unwrap();
    assert_eq!(
        errno_of(std::fs::metadata(d.join("video.mp4"))),
        libc::ENOENT
    );
    std::fs::write(d.join("video.mp4"), b"new").unwrap();
    let e = engine_of(&m);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(e.gc(true)).unwrap();
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut back).unwrap();
    assert!(back == original, "reader of an unlinked file");
    assert_eq!(reader.metadata().unwrap().len(), original.len() as u64);
    drop(reader);
    assert_eq!(std::fs::read(d.join("video.mp4")).unwrap(), b"new");

    // A writer's file is unlinked while open (the temp-file idiom): it goes on working and
    // never comes back.
    let mut w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(d.join("scratch"))
        .unwrap();
    w.write_all(&data(12, 9 * MIB)).unwrap();
    w.sync_all().unwrap();
    std::fs::remove_file(d.join("scratch")).unwrap();
    m.settle();
    rt.block_on(e.gc(true)).unwrap();
    w.write_all(b"more").unwrap();
    w.seek(SeekFrom::Start(0)).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut w, &mut all).unwrap();
    let mut want = data(12, 9 * MIB);
    want.extend_from_slice(b"more");
    assert!(all == want, "unlinked writer reads its own data");
    assert_eq!(w.metadata().unwrap().len(), want.len() as u64);
    assert_eq!(w.metadata().unwrap().nlink(), 0, "no name left");
    drop(w);
    assert_eq!(errno_of(std::fs::metadata(d.join("scratch"))), libc::ENOENT);
    m.settle();
    assert!(matches!(
        e.head_object("unlinked", "scratch"),
        Err(engine::Error::NoSuchKey { .. })
    ));

    // rename over a file that is open for writing: the open file is detached, the renamed
    // one wins, and closing the detached one does not bring it back.
    let mut old = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(d.join("target"))
        .unwrap();
    old.write_all(b"old contents").unwrap();
    std::fs::write(d.join("tmp.new"), b"replacement").unwrap();
    std::fs::rename(d.join("tmp.new"), d.join("target")).unwrap();
    old.write_all(b" and more").unwrap();
    drop(old);
    assert_eq!(std::fs::read(d.join("target")).unwrap(), b"replacement");
    m.settle();
    assert_eq!(
        rt.block_on(async {
            let g = e.get_object("unlinked", "target", None).await.unwrap();
            g.meta.size
        }),
        11
    );
    drop(e);
    let dir = m.unmount();
    let e = engine::Engine::open(engine::EngineConfig::new(dir.path().join("data"))).unwrap();
    rt.block_on(e.gc(true)).unwrap();
    assert_eq!(e.draft_count().unwrap(), 0);
    assert!(e.fsck().unwrap().is_clean());
}

/// mountd's peak resident memory, from /proc.
fn peak_rss_mib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn memory_stays_bounded_for_large_files_and_many_open_files() {
    const MIB: usize = 1 << 20;
    let m = Mount::start_args(&["--write-buffer-mib", "64"]);
    std::fs::create_dir(m.mnt.join("mem")).unwrap();
    let pid = m.child.id();
    let base = peak_rss_mib(pid);
    let t = Instant::now();
    // 1 GiB streamed through one file (fresh content per MiB, so nothing deduplicates).
    let mut f = std::fs::File::create(m.mnt.join("mem/large.bin")).unwrap();
    let mut block = data(13, MIB);
    let mut h = md5::Md5::new();
    for i in 0..1024u64 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block).unwrap();
        h.update(&block);
    }
    drop(f);
    eprintln!("1 GiB through the mount in {:?}", t.elapsed());
    let large_peak = peak_rss_mib(pid);
    let e = engine_of(&m);
    assert_eq!(
        e.head_object("mem", "large.bin").unwrap().etag,
        hex::encode(h.finalize())
    );
    // 96 files open at once, 3 MiB written to each and none closed: 288 MiB of modified
    // data against a 64 MiB budget.
    let mut files: Vec<std::fs::File> = (0..96)
        .map(|i| std::fs::File::create(m.mnt.join(format!("mem/open{i}"))).unwrap())
        .collect();
    for round in 0..3u64 {
        for (i, f) in files.iter_mut().enumerate() {
            f.write_all(&data(round * 100 + i as u64, MIB)).unwrap();
        }
    }
    let many_peak = peak_rss_mib(pid);
    eprintln!(
        "peak RSS: start {base} MiB, 1 GiB file {large_peak} MiB, 96 open files {many_peak} MiB"
    );
    files.clear();
    for i in 0..96u64 {
        let mut want = Vec::new();
        for round in 0..3u64 {
            want.extend_from_slice(&data(round * 100 + i, MIB));
        }
        assert!(std::fs::read(m.mnt.join(format!("mem/open{i}"))).unwrap() == want);
    }
    assert!(
        large_peak < base + 100,
        "1 GiB write: peak RSS {large_peak} MiB (started at {base} MiB)"
    );
    assert!(
        many_peak < base + 160,
        "96 open files: peak RSS {many_peak} MiB (started at {base} MiB)"
    );
    drop(e);
    let _ = m.unmount();
}

/// `lseek(fd, off, whence)`, or the errno.
fn seek_raw(f: &std::fs::File, off: u64, whence: i32) -> Result<u64, i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; lseek has no memory effects.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, whence) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as u64)
    }
}

/// `fallocate(fd, mode, off, len)`, or the errno.
fn fallocate(f: &std::fs::File, mode: i32, off: u64, len: u64) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; fallocate has no memory effects.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, off as libc::off_t, len as libc::off_t) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

#[test]
fn sparse_files_store_only_their_data() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("sparse")).unwrap();
    let p = m.mnt.join("sparse/disk.img");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(10 * GIB).unwrap();
    drop(f);
    let e = engine_of(&m);
    let meta = e.head_object("sparse", "disk.img").unwrap();
    assert_eq!((meta.size, meta.hole_bytes), (10 * GIB, 10 * GIB));
    assert_eq!(live_chunks(&e).len(), 0, "holes store nothing");
    assert_eq!(std::fs::metadata(&p).unwrap().blocks(), 0);
    // A write deep inside stores the pages around it, not a whole chunk.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    f.seek(SeekFrom::Start(9 * GIB + 12345)).unwrap();
    f.write_all(b"boot sector").unwrap();
    // Holes and data as seen while the file is open for writing, then once it is closed.
    let check_layout = |f: &std::fs::File| {
        assert_eq!(seek_raw(f, 0, libc::SEEK_HOLE), Ok(0));
        assert_eq!(seek_raw(f, 0, libc::SEEK_DATA), Ok(9 * GIB));
        assert_eq!(seek_raw(f, 9 * GIB + 5, libc::SEEK_DATA), Ok(9 * GIB + 5));
        let hole = seek_raw(f, 9 * GIB, libc::SEEK_HOLE).unwrap();
        assert!(
            (9 * GIB + 12356..=9 * GIB + 4 * MIB).contains(&hole),
            "{hole}"
        );
        assert_eq!(seek_raw(f, hole, libc::SEEK_DATA), Err(libc::ENXIO));
        assert_eq!(seek_raw(f, 10 * GIB, libc::SEEK_DATA), Err(libc::ENXIO));
        assert_eq!(seek_raw(f, 10 * GIB, libc::SEEK_HOLE), Err(libc::ENXIO));
    };
    check_layout(&f);
    drop(f);
    m.settle();
    let chunks: Vec<u32> = e
        .chunk_records()
        .unwrap()
        .values()
        .filter(|r| r.refs > 0)
        .map(|r| r.len)
        .collect();
    assert_eq!(chunks, vec![16384], "the four pages up to the write");
    let f = std::fs::File::open(&p).unwrap();
    check_layout(&f);
    assert_eq!(
        seek_raw(&f, 9 * GIB, libc::SEEK_HOLE),
        Ok(9 * GIB + 16384),
        "exactly, once stored"
    );
    assert_eq!(f.metadata().unwrap().blocks(), 16384 / 512);
    let mut buf = vec![1u8; 64];
    f.read_exact_at(&mut buf, 9 * GIB + 12345 - 20).unwrap();
    assert_eq!(&buf[..20], &[0u8; 20]);
    assert_eq!(&buf[20..31], b"boot sector");
    assert!(buf[31..].iter().all(|b| *b == 0));
    f.read_exact_at(&mut buf, 5 * GIB).unwrap();
    assert!(buf.iter().all(|b| *b == 0));
    assert_eq!(f.metadata().unwrap().len(), 10 * GIB);
    drop(f);
    // cp finds the holes (SEEK_DATA/SEEK_HOLE) and makes a sparse copy.
    let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = out.path().join("disk.img");
    run(Command::new("cp").arg(&p).arg(&copy));
    let cm = std::fs::metadata(&copy).unwrap();
    assert_eq!(cm.len(), 10 * GIB);
    assert!(
        cm.blocks() * 512 <= 4 * MIB,
        "sparse copy: {} blocks",
        cm.blocks()
    );
    let c = std::fs::File::open(&copy).unwrap();
    c.read_exact_at(&mut buf, 9 * GIB + 12345 - 20).unwrap();
    assert_eq!(&buf[20..31], b"boot sector");
    drop(c);

    // Zeros written out in full take no space either (dd from /dev/zero).
    let z = m.mnt.join("sparse/zeros");
    run(Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", z.display()))
        .args(["bs=1M", "count=64", "status=none"]));
    m.settle();
    let zm = e.head_object("sparse", "zeros").unwrap();
    assert_eq!((zm.size, zm.hole_bytes), (64 * MIB, 64 * MIB));
    assert_eq!(
        zm.etag,
        md5(&vec![0u8; 64 << 20]),
        "written in order: plain MD5"
    );
    m.settle();
    assert_eq!(live_chunks(&e).len(), 1);
    assert_eq!(std::fs::metadata(&z).unwrap().blocks(), 0);
    drop(e);
    let _ = m.unmount();
}

#[test]
fn fallocate_punches_zeroes_and_extends() {
    const MIB: usize = 1 << 20;
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("falloc")).unwrap();
    let p = m.mnt.join("falloc/f.bin");
    let mut model = data(40, 12 * MIB + 77);
    std::fs::write(&p, &model).unwrap();
    let e = engine_of(&m);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let keep = libc::FALLOC_FL_KEEP_SIZE;
    let punch = libc::FALLOC_FL_PUNCH_HOLE | keep;
    // A whole chunk, and a range inside one that is not page-aligned.
    fallocate(&f, punch, 4 * MIB as u64, 4 * MIB as u64).unwrap();
    model[4 * MIB..8 * MIB].fill(0);
    fallocate(&f, punch, MIB as u64 + 5, 200 * 1024).unwrap();
    model[MIB + 5..MIB + 5 + 200 * 1024].fill(0);
    // Punching past the end keeps the size.
    fallocate(&f, punch, 12 * MIB as u64, MIB as u64).unwrap();
    model[12 * MIB..].fill(0);
    assert_eq!(f.metadata().unwrap().len(), model.len() as u64);
    // ZERO_RANGE past the end grows the file, with KEEP_SIZE it does not.
    fallocate(
        &f,
        libc::FALLOC_FL_ZERO_RANGE,
        10 * MIB as u64,
        3 * MIB as u64,
    )
    .unwrap();
    model[10 * MIB..].fill(0);
    model.resize(13 * MIB, 0);
    fallocate(
        &f,
        libc::FALLOC_FL_ZERO_RANGE | keep,
        12 * MIB as u64,
        5 * MIB as u64,
    )
    .unwrap();
    assert_eq!(f.metadata().unwrap().len(), 13 * MIB as u64);
    // Plain allocation: the size grows (the space is checked, not set aside); KEEP_SIZE keeps it.
    fallocate(&f, 0, 0, 14 * MIB as u64).unwrap();
    model.resize(14 * MIB, 0);
    fallocate(&f, keep, 0, 20 * MIB as u64).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 14 * MIB as u64);
    // More space than the disks have: ENOSPC, nothing changed.
    assert_eq!(fallocate(&f, 0, 0, 1 << 42), Err(libc::ENOSPC));
    // Operations that move data are not offered.
    assert_eq!(
        fallocate(&f, libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4 * MIB as u64),
        Err(libc::EOPNOTSUPP)
    );
    assert_eq!(
        fallocate(&f, libc::FALLOC_FL_INSERT_RANGE, 0, 4 * MIB as u64),
        Err(libc::EOPNOTSUPP)
    );
    assert!(std::fs::read(&p).unwrap() == model, "mount view while open");
    drop(f);
    assert!(std::fs::read(&p).unwrap() == model, "mount view");
    m.settle();
    let meta = e.head_object("falloc", "f.bin").unwrap();
    assert_eq!(meta.size, model.len() as u64);
    assert!(
        meta.hole_bytes >= (4 * MIB + 196 * 1024 + 4 * MIB) as u64,
        "punched ranges take no space: {}",
        meta.hole_bytes
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = get_all(&rt, &e, "falloc", "f.bin");
    assert!(got == model, "S3 view");
    // The ETag follows S3's multipart rule over the parts the object records.
    assert_eq!(meta.etag, etag_of_parts(&e, "falloc", "f.bin", &model));
    // A read-only descriptor may not fallocate.
    let ro = std::fs::File::open(&p).unwrap();
    assert_eq!(fallocate(&ro, punch, 0, 4096), Err(libc::EBADF));
    drop(ro);
    drop(e);
    let dir = m.unmount();
    let e = engine::Engine::open(engine::EngineConfig::new(dir.path().join("data"))).unwrap();
    rt.block_on(e.gc(true)).unwrap();
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

/// S3's multipart ETag over the parts an object records (`GetObject?partNumber=N`).
fn etag_of_parts(e: &engine::Engine, bucket: &str, key: &str, body: &[u8]) -> String {
    let n = e.head_object(bucket, key).unwrap().parts_count;
    if n == 0 {
        return md5(body);
    }
    let mut h = md5::Md5::new();
    for part in 1..=n {
        let (a, b) = e.part_range(bucket, key, part).unwrap();
        h.update(md5::Md5::digest(&body[a as usize..b as usize]));
    }
    format!("{}-{n}", hex::encode(h.finalize()))
}

/// Every file under `dir` with the bytes it occupies, one per line (what holds a disk's space).
fn allocated_files(dir: &Path) -> String {
    held_files(dir)
        .iter()
        .map(|(p, held, len)| format!("{}: {held} bytes held, {len} long\n", p.display()))
        .collect()
}

#[test]
fn full_disks_give_enospc_and_keep_what_was_committed() {
    const MIB: usize = 1 << 20;
    let small_dir = tempfile::tempdir().unwrap();
    let small = SmallFs::mount(small_dir.path().join("small"), "32m");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mnt")).unwrap();
    let disks: String = (0..6)
        .map(|i| format!("    - {}\n", small.0.join(format!("d{i}")).display()))
        .collect();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "storage:\n  data_dir: {}\n  gc_interval: 0.2\n  disks:\n{disks}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let m = Mount::start_with(dir, &["--config", cfg.to_str().unwrap()]);
    std::fs::create_dir(m.mnt.join("full")).unwrap();
    let kept = data(50, 6 * MIB);
    std::fs::write(m.mnt.join("full/kept"), &kept).unwrap();
    // 40 MiB of data is 60 MiB of shards on a 32 MiB disk.
    let big = data(51, 40 * MIB);
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(m.mnt.join("full/big"))?;
        for piece in big.chunks(MIB) {
            f.write_all(piece)?;
        }
        f.sync_all()
    })();
    let err = res.expect_err("40 MiB do not fit");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // What was committed before is intact. The failed file holds at most what was written
    // before the failure, as on a local filesystem: close commits what fits (when the failure
    // came early, that may be all the writer gave before it).
    assert!(std::fs::read(m.mnt.join("full/kept")).unwrap() == kept);
    let e = engine_of(&m);
    if let Ok(got) = std::fs::read(m.mnt.join("full/big")) {
        assert!(got.len() < big.len(), "{} bytes", got.len());
        assert!(
            got[..] == big[..got.len()],
            "not a prefix of what was written"
        );
    }
    m.settle();
    assert!(e.fsck().unwrap().is_clean());
    // Removing it gives the space back (the background GC collects what it committed), also
    // the space of whatever was stored and not committed (the kernel sends the release after
    // close returns) ...
    match std::fs::remove_file(m.mnt.join("full/big")) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => panic!("{err}"),
        _ => {}
    }
    let free = || engine::maintenance::fs_capacity(&m.mnt).unwrap().1;
    let t = Instant::now();
    while free() < 8 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "free: {}\nspace held on the disks:\n{}\n{}",
            free(),
            allocated_files(&small.0),
            std::fs::read_to_string(m.dir.path().join("mountd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... and a file that fits goes in.
    let fits = data(52, 4 * MIB);
    let mut f = std::fs::File::create(m.mnt.join("full/fits")).unwrap();
    f.write_all(&fits).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert!(std::fs::read(m.mnt.join("full/fits")).unwrap() == fits);
    // Removing files gives their space back by itself (the background GC, every 0.2 s here):
    // 10 MiB of data, 15 MiB of shards.
    let before = free();
    std::fs::remove_file(m.mnt.join("full/fits")).unwrap();
    m.settle();
    std::fs::remove_file(m.mnt.join("full/kept")).unwrap();
    let t = Instant::now();
    while !e.chunk_records().unwrap().is_empty() || free() < before + (9 << 20) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} chunks left, free {before} -> {}",
            e.chunk_records().unwrap().len(),
            free()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(e);
    let _ = m.unmount();
    drop(small);
}

#[test]
fn directory_times_follow_their_entries() {
    let m = Mount::start_args(&["--attr-timeout", "0"]);
    let d = m.mnt.join("times/dir");
    std::fs::create_dir_all(&d).unwrap();
    let mtime = |p: &Path| {
        let md = std::fs::metadata(p).unwrap();
        (
            md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            md.ctime() * 1_000_000_000 + md.ctime_nsec(),
        )
    };
    let mut last = mtime(&d);
    let mut step = |what: &str, f: &dyn Fn()| {
        std::thread::sleep(Duration::from_millis(20));
        f();
        let now = mtime(&d);
        assert!(
            now.0 > last.0 && now.1 > last.1,
            "{what}: {last:?} -> {now:?}"
        );
        last = now;
    };
    let nlink = |p: &Path| std::fs::metadata(p).unwrap().nlink();
    assert_eq!(nlink(&d), 2);
    step("create", &|| std::fs::write(d.join("f"), b"x").unwrap());
    step("mkdir", &|| std::fs::create_dir(d.join("sub")).unwrap());
    // nlink counts subdirectories, as on a local filesystem.
    assert_eq!(nlink(&d), 3);
    assert_eq!(nlink(&m.mnt.join("times")), 3);
    step("symlink", &|| {
        std::os::unix::fs::symlink("f", d.join("l")).unwrap()
    });
    step("rename in", &|| {
        std::fs::rename(m.mnt.join("times/dir/f"), d.join("g")).unwrap()
    });
    step("unlink", &|| std::fs::remove_file(d.join("g")).unwrap());
    step("rmdir", &|| std::fs::remove_dir(d.join("sub")).unwrap());
    assert_eq!(nlink(&d), 2);
    // A bucket's times start at its creation and follow its entries too.
    let bucket = m.mnt.join("times");
    let (b0, _) = mtime(&bucket);
    assert!(b0 > 1_700_000_000 * 1_000_000_000, "bucket time {b0}");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(bucket.join("top"), b"t").unwrap();
    assert!(mtime(&bucket).0 > b0);
    // Writing a file's contents does not change its directory.
    std::fs::write(d.join("l2"), b"1").unwrap();
    let before = mtime(&d);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(d.join("l2"), b"22").unwrap();
    assert_eq!(mtime(&d), before);
    // The times reach the marker object: they survive a remount.
    std::thread::sleep(Duration::from_millis(200));
    let dir = m.unmount();
    let m = Mount::start_in(dir);
    assert_eq!(mtime(&m.mnt.join("times/dir")), before);
    // The root, and a directory no marker object stands for (a key `implicit/k` put over S3),
    // show the mount's start, not 1970.
    let e = engine_of(&m);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(e.put_object("times", "implicit/k", &b"k"[..], Default::default()))
        .unwrap();
    for p in [m.mnt.clone(), m.mnt.join("times/implicit")] {
        let (t, _) = mtime(&p);
        assert!(t > 1_700_000_000 * 1_000_000_000, "{}: {t}", p.display());
    }
    let _ = m.unmount();
}

#[test]
fn reads_sequential_random_and_after_a_change_over_s3() {
    use std::os::unix::fs::FileExt;
    const MIB: usize = 1 << 20;
    let m = Mount::start();
    // The kernel reads ahead 1 MiB at a time, as mountd asks, not its 128 KiB default.
    {
        let dev = std::fs::metadata(&m.mnt).unwrap().dev();
        let ra = format!(
            "/sys/class/bdi/{}:{}/read_ahead_kb",
            libc::major(dev),
            libc::minor(dev)
        );
        assert_eq!(std::fs::read_to_string(ra).unwrap().trim(), "1024");
    }
    std::fs::create_dir(m.mnt.join("reads")).unwrap();
    let p = m.mnt.join("reads/f.bin");
    let v1 = data(21, 21 * MIB + 333);
    std::fs::write(&p, &v1).unwrap();
    let f = std::fs::File::open(&p).unwrap();
    let mut rng = Rng(77);
    let check = |f: &std::fs::File, want: &[u8], rng: &mut Rng| {
        // Sequential runs with odd sizes (read-ahead windows), then random reads.
        let mut off = 0usize;
        while off < want.len() {
            let n = 1 + rng.below(300_000) as usize;
            let mut buf = vec![0u8; n];
            let got = f.read_at(&mut buf, off as u64).unwrap();
            let exp = n.min(want.len() - off);
            assert_eq!(got, exp, "short read at {off}");
            assert!(
                buf[..got] == want[off..off + got],
                "sequential read at {off}+{n}"
            );
            off += got;
        }
        for _ in 0..200 {
            let off = rng.below(want.len() as u64 + 10) as usize;
            let n = 1 + rng.below(70_000) as usize;
            let mut buf = vec![0u8; n];
            let got = f.read_at(&mut buf, off as u64).unwrap();
            let exp = n.min(want.len().saturating_sub(off));
            assert_eq!(got, exp, "random read at {off}+{n}");
            assert!(
                buf[..got] == want[off..off + got],
                "random read at {off}+{n}"
            );
        }
    };
    check(&f, &v1, &mut rng);
    // Replaced over S3 (another process) while the file is open: reads see the new version,
    // not a window of the old one (within the attribute cache time for the size).
    let e = engine_of(&m);
    let v2 = data(22, 21 * MIB + 333);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(e.put_object("reads", "f.bin", &v2[..], engine::PutOptions::default()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(f.metadata().unwrap().len(), v2.len() as u64);
    check(&f, &v2, &mut rng);
    drop(f);

    // Pages read once stay cached for the next open of the same version: a re-read is served by
    // the kernel...
    assert!(std::fs::read(&p).unwrap() == v2);
    let (resident, total) = resident_pages(&p);
    assert_eq!(resident, total, "cached pages dropped at reopen");
    // ...but not once the object has changed, even with the same size and POSIX mtime (which is
    // all the kernel could compare).
    m.settle();
    let old = e.head_object("reads", "f.bin").unwrap();
    let v3 = data(23, v2.len());
    let opts = engine::PutOptions {
        attrs: engine::ObjectAttrs {
            posix: Some(old.posix()),
            ..Default::default()
        },
        ..Default::default()
    };
    rt.block_on(e.put_object("reads", "f.bin", &v3[..], opts))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let got = std::fs::read(&p).unwrap();
    assert!(got == v3, "stale pages after an overwrite over S3");
    // A write through the mount, then a reader: it sees the write.
    let mut v4 = v3.clone();
    v4[5 * MIB..5 * MIB + 10].copy_from_slice(b"0123456789");
    {
        let w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        w.write_all_at(b"0123456789", 5 * MIB as u64).unwrap();
    }
    assert!(std::fs::read(&p).unwrap() == v4);
    drop(e);
    let _ = m.unmount();
}

/// How many of the pages of `p` are in the page cache, of how many (mmap + mincore).
fn resident_pages(p: &Path) -> (usize, usize) {
    let f = std::fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    let pages = engine::testing::resident_pages(&f, len).unwrap();
    (pages.iter().filter(|r| **r).count(), pages.len())
}

/// Where the data shards 0 of all chunks under `disks` are: `(volume file, offset)`.
fn data_shards(disks: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(disks).unwrap() {
        for (_, vol) in engine::testing::list_volumes(&d.unwrap().path()) {
            for (off, h) in engine::testing::scan_shards(&vol).unwrap() {
                if h.index == 0 {
                    out.push((vol.clone(), off));
                }
            }
        }
    }
    out
}

fn wait_until(what: &str, log: &dyn Fn() -> String, f: &dyn Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_mountd_only_host_heals_and_reads_s3ds_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mnt")).unwrap();
    // s3d's whole file (server, storage, auth): mountd reads it, as strictly as s3d does.
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "server:\n  port: 1\n  repair_interval_secs: 1\n  scrub_interval_hours: 0\n\
         storage:\n  chunk_size: 256KiB\nauth:\n  access_key: HEALKEY\n  secret_key: heal-secret-key\n",
    )
    .unwrap();
    let args = ["--config", cfg.to_str().unwrap(), "--log-format", "json"];
    let m = Mount::start_with(dir, &args);
    let body = data(5, 3 << 20);
    std::fs::create_dir(m.mnt.join("heal")).unwrap();
    std::fs::write(m.mnt.join("heal/obj"), &body).unwrap();
    let dir = m.unmount();
    // Lose every shard 0 (a lost sector reads back as zeros), then read the file on a fresh
    // mount: served from parity, queued, and repaired by mountd's own background jobs.
    let punched = data_shards(&dir.path().join("data/disks"));
    assert!(punched.len() >= 12, "{punched:?}");
    for (vol, off) in &punched {
        assert!(engine::testing::punch(vol, *off, 4096).unwrap());
    }
    let m = Mount::start_with(dir, &args);
    let log_path = m.dir.path().join("mountd.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(std::fs::read(m.mnt.join("heal/obj")).unwrap(), body);
    let back = || {
        punched.iter().all(|(vol, off)| {
            engine::testing::scan_shards(vol)
                .unwrap()
                .iter()
                .any(|(o, h)| o == off && h.index == 0)
        })
    };
    wait_until("mountd repaired the shards", &log, &|| {
        back() && log().contains("background repair pass")
    });
    // JSON, one object per line.
    for l in log().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(v["fields"]["message"].is_string(), "{l}");
    }
    assert!(log().contains("background repair and scrub run in this process"));
    // s3d beside it leaves repair and scrub to mountd, and takes them over when it goes.
    let s3 = S3dBeside::start_with(&m, &["--config", cfg.to_str().unwrap()]);
    wait_until(
        "s3d sees another process running the jobs",
        &|| s3.log(),
        &|| {
            s3.log()
                .contains("background repair and scrub run in another process")
        },
    );
    let _dir = m.unmount();
    wait_until("s3d takes the jobs over", &|| s3.log(), &|| {
        s3.log()
            .contains("background repair and scrub run in this process")
    });
    drop(s3);
    // A misspelt section is an error in both doors, with the same exit status.
    std::fs::write(&cfg, "storag:\n  data_dir: /nonexistent\n").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mountd"))
        .args(["--config", cfg.to_str().unwrap()])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("storag"), "{err}");
    let s3d = PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d");
    let out = Command::new(s3d)
        .args(["status", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("storag"), "{err}");
}

/// Versioning through the kernel: with versioning on (over S3), a file written on the mount is
/// one version, an edit of many writes one more at close, `rm` a delete marker, and the old
/// versions stay readable over S3.
#[test]
fn versioned_bucket_through_the_kernel() {
    let m = Mount::start();
    std::fs::create_dir(m.mnt.join("ver")).unwrap();
    let server = S3dBeside::start(&m);
    let aws = |args: &[&str]| server.aws(args);
    aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "ver",
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    let versions = || -> Vec<(String, bool)> {
        let out = aws(&["s3api", "list-object-versions", "--bucket", "ver"]);
        let v: serde_json::Value =
            serde_json::from_str(if out.trim().is_empty() { "{}" } else { &out }).unwrap();
        let mut all = Vec::new();
        for (what, marker) in [("Versions", false), ("DeleteMarkers", true)] {
            for x in v[what].as_array().into_iter().flatten() {
                all.push((x["VersionId"].as_str().unwrap().to_string(), marker));
            }
        }
        all
    };
    let f = m.mnt.join("ver/notes.txt");
    let first = data(91, 300_000);
    std::fs::write(&f, &first).unwrap();
    assert_eq!(versions().len(), 1, "a new file is one version");
    {
        use std::io::Write;
        let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        for _ in 0..5 {
            h.write_all(b"more\n").unwrap();
        }
    }
    assert_eq!(versions().len(), 2, "five writes, one close: one version");
    std::fs::remove_file(&f).unwrap();
    assert!(!f.exists());
    let v = versions();
    assert_eq!(
        v.iter().filter(|x| x.1).count(),
        1,
        "rm made a delete marker: {v:?}"
    );
    // The first version is still there, by its id.
    let oldest = v
        .iter()
        .filter(|x| !x.1)
        .map(|x| x.0.clone())
        .min()
        .unwrap();
    let back = m.dir.path().join("back.txt");
    aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "ver",
        "--key",
        "notes.txt",
        "--version-id",
        &oldest,
        back.to_str().unwrap(),
    ]);
    assert_eq!(md5(&std::fs::read(&back).unwrap()), md5(&first));
}

/// Log-like text that compresses well.
fn log_text(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 100);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(
            format!(
                "ts={i} level=info msg=\"frame stored\" camera=7 bytes={}\n",
                i * 31 % 9000
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

#[test]
fn compressed_store_through_the_mount_and_over_s3() {
    let m = Mount::start_args(&["--compression", "zstd"]);
    let b = m.mnt.join("camlogs");
    std::fs::create_dir(&b).unwrap();
    let big = log_text(9_000_000);
    let small = log_text(20_000);
    let noise = data(5, 3_000_000);
    std::fs::write(b.join("big.log"), &big).unwrap();
    std::fs::write(b.join("small.log"), &small).unwrap();
    std::fs::write(b.join("noise.bin"), &noise).unwrap();
    // Read back through the kernel, in the page cache's pieces, and at an offset.
    assert_eq!(std::fs::read(b.join("big.log")).unwrap(), big);
    let mut f = std::fs::File::open(b.join("big.log")).unwrap();
    f.seek(SeekFrom::Start(5_000_001)).unwrap();
    let mut piece = vec![0u8; 100_000];
    std::io::Read::read_exact(&mut f, &mut piece).unwrap();
    assert_eq!(piece, &big[5_000_001..5_100_001]);
    drop(f);
    // Over S3, byte-exact with the plain MD5 as ETag.
    let server = S3dBeside::start(&m);
    let got = m.dir.path().join("got.log");
    server.aws(&["s3", "cp", "s3://camlogs/big.log", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), big);
    let head = server.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "camlogs",
        "--key",
        "small.log",
    ]);
    assert!(head.contains(&md5(&small)), "{head}");
    drop(server);
    let dir = m.unmount();
    let status = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    // 9 MB of text in 4 MiB chunks: 3 chunks compressed, the random file's not.
    assert!(text.contains("compression: 3 chunks compressed"), "{text}");
    // Remounted without the flag: the data reads the same.
    let m = Mount::start_in(dir);
    let b = m.mnt.join("camlogs");
    assert_eq!(std::fs::read(b.join("big.log")).unwrap(), big);
    assert_eq!(std::fs::read(b.join("small.log")).unwrap(), small);
    assert_eq!(
        md5(&std::fs::read(b.join("noise.bin")).unwrap()),
        md5(&noise)
    );
}

/// The event records of the stream s3d's publisher fills, from `*next` on, until `n` (30 s).
fn stream_events(
    rt: &tokio::runtime::Runtime,
    url: &str,
    next: &mut u64,
    n: usize,
) -> Vec<(String, String)> {
    rt.block_on(async {
        let c = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(c);
        let t = Instant::now();
        let stream = loop {
            if let Ok(s) = js.get_stream("PREDASTORE_EVENTS").await {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "no events stream");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut out = Vec::new();
        while out.len() < n {
            match stream.get_raw_message(*next).await {
                Ok(m) => {
                    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                    let r = &v["Records"][0];
                    out.push((
                        r["eventName"].as_str().unwrap_or("").to_string(),
                        r["s3"]["object"]["key"].as_str().unwrap_or("").to_string(),
                    ));
                    *next += 1;
                }
                Err(_) => {
                    assert!(t.elapsed() < Duration::from_secs(30), "{out:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        out
    })
}

#[test]
fn mount_changes_are_published_as_events() {
    let m = Mount::start();
    let store = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    /// Stops the NATS server however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _nats = Stop(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server"),
    );
    let url = format!("nats://127.0.0.1:{port}");
    let server = S3dBeside::start_env(&m, &[], &[("PREDASTORE_NATS_URL", url.as_str())]);
    std::fs::create_dir(m.mnt.join("cams")).unwrap();
    server.aws(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        "cams",
        "--notification-configuration",
        r#"{"TopicConfigurations":[{"Id":"all","TopicArn":"arn:predastore:nats:::s3.events.cams","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}"#,
    ]);
    let b = m.mnt.join("cams");
    // Written and closed, renamed, removed — through the kernel, by the mount's process.
    std::fs::write(b.join("frame.jpg"), b"jpeg").unwrap();
    std::fs::rename(b.join("frame.jpg"), b.join("kept.jpg")).unwrap();
    std::fs::write(b.join("tmp.txt"), b"x").unwrap();
    std::fs::remove_file(b.join("tmp.txt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut next = 1;
    let ev = stream_events(&rt, &url, &mut next, 7);
    // A file is an (empty) object from its creation on, as S3 clients see it, then its contents
    // at close: each is an object version, each has its event (docs/semantics.md).
    let want = [
        ("s3:ObjectCreated:Put", "frame.jpg"),
        ("s3:ObjectCreated:Put", "frame.jpg"),
        ("s3:ObjectCreated:Copy", "kept.jpg"),
        ("s3:ObjectRemoved:Delete", "frame.jpg"),
        ("s3:ObjectCreated:Put", "tmp.txt"),
        ("s3:ObjectCreated:Put", "tmp.txt"),
        ("s3:ObjectRemoved:Delete", "tmp.txt"),
    ];
    let got: Vec<(&str, &str)> = ev.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, want, "{}", server.log());
}
