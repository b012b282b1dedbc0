//! The engine's POSIX model: attributes from user metadata (rclone's octal, s3fs's decimal, s3cmd's attrs), and
//! the restriction of what S3 clients may set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: (Vec<(String, String)>, String, i64)| {
    let (pairs, key, now) = data;
    let mut meta: BTreeMap<String, String> = pairs.into_iter().collect();
    let before = meta.clone();
    if let Some(mut p) = engine::posix::take(&mut meta, &key, now) {
        // What is taken out was there.
        for k in before.keys() {
            assert!(
                meta.contains_key(k)
                    || ["mode", "uid", "gid", "mtime", "atime", "ctime"].contains(&k.as_str())
            );
        }
        engine::posix::restrict(&mut p);
        assert_eq!(p.mode & 0o6000, 0);
        assert!(!matches!(p.mode & 0o170000, 0o020000 | 0o060000));
        let mut shown = BTreeMap::new();
        engine::posix::show(&p, &mut shown);
        // What is shown parses back to the same attributes.
        let mut again = shown.clone();
        let q = engine::posix::take(&mut again, &key, now).expect("shown attributes parse");
        assert_eq!(q.mode, p.mode, "{shown:?}");
        assert_eq!((q.uid, q.gid), (p.uid, p.gid));
    }
});
