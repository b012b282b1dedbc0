//! Modes, owners, times and file types written by one tool and read by the others: the mount,
//! s3fs-fuse (Debian's package, mounting a bucket of s3d), rclone (`--metadata`) and s3cmd
//! (its `s3cmd-attrs`). See `engine::posix` for the forms each writes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{fusermount_u, lazy_unmount, wait_mounted, Mount, S3dBeside};

/// An s3fs mount of one bucket of `s3`, unmounted on drop.
struct S3fs {
    child: Child,
    mnt: PathBuf,
}

impl S3fs {
    fn mount(s3: &S3dBeside, bucket: &str, work: &Path, name: &str) -> S3fs {
        let mnt = work.join(name);
        std::fs::create_dir_all(&mnt).unwrap();
        let pw = work.join("s3fs-passwd");
        std::fs::write(&pw, format!("{}:{}\n", S3dBeside::AK, S3dBeside::SK)).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let child = Command::new("s3fs")
            .arg(bucket)
            .arg(&mnt)
            .arg("-f")
            .args(["-o", &format!("url=https://127.0.0.1:{}", s3.port)])
            .args(["-o", "use_path_request_style", "-o", "endpoint=us-east-1"])
            .args(["-o", &format!("passwd_file={}", pw.display())])
            // s3fs (libcurl with GnuTLS) takes no CA file option that works for a self-signed
            // certificate of an IP address: the test trusts the loopback peer.
            .args(["-o", "no_check_certificate", "-o", "ssl_verify_hostname=0"])
            // Nothing cached between the checks: each reads what s3d has now.
            .args(["-o", "stat_cache_expire=0", "-o", "max_stat_cache_size=0"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(work.join(format!("{name}.log"))).unwrap(),
            ))
            .spawn()
            .expect("s3fs (Debian package s3fs) is installed");
        wait_mounted(&mnt, &work.join(format!("{name}.log")));
        S3fs { child, mnt }
    }

    fn unmount(mut self) {
        fusermount_u(&self.mnt);
        let _ = self.child.wait();
    }
}

impl Drop for S3fs {
    fn drop(&mut self) {
        lazy_unmount(&self.mnt);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Type, permission bits and mtime seconds of `p` (not following a symlink).
fn stat(p: &Path) -> (u32, i64) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode(), m.mtime())
}

/// Commits what the mount changed (its write-back window), then waits out the mount's
/// attribute cache (1 s by default), which covers s3fs's too.
fn settle(m: &Mount) {
    m.settle();
    std::thread::sleep(Duration::from_millis(1200));
}

