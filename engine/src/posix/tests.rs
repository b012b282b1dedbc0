use super::*;

fn meta(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn times_round_trip_and_parse_the_usual_forms() {
    for ns in [
        0,
        1,
        1_701_234_567_123_456_789,
        1_701_234_567_500_000_000,
        -1_500_000_000,
    ] {
        assert_eq!(
            parse_time(&format_time(ns)),
            Some(ns),
            "{}",
            format_time(ns)
        );
    }
    // Nine digits: s3fs reads the fraction as nanoseconds.
    assert_eq!(
        format_time(1_701_234_567_500_000_000),
        "1701234567.500000000"
    );
    assert_eq!(format_time(1_701_234_567_000_000_000), "1701234567");
    assert_eq!(format_time(-1_500_000_000), "-1.500000000");
    assert_eq!(parse_time("1701234567"), Some(1_701_234_567_000_000_000));
    assert_eq!(
        parse_time("1701234567.1234567891"),
        Some(1_701_234_567_123_456_789)
    );
    assert_eq!(
        parse_time("2023-05-11T17:54:11.523399602+01:00"),
        Some(1_683_824_051_523_399_602)
    );
    for bad in [
        "",
        ".",
        "abc",
        "12x",
        "1.2.3",
        "- 1",
        "99999999999999999999",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn modes_are_written_c_style_octal() {
    assert_eq!(format_mode(0o100644), "0100644");
    assert_eq!(format_mode(0o40755), "040755");
    for m in [0o100644, 0o40755, 0o120777, 0o10644, 0o140755, 0o100000] {
        let dir = m & S_IFMT == S_IFDIR;
        assert_eq!(parse_mode(&format_mode(m), dir), Some(m), "{m:o}");
    }
}

/// What each writer writes, and what it must read as.
#[test]
fn modes_from_rclone_s3fs_s3cmd_and_by_hand() {
    let file = |v: &str| parse_mode(v, false);
    let dir = |v: &str| parse_mode(v, true);
    // (what was written, a directory?, how it must read, why)
    let cases: [(&str, bool, u32, &str); 16] = [
        ("100644", false, 0o100644, "rclone: octal with the type"),
        ("120777", false, 0o120777, "rclone symlink"),
        ("10644", false, 0o010644, "rclone FIFO"),
        ("20666", false, 0o020666, "rclone character device"),
        ("60660", false, 0o060660, "rclone block device"),
        ("140755", false, 0o140755, "rclone socket"),
        ("40755", true, 0o040755, "rclone directory"),
        (
            "33188",
            false,
            0o100644,
            "s3fs and s3cmd: decimal with the type",
        ),
        ("33152", false, 0o100600, "no 8 or 9, octal has no type"),
        ("33261", false, 0o100755, "s3fs executable"),
        ("16877", true, 0o040755, "s3fs directory"),
        ("16832", true, 0o040700, "s3fs private directory"),
        ("41471", false, 0o120777, "s3fs symlink, not a directory"),
        ("4516", false, 0o010644, "s3fs FIFO, not a set-uid file"),
        ("49645", false, 0o140755, "s3fs socket"),
        ("0100644", false, 0o100644, "the mount's own C-style octal"),
    ];
    for (written, is_dir, want, why) in cases {
        assert_eq!(parse_mode(written, is_dir), Some(want), "{written}: {why}");
    }
    // Every regular-file and directory mode s3fs can write reads right.
    for perm in 0..=0o7777 {
        let f = S_IFREG | perm;
        assert_eq!(file(&f.to_string()), Some(f), "{f:o}");
        let d = S_IFDIR | perm;
        assert_eq!(dir(&d.to_string()), Some(d), "{d:o}");
        let l = S_IFLNK | perm;
        assert_eq!(file(&l.to_string()), Some(l), "{l:o}");
        // And every one rclone and the mount write.
        assert_eq!(file(&format!("{f:o}")), Some(f));
        assert_eq!(dir(&format!("{d:o}")), Some(d));
        assert_eq!(file(&format_mode(f)), Some(f));
        assert_eq!(dir(&format_mode(d)), Some(d));
    }
    // By hand.
    assert_eq!(file("644"), Some(0o644));
    assert_eq!(file("0644"), Some(0o644));
    assert_eq!(file("0755"), Some(0o755));
    assert_eq!(file("448"), Some(0o700), "decimal without a type");
    assert_eq!(dir("493"), Some(0o755));
    for bad in [
        "",
        "rw-r--r--",
        "-1",
        "0x1a4",
        "777777",
        "99999999999",
        "0999",
        "1234567890123",
    ] {
        assert_eq!(file(bad), None, "{bad}");
    }
}

#[test]
fn restricted_modes_lose_setid_bits_and_device_types() {
    let mut m = meta(&[("mode", "104755"), ("uid", "0")]);
    let mut p = take(&mut m, "su", 5).unwrap();
    assert!(restrict(&mut p));
    assert_eq!((p.mode, p.uid), (0o100755, 0));
    for (given, want) in [("20666", 0o100666), ("60660", 0o100660), ("2755", 0o100755)] {
        let mut p = take(&mut meta(&[("mode", given)]), "d", 5).unwrap();
        assert!(restrict(&mut p), "{given}");
        assert_eq!(p.mode, want, "{given}");
    }
    for ok in ["100644", "120777", "10644", "140755", "0100644"] {
        let mut p = take(&mut meta(&[("mode", ok)]), "x", 5).unwrap();
        let before = p.mode;
        assert!(!restrict(&mut p), "{ok}");
        assert_eq!(p.mode, before);
    }
}

#[test]
fn take_removes_what_it_uses_and_defaults_the_rest() {
    let mut m = meta(&[
        ("mode", "100600"),
        ("mtime", "1700000000.25"),
        ("color", "blue"),
    ]);
    let p = take(&mut m, "a/b.txt", 5).unwrap();
    assert_eq!(m, meta(&[("color", "blue")]));
    assert_eq!(p.mode, 0o100600);
    assert_eq!((p.uid, p.gid), (0, 0));
    assert_eq!(p.mtime_ns, 1_700_000_000_250_000_000);
    assert_eq!(p.atime_ns, p.mtime_ns);
    assert_eq!(p.ctime_ns, 5);
    // Bad values stay as they are; nothing valid: no POSIX attributes.
    let mut m = meta(&[("mode", "rwx"), ("uid", "-3")]);
    assert!(take(&mut m, "k", 5).is_none());
    assert_eq!(m.len(), 2);
    // The type follows the key.
    let mut m = meta(&[("mode", "100700")]);
    assert_eq!(take(&mut m, "d/", 5).unwrap().mode, 0o040700);
    let mut m = meta(&[("mode", "040700")]);
    assert_eq!(take(&mut m, "f", 5).unwrap().mode, 0o100700);
    let mut m = meta(&[("mode", "120777")]);
    assert_eq!(take(&mut m, "l", 5).unwrap().mode, 0o120777);
    let mut m = meta(&[("uid", "1000")]);
    assert_eq!(take(&mut m, "f", 5).unwrap().mode, 0o100644);
    let mut m = meta(&[("mode", "20666"), ("rdev", "103")]);
    assert_eq!(take(&mut m, "null", 5).unwrap().mode, 0o020666);
    assert_eq!(m, meta(&[("rdev", "103")]));
    assert_eq!(rdev(&m), 0x103);
    assert_eq!(format_rdev(0x103), "103");
}

#[test]
fn s3cmd_attrs_are_read_and_kept_current() {
    let s3cmd = "atime:1700000001/ctime:1700000002/gid:7/gname:lp/md5:x/mode:33216/\
                 mtime:1700000003/uid:8/uname:mail";
    let mut m = meta(&[("s3cmd-attrs", s3cmd)]);
    let mut p = take(&mut m, "f", 5).unwrap();
    assert_eq!(m.len(), 1, "s3cmd's record stays");
    assert_eq!((p.mode, p.uid, p.gid), (0o100700, 8, 7));
    assert_eq!(
        (p.atime_ns, p.ctime_ns, p.mtime_ns),
        (
            1_700_000_001 * 1_000_000_000,
            1_700_000_002 * 1_000_000_000,
            1_700_000_003 * 1_000_000_000
        )
    );
    let mut m2 = meta(&[("s3cmd-attrs", "md5:x/uname:root")]);
    assert!(take(&mut m2, "f", 5).is_none());
    // A chmod on the mount shows in s3cmd's record too; its other fields stay.
    p.apply(
        &Change {
            perm: Some(0o640),
            ..Default::default()
        },
        1_800_000_000_700_000_000,
    );
    let shown = shown(&m, Some(&p));
    assert_eq!(
        shown["s3cmd-attrs"],
        "atime:1700000001/ctime:1800000000/gid:7/gname:lp/md5:x/mode:33184/\
         mtime:1700000003/uid:8/uname:mail"
    );
    assert_eq!(shown["mode"], "0100640");
    assert_eq!(shown["ctime"], "1800000000.700000000");
    // An object made elsewhere gets a record s3cmd reads.
    let p = PosixAttrs::new(S_IFREG | 0o600, 1000, 100, 1_700_000_000_999_000_000);
    let shown = super::shown(&BTreeMap::new(), Some(&p));
    assert_eq!(
        shown["s3cmd-attrs"],
        "atime:1700000000/ctime:1700000000/gid:100/mode:33152/mtime:1700000000/uid:1000"
    );
    // New contents (written on the mount): s3cmd's md5 of the old ones goes, the rest stays.
    let mut m3 = meta(&[("s3cmd-attrs", "gid:7/md5:abc/mode:33216/uid:8")]);
    contents_changed(&mut m3);
    assert_eq!(m3["s3cmd-attrs"], "gid:7/mode:33216/uid:8");
    // And what is shown is taken back unchanged.
    let mut again = shown.clone();
    assert_eq!(take(&mut again, "f", 5), Some(p));
}

#[test]
fn a_change_moves_ctime_only() {
    let mut p = PosixAttrs::default_for("k", 100);
    assert_eq!(p.mode, 0o100644);
    assert_eq!(
        PosixAttrs::default_for("d/", 100).kind(),
        FileKind::Directory
    );
    p.apply(
        &Change {
            perm: Some(0o4700),
            uid: Some(5),
            ..Default::default()
        },
        200,
    );
    assert_eq!(p.mode, 0o104700);
    assert_eq!((p.uid, p.gid), (5, 0));
    assert_eq!((p.mtime_ns, p.atime_ns, p.ctime_ns), (100, 100, 200));
    assert_eq!(p.kind(), FileKind::Regular);
    assert_eq!(p.perm(), 0o4700);
    assert!(Change::default().is_empty());
}

#[test]
fn killing_set_id_bits_follows_linux() {
    let kill = |mode: u32| {
        let mut p = PosixAttrs::new(mode, 0, 0, 1);
        p.apply(
            &Change {
                kill_setid: true,
                ..Default::default()
            },
            2,
        );
        p.mode
    };
    assert_eq!(kill(S_IFREG | 0o4755), S_IFREG | 0o755);
    assert_eq!(kill(S_IFREG | 0o6755), S_IFREG | 0o755);
    // Set-group-ID without group execute (mandatory locking) stays.
    assert_eq!(kill(S_IFREG | 0o6745), S_IFREG | 0o2745);
    assert_eq!(kill(S_IFDIR | 0o2775), S_IFDIR | 0o2775);
    assert_eq!(kill(S_IFREG | 0o1777), S_IFREG | 0o1777);
    assert!(!Change {
        kill_setid: true,
        ..Default::default()
    }
    .is_empty());
}

#[test]
fn xattrs_live_under_lowercased_names() {
    assert_eq!(xattr_key("user.Comment"), "xattr-user.comment");
}
