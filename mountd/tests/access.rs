//! The mount as one key of the store (`mountd --access-key`), through the kernel: what the key
//! may not see is not there, what it may not read or write fails with EACCES and changes
//! nothing, and what it may do works.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `s3d key ARGS` on `data`.
fn key(data: &Path, args: &[&str]) -> String {
    let s3d = PathBuf::from(env!("CARGO_BIN_EXE_mountd")).with_file_name("s3d");
    let o = Command::new(s3d)
        .arg("--data-dir")
        .arg(data)
        .arg("key")
        .args(args)
        .env_remove("PREDASTORE_CONFIG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_mount_acts_as_its_key() {
    // An administrator's mount makes the buckets and files.
    let m = Mount::start();
    let mnt = m.mnt.clone();
    std::fs::create_dir(mnt.join("fleet")).unwrap();
    std::fs::create_dir(mnt.join("hidden")).unwrap();
    std::fs::create_dir_all(mnt.join("fleet/device-7")).unwrap();
    std::fs::write(mnt.join("fleet/private.txt"), b"private").unwrap();
    std::fs::write(mnt.join("fleet/device-7/old.jpg"), b"old").unwrap();
    std::fs::write(mnt.join("hidden/x"), b"x").unwrap();
    let dir = m.unmount();
    let data = dir.path().join("data");
    key(&data, &["create", "--name", "camera"]);
    key(&data, &["allow", "camera", "fleet/device-7/", "--write"]);
    key(&data, &["create", "--name", "viewer"]);
    key(&data, &["allow", "viewer", "fleet", "--read"]);

    // The camera's mount: one bucket, writes under device-7/ only.
    let m = Mount::start_with(dir, &["--access-key", "camera"]);
    let mnt = m.mnt.clone();
    assert_eq!(names(&mnt), vec!["fleet"]);
    assert_eq!(
        errno_of(std::fs::metadata(mnt.join("hidden"))),
        libc::ENOENT
    );
    assert_eq!(errno_of(std::fs::read_dir(mnt.join("fleet"))), libc::EACCES);
    std::fs::write(mnt.join("fleet/device-7/new.jpg"), b"frame").unwrap();
    assert_eq!(
        errno_of(std::fs::read(mnt.join("fleet/device-7/new.jpg"))),
        libc::EACCES
    );
    assert_eq!(
        errno_of(std::fs::read(mnt.join("fleet/private.txt"))),
        libc::EACCES
    );
    assert_eq!(
        errno_of(std::fs::write(mnt.join("fleet/intruder.txt"), b"x")),
        libc::EACCES
    );
    assert_eq!(
        errno_of(std::fs::create_dir(mnt.join("newbucket"))),
        libc::EACCES
    );
    let dir = m.unmount();

    // The viewer's mount: reads and lists, changes nothing.
    let m = Mount::start_with(dir, &["--access-key", "viewer"]);
    let mnt = m.mnt.clone();
    assert_eq!(names(&mnt), vec!["fleet"]);
    assert_eq!(names(&mnt.join("fleet")), vec!["device-7", "private.txt"]);
    assert_eq!(
        std::fs::read(mnt.join("fleet/device-7/new.jpg")).unwrap(),
        b"frame"
    );
    assert_eq!(
        std::fs::read(mnt.join("fleet/private.txt")).unwrap(),
        b"private"
    );
    assert_eq!(
        errno_of(std::fs::write(mnt.join("fleet/private.txt"), b"changed")),
        libc::EACCES
    );
    assert_eq!(
        errno_of(std::fs::remove_file(mnt.join("fleet/private.txt"))),
        libc::EACCES
    );
    assert_eq!(
        errno_of(std::fs::rename(
            mnt.join("fleet/private.txt"),
            mnt.join("fleet/moved.txt")
        )),
        libc::EACCES
    );
    assert_eq!(
        std::fs::read(mnt.join("fleet/private.txt")).unwrap(),
        b"private"
    );
    assert_eq!(names(&mnt.join("fleet")), vec!["device-7", "private.txt"]);
    let dir = m.unmount();

    // A key that does not exist: mountd refuses to start, saying why.
    let o = Command::new(env!("CARGO_BIN_EXE_mountd"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--access-key", "nobody"])
        .arg(dir.path().join("mnt"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nobody"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