#[test]
fn s3fs_rclone_s3cmd_and_the_mount_read_each_others_files() {
    let m = Mount::start();
    let s3 = S3dBeside::start(&m);
    let work = m.dir.path().to_path_buf();
    let root = m.mnt.join("tools");
    std::fs::create_dir(&root).unwrap();

    // Made on the mount.
    std::fs::DirBuilder::new()
        .create(root.join("m-dir"))
        .unwrap();
    std::fs::set_permissions(root.join("m-dir"), PermissionsExt::from_mode(0o750)).unwrap();
    std::fs::write(root.join("m-file"), b"from the mount").unwrap();
    std::fs::set_permissions(root.join("m-file"), PermissionsExt::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("m-file", root.join("m-link")).unwrap();
    m.settle();

    // Made through s3fs: cp, mkdir, ln -s, chmod.
    let s3fs = S3fs::mount(&s3, "tools", &work, "s3fs");
    let sm = s3fs.mnt.clone();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(work.join("body"), &body).unwrap();
    run(Command::new("cp")
        .arg(work.join("body"))
        .arg(sm.join("s-file")));
    run(Command::new("chmod").arg("600").arg(sm.join("s-file")));
    run(Command::new("mkdir").arg(sm.join("s-dir")));
    run(Command::new("mkdir")
        .args(["-m", "700"])
        .arg(sm.join("s-dir700")));
    std::fs::write(sm.join("s-dir/inner"), b"inner").unwrap();
    run(Command::new("ln")
        .args(["-s", "s-file"])
        .arg(sm.join("s-link")));
    let ls = run(Command::new("ls").arg("-l").arg(&sm));
    for name in ["m-dir", "m-file", "m-link", "s-file", "s-dir", "s-link"] {
        assert!(ls.contains(name), "{name} not in {ls}");
    }

    // Made with rclone (its metadata: octal mode, owner, times) and s3cmd (s3cmd-attrs).
    let rsrc = work.join("rsrc");
    std::fs::create_dir(&rsrc).unwrap();
    std::fs::write(rsrc.join("r-file"), b"from rclone").unwrap();
    std::fs::set_permissions(rsrc.join("r-file"), PermissionsExt::from_mode(0o604)).unwrap();
    set_mtime(&rsrc.join("r-file"), 1_500_000_000);
    let rclone = |args: &[&str]| {
        run(Command::new("rclone")
            .args(["--config", "/dev/null"])
            .args(args)
            .env("SSL_CERT_FILE", &s3.ca)
            .env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG_PS_TYPE", "s3")
            .env("RCLONE_CONFIG_PS_PROVIDER", "Other")
            .env("RCLONE_CONFIG_PS_ACCESS_KEY_ID", S3dBeside::AK)
            .env("RCLONE_CONFIG_PS_SECRET_ACCESS_KEY", S3dBeside::SK)
            .env(
                "RCLONE_CONFIG_PS_ENDPOINT",
                format!("https://127.0.0.1:{}", s3.port),
            )
            .env("RCLONE_CONFIG_PS_REGION", "us-east-1"))
    };
    rclone(&["copy", "--metadata", rsrc.to_str().unwrap(), "ps:tools/rcl"]);
    let cfg = work.join("s3cfg");
    std::fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = 127.0.0.1:{p}\n\
             host_bucket = 127.0.0.1:{p}\nuse_https = True\nca_certs_file = {}\n\
             check_ssl_certificate = True\nsignature_v2 = False\nbucket_location = us-east-1\n",
            S3dBeside::AK,
            S3dBeside::SK,
            s3.ca.display(),
            p = s3.port,
        ),
    )
    .unwrap();
    let s3cmd = |args: &[&str]| run(Command::new("s3cmd").arg("-c").arg(&cfg).args(args));
    let ssrc = work.join("ssrc");
    std::fs::create_dir(&ssrc).unwrap();
    std::fs::write(ssrc.join("c-file"), b"from s3cmd").unwrap();
    std::fs::set_permissions(ssrc.join("c-file"), PermissionsExt::from_mode(0o620)).unwrap();
    set_mtime(&ssrc.join("c-file"), 1_400_000_000);
    s3cmd(&[
        "put",
        ssrc.join("c-file").to_str().unwrap(),
        "s3://tools/s3c/c-file",
    ]);

    // What each one shows, on the mount and (after a remount) through s3fs.
    let want: [(&str, u32, Option<i64>); 10] = [
        ("m-dir", 0o040750, None),
        ("m-file", 0o100640, None),
        ("m-link", 0o120777, None),
        ("s-file", 0o100600, None),
        ("s-dir", 0o040755, None),
        ("s-dir700", 0o040700, None),
        ("s-dir/inner", 0o100644, None),
        ("s-link", 0o120777, None),
        ("rcl/r-file", 0o100604, Some(1_500_000_000)),
        ("s3c/c-file", 0o100620, Some(1_400_000_000)),
    ];
    settle(&m);
    s3fs.unmount();
    let s3fs = S3fs::mount(&s3, "tools", &work, "s3fs-again");
    for base in [&root, &s3fs.mnt] {
        for (name, mode, mtime) in want {
            let (got, t) = stat(&base.join(name));
            assert_eq!(got, mode, "{}/{name}: {got:o}", base.display());
            if let Some(mt) = mtime {
                assert_eq!(t, mt, "{}/{name}", base.display());
            }
        }
        assert_eq!(
            std::fs::read_link(base.join("s-link")).unwrap(),
            Path::new("s-file")
        );
        assert_eq!(
            std::fs::read_link(base.join("m-link")).unwrap(),
            Path::new("m-file")
        );
        assert_eq!(std::fs::read(base.join("s-file")).unwrap(), body);
        assert_eq!(
            std::fs::read(base.join("m-file")).unwrap(),
            b"from the mount"
        );
    }

    // A chmod through s3fs shows on the mount, and one on the mount through s3fs.
    run(Command::new("chmod")
        .arg("644")
        .arg(s3fs.mnt.join("s-file")));
    std::fs::set_permissions(root.join("m-file"), PermissionsExt::from_mode(0o604)).unwrap();
    settle(&m);
    assert_eq!(stat(&root.join("s-file")).0, 0o100644);
    assert_eq!(stat(&s3fs.mnt.join("m-file")).0, 0o100604);

    // rclone and s3cmd restore what the mount and s3fs set.
    let rback = work.join("rback");
    rclone(&["copy", "--metadata", "ps:tools", rback.to_str().unwrap()]);
    let sback = work.join("sback");
    s3cmd(&["sync", "s3://tools/", &format!("{}/", sback.display())]);
    for back in [&rback, &sback] {
        for (name, mode) in [
            ("m-file", 0o100604),
            ("s-file", 0o100644),
            ("s-dir/inner", 0o100644),
            ("rcl/r-file", 0o100604),
            ("s3c/c-file", 0o100620),
        ] {
            let (got, _) = stat(&back.join(name));
            assert_eq!(got, mode, "{}/{name}: {got:o}", back.display());
        }
        assert_eq!(stat(&back.join("rcl/r-file")).1, 1_500_000_000);
        assert_eq!(stat(&back.join("s3c/c-file")).1, 1_400_000_000);
    }
    // A file s3cmd put, rewritten on the mount: s3cmd gets the new contents without calling
    // them corrupt (its record's md5 of the old contents is gone).
    std::fs::write(root.join("s3c/c-file"), b"rewritten on the mount, longer").unwrap();
    settle(&m);
    let got = work.join("c-again");
    let o = Command::new("s3cmd")
        .arg("-c")
        .arg(&cfg)
        .args(["get", "s3://tools/s3c/c-file"])
        .arg(&got)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("MD5"), "{err}");
    assert_eq!(
        std::fs::read(&got).unwrap(),
        b"rewritten on the mount, longer"
    );
    drop(s3fs);
    drop(s3);
    let _ = m.unmount();
}

fn set_mtime(p: &Path, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}
