//! The filesystem's rules, tested on a real engine in a temporary directory without a mount
//! (no root, no /dev/fuse): what a path resolves to, what a directory lists, what `stat`
//! shows, what a chmod changes. The FUSE tests (`mountd/tests/`) drive the same code through
//! the kernel.

use super::ops::Caller;
use super::*;

/// A filesystem over a fresh engine, and the runtime its calls block on.
struct Fixture {
    fs: PredaFs,
    engine: Engine,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine::EngineConfig::new(dir.path().join("data"));
    cfg.chunk_size = 64 * 1024;
    cfg.durability = engine::Durability::None;
    let engine = Engine::open(cfg).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fs = PredaFs::new(engine.clone(), rt.handle().clone(), Options::default()).unwrap();
    rt.block_on(engine.create_bucket("bkt")).unwrap();
    Fixture {
        fs,
        engine,
        rt,
        _dir: dir,
    }
}

impl Fixture {
    /// Puts `key` over S3 (no POSIX attributes unless given as user metadata).
    fn put(&self, key: &str, body: &[u8], meta: &[(&str, &str)]) -> ObjectMeta {
        let mut attrs = ObjectAttrs::default();
        for (k, v) in meta {
            attrs.user_metadata.insert(k.to_string(), v.to_string());
        }
        attrs.posix = posix::take(&mut attrs.user_metadata, key, engine::meta::now_ns());
        self.rt
            .block_on(self.engine.put_object(
                "bkt",
                key,
                body,
                PutOptions {
                    attrs,
                    ..Default::default()
                },
            ))
            .unwrap()
    }

    fn stat(&self, path: &str) -> Result<FileAttr, Errno> {
        let node = self.fs.resolve(path)?;
        Ok(self.fs.attr_of(self.fs.ino(path), &node))
    }

