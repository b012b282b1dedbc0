//! `s3d status | heal | scrub | gc` against the data dir of a running server.

mod common;

use std::process::Command;

use common::*;

fn admin(s: &Server, cmd: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .arg(cmd)
        .output()
        .expect("s3d admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn admin_commands_while_serving() {
    let s = Server::start();
    ok(s.aws(&["s3", "mb", "s3://adminbkt"]));
    let f = s.dir.path().join("obj.bin");
    write_file(&f, 9, 9 * 1024 * 1024);
    ok(s.aws(&["s3", "cp", f.to_str().unwrap(), "s3://adminbkt/obj.bin"]));
    ok(s.aws(&["s3", "cp", f.to_str().unwrap(), "s3://adminbkt/copy.bin"]));

    let (good, out) = admin(&s, "status");
    assert!(good, "{out}");
    assert!(
        out.contains("objects: 2") && out.contains("dedup ratio: 2.00"),
        "{out}"
    );

    // Lose a disk under the running server: reads go on, status says so, heal repairs.
    std::fs::remove_dir_all(s.dir.path().join("data/disks/disk2")).unwrap();
    let back = s.dir.path().join("back.bin");
    ok(s.aws(&["s3", "cp", "s3://adminbkt/obj.bin", back.to_str().unwrap()]));
    assert_eq!(md5_file(&back), md5_file(&f));
    let (good, out) = admin(&s, "status");
    assert!(!good && out.contains("MISSING"), "{out}");
    let (good, out) = admin(&s, "heal");
    assert!(good, "{out}");
    assert!(out.contains("formatted replacement disk 2"), "{out}");
    let (good, out) = admin(&s, "scrub");
    assert!(good && out.contains("0 missing, 0 corrupt"), "{out}");
    ok(s.aws(&["s3", "rm", "s3://adminbkt/copy.bin"]));
    ok(s.aws(&["s3", "rm", "s3://adminbkt/obj.bin"]));
    let (good, out) = admin(&s, "gc");
    assert!(good && out.contains("chunks removed"), "{out}");
    let (good, out) = admin(&s, "status");
    assert!(good, "{out}");
    assert!(
        out.contains("objects: 0") && out.contains("chunks: 0"),
        "{out}"
    );
    // The server is still fine.
    ok(s.aws(&["s3", "cp", f.to_str().unwrap(), "s3://adminbkt/again.bin"]));
    ok(s.aws(&[
        "s3",
        "cp",
        "s3://adminbkt/again.bin",
        back.to_str().unwrap(),
    ]));
    assert_eq!(md5_file(&back), md5_file(&f));
}