    fn names(&self, path: &str) -> Vec<(String, FileType)> {
        let mut v: Vec<_> = self
            .fs
            .list_dir(path)
            .unwrap()
            .into_iter()
            .map(|(_, k, n)| (n, k))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn paths_resolve_to_buckets_files_marker_and_implicit_directories() {
    let f = fixture();
    f.put("a/b/file", b"x", &[]);
    f.put("m/", b"", &[("mode", "040700")]);
    assert!(matches!(f.fs.resolve(""), Ok(Node::Root)));
    assert!(matches!(f.fs.resolve("bkt"), Ok(Node::Bucket(_))));
    assert!(matches!(f.fs.resolve("bkt/a/b/file"), Ok(Node::File(_))));
    assert!(matches!(f.fs.resolve("bkt/a"), Ok(Node::Dir(None))));
    assert!(matches!(f.fs.resolve("bkt/a/b"), Ok(Node::Dir(None))));
    assert!(matches!(f.fs.resolve("bkt/m"), Ok(Node::Dir(Some(_)))));
    for missing in [
        "bkt/nothing",
        "bkt/a/b/file/under",
        "nobucket",
        "bkt/a/b/fil",
    ] {
        assert_eq!(
            f.fs.resolve(missing).err(),
            Some(Errno::ENOENT),
            "{missing}"
        );
    }
}

#[test]
fn directories_list_files_and_subdirectories_once_and_hide_what_no_name_can_show() {
    let f = fixture();
    for k in ["d/one", "d/two/x", "d/two/", "d/three/", "d/link"] {
        f.put(k, b"", &[]);
    }
    f.put("d/link", b"one", &[("mode", "0120777")]);
    // Keys no file name can show: hidden, the directory still lists the rest.
    for k in ["d/./x", "d/../y", "d//z", &format!("d/{}", "n".repeat(256))] {
        f.put(k, b"", &[]);
    }
    assert_eq!(
        f.names("bkt/d"),
        vec![
            ("link".to_string(), FileType::Symlink),
            ("one".to_string(), FileType::RegularFile),
            ("three".to_string(), FileType::Directory),
            ("two".to_string(), FileType::Directory),
        ]
    );
    assert_eq!(f.names(""), vec![("bkt".to_string(), FileType::Directory)]);
}

#[test]
fn stat_shows_defaults_for_s3_objects_and_the_posix_model_for_the_rest() {
    let f = fixture();
    let before = SystemTime::now();
    let m = f.put("plain", b"12345", &[]);
    let a = f.stat("bkt/plain").unwrap();
    assert_eq!(
        (a.kind, a.perm, a.uid, a.gid, a.size),
        (FileType::RegularFile, 0o644, 0, 0, 5)
    );
    assert_eq!(a.mtime, attr::to_time(m.last_modified_ns));
    f.put(
        "owned",
        b"",
        &[
            ("mode", "33152"),
            ("uid", "1000"),
            ("mtime", "1500000000.5"),
        ],
    );
    let a = f.stat("bkt/owned").unwrap();
    assert_eq!((a.perm, a.uid), (0o600, 1000));
    assert_eq!(a.mtime, epoch_plus(1_500_000_000, 500_000_000));
    // A marker without POSIX attributes is a 0755 directory; one with them shows them.
    f.put("plaindir/", b"", &[]);
    let a = f.stat("bkt/plaindir").unwrap();
    assert_eq!((a.kind, a.perm), (FileType::Directory, 0o755));
    f.put("private/", b"", &[("mode", "16832")]);
    assert_eq!(f.stat("bkt/private").unwrap().perm, 0o700);
    // The root and a directory no marker stands for show the mount's start, not 1970.
    f.put("implicit/k", b"", &[]);
    for p in ["", "bkt/implicit"] {
        let a = f.stat(p).unwrap();
        assert_eq!(a.kind, FileType::Directory);
        assert!(secs(a.mtime) + 5 >= secs(before), "{p}: {:?}", a.mtime);
    }
}

fn epoch_plus(secs: u64, nanos: u32) -> SystemTime {
    std::time::UNIX_EPOCH + Duration::new(secs, nanos)
}

#[test]
fn chmod_and_chown_change_ctime_only() {
    let f = fixture();
    let m = f.put("k", b"data", &[]);
    std::thread::sleep(Duration::from_millis(5));
    let after =
        f.fs.set_posix(
            "bkt/k",
            Change {
                perm: Some(0o600),
                uid: Some(7),
                ..Default::default()
            },
        )
        .unwrap();
    let p = after.attrs.posix.unwrap();
    assert_eq!((p.mode, p.uid), (0o100600, 7));
    assert_eq!(
        (p.mtime_ns, p.atime_ns),
        (m.last_modified_ns, m.last_modified_ns)
    );
    assert!(p.ctime_ns > m.last_modified_ns);
    assert_eq!(after.last_modified_ns, m.last_modified_ns, "data untouched");
    assert_eq!(
        f.fs.set_posix("bkt/none", Change::default()).err(),
        Some(Errno::ENOENT)
    );
}

#[test]
fn names_longer_than_255_bytes_are_refused() {
    assert_eq!(
        name_str(OsStr::new(&"n".repeat(256))).err(),
        Some(Errno::ENAMETOOLONG)
    );
    assert_eq!(name_str(OsStr::new("ok")).unwrap(), "ok");
}

const ME: Caller = Caller {
    uid: 1000,
    gid: 100,
};

/// The entry `name` in `parent`, made by `ME`.
fn at(parent: INodeNo, name: &OsStr) -> NewEntry<'_> {
    NewEntry {
        caller: ME,
        parent,
        name,
    }
}

#[test]
fn mkdir_rmdir_and_unlink_follow_posix() {
    let f = fixture();
    let bkt = INodeNo(f.fs.ino("bkt"));
    let name = |n: &str| OsStr::new(n).to_os_string();
    // mkdir: a marker owned by the caller with the mode asked (less the umask, by the caller).
    let a = f.fs.make_dir(at(bkt, &name("d")), 0o750).unwrap();
    assert_eq!(
        (a.kind, a.perm, a.uid, a.gid),
        (FileType::Directory, 0o750, 1000, 100)
    );
    assert_eq!(
        f.fs.make_dir(at(bkt, &name("d")), 0o755).err(),
        Some(Errno::EEXIST)
    );
    // At the root, mkdir makes a bucket.
    let root = INodeNo(f.fs.ino(""));
    f.fs.make_dir(at(root, &name("newbkt")), 0o755).unwrap();
    assert!(f.engine.head_bucket("newbkt").is_ok());
    // A directory with a file in it is not empty; a file is not a directory, nor the reverse.
    f.put("d/file", b"x", &[]);
    let d = INodeNo(f.fs.ino("bkt/d"));
    assert_eq!(
        f.fs.remove_dir(bkt, &name("d")).err(),
        Some(Errno::ENOTEMPTY)
    );
    assert_eq!(
        f.fs.remove_dir(d, &name("file")).err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(f.fs.remove_file(bkt, &name("d")).err(), Some(Errno::EISDIR));
    assert_eq!(
        f.fs.remove_file(d, &name("nothing")).err(),
        Some(Errno::ENOENT)
    );
    // Keys no file name can show keep a directory from being removed.
    f.put("d/./hidden", b"", &[]);
    f.fs.remove_file(d, &name("file")).unwrap();
    assert_eq!(
        f.fs.remove_dir(bkt, &name("d")).err(),
        Some(Errno::ENOTEMPTY)
    );
    f.rt.block_on(f.engine.delete_object("bkt", "d/./hidden"))
        .unwrap();
    f.fs.remove_dir(bkt, &name("d")).unwrap();
    assert_eq!(f.fs.resolve("bkt/d").err(), Some(Errno::ENOENT));
    // A bucket with objects cannot go; an empty one can.
    f.put("other", b"y", &[]);
    assert_eq!(
        f.fs.remove_dir(root, &name("bkt")).err(),
        Some(Errno::ENOTEMPTY)
    );
    f.fs.remove_dir(root, &name("newbkt")).unwrap();
}

#[test]
fn a_read_only_mount_changes_nothing() {
    let f = fixture();
    let fs = PredaFs::new(
        f.engine.clone(),
        f.rt.handle().clone(),
        Options {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    f.put("k", b"x", &[]);
    let bkt = INodeNo(fs.ino("bkt"));
    let n = OsStr::new("k");
    assert_eq!(
        fs.make_dir(at(bkt, OsStr::new("d")), 0o755).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(fs.remove_file(bkt, n).err(), Some(Errno::EROFS));
    assert!(f.engine.head_object("bkt", "k").is_ok());
}

#[test]
fn setattr_changes_files_and_directories_without_and_with_markers() {
    let f = fixture();
    f.put("dir/file", b"0123456789", &[]);
    // chmod of a directory that exists only as a prefix makes its marker.
    let dir = INodeNo(f.fs.ino("bkt/dir"));
    let chmod = |perm| Change {
        perm: Some(perm),
        ..Default::default()
    };
    let a = f.fs.set_attr(dir, chmod(0o700), None).unwrap();
    assert_eq!((a.kind, a.perm), (FileType::Directory, 0o700));
    assert!(f.engine.head_object("bkt", "dir/").is_ok(), "marker made");
    assert_eq!(
        f.fs.set_attr(dir, Change::default(), Some(0)).err(),
        Some(Errno::EISDIR)
    );
    // truncate and chown of a file nobody has open: committed at once.
    let file = INodeNo(f.fs.ino("bkt/dir/file"));
    let a =
        f.fs.set_attr(
            file,
            Change {
                uid: Some(7),
                ..Default::default()
            },
            Some(4),
        )
        .unwrap();
    assert_eq!((a.size, a.uid), (4, 7));
    let m = f.engine.head_object("bkt", "dir/file").unwrap();
    assert_eq!((m.size, m.attrs.posix.unwrap().uid), (4, 7));
    assert_eq!(
        f.fs.set_attr(file, Change::default(), Some(MAX_FILE_SIZE + 1))
            .err(),
        Some(Errno::EFBIG)
    );
}

#[test]
fn rename_moves_files_and_whole_directories_and_refuses_what_posix_refuses() {
    let f = fixture();
    let bkt = INodeNo(f.fs.ino("bkt"));
    let name = |n: &str| OsStr::new(n).to_os_string();
    f.put("a", b"aaa", &[]);
    f.put("b", b"bb", &[]);
    // Onto a free name, then onto an existing file (replaced), then RENAME_NOREPLACE.
    f.fs.rename_entry(bkt, &name("a"), bkt, &name("c"), false)
        .unwrap();
    assert!(f.engine.head_object("bkt", "a").is_err());
    f.fs.rename_entry(bkt, &name("c"), bkt, &name("b"), false)
        .unwrap();
    assert_eq!(f.engine.head_object("bkt", "b").unwrap().size, 3);
    f.put("x", b"", &[]);
    assert_eq!(
        f.fs.rename_entry(bkt, &name("x"), bkt, &name("b"), true)
            .err(),
        Some(Errno::EEXIST)
    );
    // A directory moves with everything under it, its marker included.
    f.put("d/", b"", &[("mode", "040700")]);
    f.put("d/one", b"1", &[]);
    f.put("d/sub/two", b"2", &[]);
    f.fs.rename_entry(bkt, &name("d"), bkt, &name("e"), false)
        .unwrap();
    let keys: Vec<String> =
        f.fs.keys_under("bkt", "", 100)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
    assert_eq!(keys, ["b", "e/", "e/one", "e/sub/two", "x"]);
    assert_eq!(f.stat("bkt/e").unwrap().perm, 0o700);
    // A file onto a directory, a directory onto a file or a non-empty directory: refused.
    f.put("full/k", b"", &[]);
    assert_eq!(
        f.fs.rename_entry(bkt, &name("b"), bkt, &name("e"), false)
            .err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(
        f.fs.rename_entry(bkt, &name("e"), bkt, &name("b"), false)
            .err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        f.fs.rename_entry(bkt, &name("e"), bkt, &name("full"), false)
            .err(),
        Some(Errno::ENOTEMPTY)
    );
    // Buckets keep their names; a missing source is ENOENT.
    let root = INodeNo(f.fs.ino(""));
    assert_eq!(
        f.fs.rename_entry(root, &name("bkt"), root, &name("b2"), false)
            .err(),
        Some(Errno::EPERM)
    );
    assert_eq!(
        f.fs.rename_entry(bkt, &name("nope"), bkt, &name("z"), false)
            .err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(f.engine.head_object("bkt", "e/one").unwrap().size, 1);
}

#[test]
fn create_symlink_and_mknod_make_objects_owned_by_the_caller() {
    let f = fixture();
    let bkt = INodeNo(f.fs.ino("bkt"));
    let name = |n: &str| OsStr::new(n).to_os_string();
    // create: mode less umask, the caller's ids, a content type from the name.
    let (a, _fh) =
        f.fs.create_file(at(bkt, &name("n.txt")), 0o666 & !0o022)
            .unwrap();
    assert_eq!(
        (a.kind, a.perm, a.uid, a.gid, a.size),
        (FileType::RegularFile, 0o644, 1000, 100, 0)
    );
    let m = f.engine.head_object("bkt", "n.txt").unwrap();
    assert_eq!(m.attrs.content_type.as_deref(), Some("text/plain"));
    // symlink: the target is the body; readlink gives it back; a file is not a link.
    let l = f.fs.make_symlink(at(bkt, &name("l")), b"n.txt").unwrap();
    assert_eq!((l.kind, l.size), (FileType::Symlink, 5));
    assert_eq!(f.fs.read_link(INodeNo(l.ino.0)).unwrap(), b"n.txt");
    assert_eq!(f.fs.read_link(INodeNo(a.ino.0)).err(), Some(Errno::EINVAL));
    assert_eq!(
        f.fs.make_symlink(at(bkt, &name("l")), b"x").err(),
        Some(Errno::EEXIST)
    );
    // mknod: FIFOs and device nodes (their number kept), nothing of an unknown type.
    let p =
        f.fs.make_node(at(bkt, &name("p")), libc::S_IFIFO | 0o640, 0)
            .unwrap();
    assert_eq!((p.kind, p.perm), (FileType::NamedPipe, 0o640));
    let dev =
        f.fs.make_node(at(bkt, &name("dev")), libc::S_IFCHR | 0o600, 0x0103)
            .unwrap();
    assert_eq!((dev.kind, dev.rdev), (FileType::CharDevice, 0x0103));
    assert_eq!(
        f.fs.make_node(at(bkt, &name("odd")), 0o170000 | 0o600, 0)
            .err(),
        Some(Errno::EINVAL)
    );
    assert!(f.engine.head_object("bkt", "odd").is_err());
}

#[test]
fn extended_attributes_round_trip_and_follow_the_flags() {
    let f = fixture();
    f.put("k", b"data", &[]);
    let ino = INodeNo(f.fs.ino("bkt/k"));
    let n = |s: &str| OsStr::new(s).to_os_string();
    let value = b"\x00binary\xffvalue";
    f.fs.set_xattr(ino, &n("user.tag"), value, 0).unwrap();
    assert_eq!(f.fs.get_xattr(ino, &n("user.tag")).unwrap(), value);
    assert_eq!(f.fs.list_xattr(ino).unwrap(), b"user.tag\0");
    // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one.
    assert_eq!(
        f.fs.set_xattr(ino, &n("user.tag"), b"v", libc::XATTR_CREATE)
            .err(),
        Some(Errno::EEXIST)
    );
    assert_eq!(
        f.fs.set_xattr(ino, &n("user.new"), b"v", libc::XATTR_REPLACE)
            .err(),
        Some(Errno::NO_XATTR)
    );
    // Only the user namespace is stored.
    assert_eq!(
        f.fs.set_xattr(ino, &n("trusted.x"), b"v", 0).err(),
        Some(Errno::ENOTSUP)
    );
    // The data is untouched by attribute changes.
    assert_eq!(f.engine.head_object("bkt", "k").unwrap().size, 4);
    f.fs.remove_xattr(ino, &n("user.tag")).unwrap();
    assert_eq!(
        f.fs.get_xattr(ino, &n("user.tag")).err(),
        Some(Errno::NO_XATTR)
    );
    assert_eq!(
        f.fs.remove_xattr(ino, &n("user.tag")).err(),
        Some(Errno::NO_XATTR)
    );
    assert!(f.fs.list_xattr(ino).unwrap().is_empty());
}

impl Fixture {
    /// The bytes of object `key` as S3 serves them.
    fn object(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let g = self.engine.get_object("bkt", key, None).await.unwrap();
            let mut body = g.body;
            let mut out = Vec::new();
            while let Some(piece) = body.next().await {
                out.extend_from_slice(&piece.unwrap());
            }
            out
        })
    }
}

#[test]
fn files_written_through_handles_read_back_and_are_committed_by_the_last_close() {
    let f = fixture();
    let bkt = INodeNo(f.fs.ino("bkt"));
    let (a, fh) =
        f.fs.create_file(at(bkt, OsStr::new("w.bin")), 0o644)
            .unwrap();
    assert_eq!(f.fs.write_handle(fh, 0, b"hello ", false).unwrap(), 6);
    // O_APPEND writes at the end, whatever the offset asked.
    f.fs.write_handle(fh, 0, b"world", true).unwrap();
    assert_eq!(&f.fs.read_handle(fh, 0, 100).unwrap()[..], b"hello world");
    assert_eq!(&f.fs.read_handle(fh, 6, 3).unwrap()[..], b"wor");
    // S3 sees the empty file create made until the writer closes.
    assert!(f.object("w.bin").is_empty());
    f.fs.release_handle(fh).unwrap();
    assert_eq!(f.object("w.bin"), b"hello world");
    // A reader reads the object; it cannot write.
    let ino = INodeNo(a.ino.0);
    let (r, _) = f.fs.open_handle(ino, libc::O_RDONLY).unwrap();
    assert_eq!(&f.fs.read_handle(r, 0, 5).unwrap()[..], b"hello");
    assert_eq!(
        f.fs.write_handle(r, 0, b"x", false).err(),
        Some(Errno::EBADF)
    );
    f.fs.release_handle(r).unwrap();
    // O_TRUNC starts from empty; the old contents stay until the new ones are committed.
    let (w, _) =
        f.fs.open_handle(ino, libc::O_WRONLY | libc::O_TRUNC)
            .unwrap();
    f.fs.write_handle(w, 0, b"new", false).unwrap();
    assert_eq!(f.object("w.bin"), b"hello world");
    f.fs.release_handle(w).unwrap();
    assert_eq!(f.object("w.bin"), b"new");
    // Files and directories are not each other.
    assert_eq!(
        f.fs.open_handle(bkt, libc::O_RDONLY).err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(f.fs.open_dir(ino).err(), Some(Errno::ENOTDIR));
}

#[test]
fn punched_holes_are_found_with_seek_data_and_seek_hole() {
    const K64: u64 = 64 * 1024;
    let f = fixture();
    let bkt = INodeNo(f.fs.ino("bkt"));
    let (a, fh) =
        f.fs.create_file(at(bkt, OsStr::new("sparse")), 0o644)
            .unwrap();
    f.fs.write_handle(fh, 0, &vec![7u8; 4 * K64 as usize], false)
        .unwrap();
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    f.fs.allocate(fh, K64, 2 * K64, punch).unwrap();
    assert_eq!(
        f.fs.allocate(fh, 0, K64, libc::FALLOC_FL_COLLAPSE_RANGE)
            .err(),
        Some(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        f.fs.allocate(fh, u64::MAX - 1, 10, 0).err(),
        Some(Errno::EFBIG)
    );
    f.fs.release_handle(fh).unwrap();
    let body = f.object("sparse");
    assert_eq!(body.len() as u64, 4 * K64);
    assert!(body[K64 as usize..3 * K64 as usize].iter().all(|b| *b == 0));
    assert!(body[3 * K64 as usize..].iter().all(|b| *b == 7));
    // The committed object: data, a 128 KiB hole, data; the end of the file is a hole too.
    let ino = INodeNo(a.ino.0);
    let (r, _) = f.fs.open_handle(ino, libc::O_RDONLY).unwrap();
    assert_eq!(f.fs.seek(ino, r, 0, libc::SEEK_HOLE), Ok(K64));
    assert_eq!(f.fs.seek(ino, r, K64 as i64, libc::SEEK_DATA), Ok(3 * K64));
    assert_eq!(
        f.fs.seek(ino, r, 3 * K64 as i64, libc::SEEK_HOLE),
        Ok(4 * K64)
    );
    assert_eq!(
        f.fs.seek(ino, r, 4 * K64 as i64, libc::SEEK_DATA).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        f.fs.seek(ino, r, -1, libc::SEEK_DATA).err(),
        Some(Errno::ENXIO)
    );
    assert_eq!(
        f.fs.seek(ino, r, 0, libc::SEEK_END).err(),
        Some(Errno::EINVAL)
    );
    // Allocating grows the file (unless KEEP_SIZE) with zeros.
    let (w, _) = f.fs.open_handle(ino, libc::O_RDWR).unwrap();
    f.fs.allocate(w, 0, 8 * K64, 0).unwrap();
    f.fs.allocate(w, 0, 16 * K64, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    f.fs.release_handle(w).unwrap();
    f.fs.release_handle(r).unwrap();
    assert_eq!(f.object("sparse").len() as u64, 8 * K64);
}

#[test]
fn directory_handles_list_dot_dotdot_and_the_entries_as_they_were_at_opendir() {
    let f = fixture();
    f.put("d/a", b"1", &[]);
    f.put("d/sub/c", b"2", &[]);
    let d = INodeNo(f.fs.ino("bkt/d"));
    let fh = f.fs.open_dir(d).unwrap();
    f.put("d/later", b"3", &[]);
    let entries = f.fs.dir_entries(d, fh).unwrap();
    // `.` and `..` first; the rest in the listing's order (which readdir leaves open).
    let mut names: Vec<(&str, FileType)> =
        entries.iter().map(|(_, k, n)| (n.as_str(), *k)).collect();
    names[2..].sort_by_key(|(n, _)| *n);

    assert_eq!(
        names,
        [
            (".", FileType::Directory),
            ("..", FileType::Directory),
            ("a", FileType::RegularFile),
            ("sub", FileType::Directory),
        ]
    );
    assert_eq!(entries[0].0, d.0);
    assert_eq!(entries[1].0, f.fs.ino("bkt"));
    f.fs.release_dir(fh);
    assert_eq!(f.fs.dir_entries(d, fh).err(), Some(Errno::EBADF));
}

/// In a versioned bucket: a new file is one version, each close of an edit one more, `rm` a
/// delete marker, `mv` a new version and a marker; deleted files and emptied directories are
/// gone from the tree while their versions stay.
#[test]
fn versioned_bucket_gets_one_version_per_close_and_markers_for_rm_and_mv() {
    let f = fixture();
    f.rt.block_on(
        f.engine
            .set_bucket_versioning("bkt", engine::Versioning::Enabled),
    )
    .unwrap();
    let versions = |prefix: &str| -> Vec<(String, bool)> {
        let q = engine::VersionQuery {
            prefix: prefix.into(),
            max_keys: 1000,
            ..Default::default()
        };
        f.engine
            .list_object_versions("bkt", &q)
            .unwrap()
            .versions
            .into_iter()
            .map(|v| (v.meta.key, v.meta.delete_marker))
            .collect()
    };
    let bkt = INodeNo(f.fs.ino("bkt"));
    let (a, fh) = f.fs.create_file(at(bkt, OsStr::new("f")), 0o644).unwrap();
    f.fs.write_handle(fh, 0, b"first", false).unwrap();
    f.fs.write_handle(fh, 5, b" draft", false).unwrap();
    f.fs.release_handle(fh).unwrap();
    assert_eq!(versions("f"), vec![("f".to_string(), false)], "one version");
    assert_eq!(f.object("f"), b"first draft");
    // An edit: many writes, one close, one more version; the old one is still readable.
    let ino = INodeNo(a.ino.0);
    let (w, _) = f.fs.open_handle(ino, libc::O_WRONLY).unwrap();
    for (i, b) in b"FIRST".iter().enumerate() {
        f.fs.write_handle(w, i as u64, &[*b], false).unwrap();
    }
    f.fs.release_handle(w).unwrap();
    assert_eq!(f.object("f"), b"FIRST draft");
    assert_eq!(versions("f").len(), 2);
    // rm: a delete marker on top.
    f.fs.remove_file(bkt, OsStr::new("f")).unwrap();
    assert_eq!(f.stat("bkt/f").err(), Some(Errno::ENOENT));
    assert!(f.names("bkt").iter().all(|(n, _)| n != "f"));
    assert_eq!(
        versions("f"),
        vec![
            ("f".to_string(), true),
            ("f".to_string(), false),
            ("f".to_string(), false)
        ]
    );
    // mv: a new version of the target, a marker on the source.
    f.put("g", b"gee", &[]);
    f.fs.rename_entry(bkt, OsStr::new("g"), bkt, OsStr::new("h"), false)
        .unwrap();
    assert_eq!(f.object("h"), b"gee");
    assert_eq!(versions("g"), vec![("g".into(), true), ("g".into(), false)]);
    assert_eq!(f.stat("bkt/g").err(), Some(Errno::ENOENT));
    // A directory whose only file was deleted is gone from the tree.
    f.put("d/x", b"x", &[]);
    assert!(f.names("bkt").iter().any(|(n, _)| n == "d"));
    f.rt.block_on(f.engine.delete_object("bkt", "d/x")).unwrap();
    assert!(
        f.names("bkt").iter().all(|(n, _)| n != "d"),
        "{:?}",
        f.names("bkt")
    );
    assert_eq!(f.stat("bkt/d").err(), Some(Errno::ENOENT));
    assert!(f.engine.fsck().unwrap().is_clean());
}

/// A filesystem acting as key `which` of `f`'s engine.
fn as_key(f: &Fixture, which: &str) -> PredaFs {
    let id = f.engine.key_info(which).unwrap().id;
    PredaFs::new(
        f.engine.clone(),
        f.rt.handle().clone(),
        Options {
            principal: Some(engine::Principal::Key(id)),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Makes key `name` with `grants` (scope, read, write) on `bkt`.
fn make_key(f: &Fixture, name: &str, grants: &[(&str, bool, bool)]) {
    use engine::access::{Grant, KeyChange, NewKey};
    f.rt.block_on(f.engine.create_key(NewKey {
        name: name.into(),
        ..Default::default()
    }))
    .unwrap();
    for (prefix, read, write) in grants {
        let g = Grant {
            bucket: "bkt".into(),
            prefix: prefix.to_string(),
            read: *read,
            write: *write,
            owner: false,
        };
        f.rt.block_on(f.engine.change_key(name, KeyChange::Allow(g)))
            .unwrap();
    }
}

#[test]
fn a_key_sees_only_its_buckets_and_a_reader_changes_nothing() {
    let f = fixture();
    f.rt.block_on(f.engine.create_bucket("hidden")).unwrap();
    f.put("doc.txt", b"text", &[]);
    make_key(&f, "reader", &[("", true, false)]);
    let fs = as_key(&f, "reader");
    let root = INodeNo(ROOT);
    let tops: Vec<String> = fs.list_dir("").unwrap().into_iter().map(|e| e.2).collect();
    assert_eq!(tops, vec!["bkt".to_string()]);
    assert_eq!(
        fs.look_up(root, OsStr::new("hidden")).err(),
        Some(Errno::ENOENT)
    );
    let bkt = INodeNo(fs.look_up(root, OsStr::new("bkt")).unwrap().ino.0);
    let doc = fs.look_up(bkt, OsStr::new("doc.txt")).unwrap().ino;
    let (fh, _) = fs.open_handle(doc, libc::O_RDONLY).unwrap();
    assert_eq!(&fs.read_handle(fh, 0, 10).unwrap()[..], b"text");
    fs.release_handle(fh).unwrap();
    assert!(fs.open_dir(bkt).is_ok());
    let denied = Some(Errno::EACCES);
    assert_eq!(fs.open_handle(doc, libc::O_WRONLY).err(), denied);
    assert_eq!(fs.open_handle(doc, libc::O_RDWR).err(), denied);
    assert_eq!(fs.remove_file(bkt, OsStr::new("doc.txt")).err(), denied);
    assert_eq!(
        fs.create_file(at(bkt, OsStr::new("new")), 0o644).err(),
        denied
    );
    assert_eq!(fs.make_dir(at(bkt, OsStr::new("d")), 0o755).err(), denied);
    assert_eq!(
        fs.make_dir(at(root, OsStr::new("mine")), 0o755).err(),
        denied
    );
    assert_eq!(
        fs.rename_entry(bkt, OsStr::new("doc.txt"), bkt, OsStr::new("moved"), false)
            .err(),
        denied
    );
    assert_eq!(
        fs.set_xattr(doc, OsStr::new("user.a"), b"v", 0).err(),
        denied
    );
    assert_eq!(
        f.names("bkt"),
        vec![("doc.txt".to_string(), FileType::RegularFile)]
    );
    assert_eq!(
        f.rt.block_on(f.engine.get_object("bkt", "doc.txt", None))
            .unwrap()
            .meta
            .size,
        4
    );
}

#[test]
fn a_write_only_key_creates_under_its_prefix_and_nowhere_else() {
    let f = fixture();
    f.put("dev/old.jpg", b"old", &[]);
    f.put("other/x", b"x", &[]);
    make_key(&f, "camera", &[("dev/", false, true)]);
    let fs = as_key(&f, "camera");
    let root = INodeNo(ROOT);
    let bkt = INodeNo(fs.look_up(root, OsStr::new("bkt")).unwrap().ino.0);
    // It may not list, but may look up the directory it writes into, and create there.
    assert_eq!(fs.open_dir(bkt).err(), Some(Errno::EACCES));
    let dev = INodeNo(fs.look_up(bkt, OsStr::new("dev")).unwrap().ino.0);
    assert_eq!(
        fs.look_up(bkt, OsStr::new("other")).err(),
        Some(Errno::EACCES)
    );
    let (attr, fh) = fs
        .create_file(at(dev, OsStr::new("new.jpg")), 0o644)
        .unwrap();
    fs.write_handle(fh, 0, b"frame", false).unwrap();
    fs.release_handle(fh).unwrap();
    assert_eq!(
        f.rt.block_on(f.engine.get_object("bkt", "dev/new.jpg", None))
            .unwrap()
            .meta
            .size,
        5
    );
    // Reading back is refused; so is anything outside dev/.
    assert_eq!(
        fs.open_handle(attr.ino, libc::O_RDONLY).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        fs.create_file(at(bkt, OsStr::new("top.jpg")), 0o644).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        fs.rename_entry(
            dev,
            OsStr::new("new.jpg"),
            bkt,
            OsStr::new("out.jpg"),
            false
        )
        .err(),
        Some(Errno::EACCES)
    );
    assert!(f.engine.head_object("bkt", "top.jpg").is_err());
    assert!(f.engine.head_object("bkt", "out.jpg").is_err());
}
