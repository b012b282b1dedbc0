//! POSIX attributes (what the mount shows: type and mode, owner, times) as S3 user metadata,
//! under the names rclone and s3fs use: `mode` (octal with the file type, as rclone writes it:
//! `100644`; s3fs's decimal `33188` is read too), `uid`, `gid` (decimal), `mtime`, `atime`,
//! `ctime` (seconds since the epoch with up to nine decimals, as both write `mtime`; RFC 3339, as
//! rclone writes `atime`, is read too). s3cmd's own `s3cmd-attrs` record is read when none of
//! these is given.
//!
//! An object that has POSIX attributes shows them in HEAD and GET as `x-amz-meta-*`; a put (or a
//! copy that replaces metadata) that carries any of these keys with a valid value sets them, so
//! `rclone copy --metadata` to S3 and back, or from S3 onto the mount, keeps modes, owners and
//! times. Values that do not parse stay ordinary user metadata.

use std::collections::BTreeMap;

use engine::{ObjectMeta, PosixAttrs};

// The `st_mode` file types (the same on every Unix).
const IFMT: u32 = 0o170000;
const IFREG: u32 = 0o100000;
const IFDIR: u32 = 0o040000;
const IFLNK: u32 = 0o120000;
const IFIFO: u32 = 0o010000;
const IFCHR: u32 = 0o020000;
const IFBLK: u32 = 0o060000;
const IFSOCK: u32 = 0o140000;

/// The user-metadata names of the POSIX attributes, in the order `take` reads them.
const KEYS: [&str; 6] = ["mode", "uid", "gid", "mtime", "atime", "ctime"];

/// The user metadata an object shows over S3: what was put with it, and its POSIX attributes
/// when it has any (these win over put keys of the same names).
pub fn shown(m: &ObjectMeta) -> BTreeMap<String, String> {
    let mut out = m.attrs.user_metadata.clone();
    if let Some(p) = &m.attrs.posix {
        show(p, &mut out);
    }
    out
}

/// Writes `p` into user metadata under the six POSIX names.
pub fn show(p: &PosixAttrs, out: &mut BTreeMap<String, String>) {
    out.insert("mode".into(), format!("{:o}", p.mode));
    out.insert("uid".into(), p.uid.to_string());
    out.insert("gid".into(), p.gid.to_string());
    out.insert("mtime".into(), format_time(p.mtime_ns));
    out.insert("atime".into(), format_time(p.atime_ns));
    out.insert("ctime".into(), format_time(p.ctime_ns));
}

/// Takes the POSIX attributes out of the user metadata of a put to `key` (`None` when no key
/// holds a valid value). What is missing gets the defaults of an object put over S3: mode
/// `0644` (`0755` for a `dir/` marker), root, times `now_ns`. The file type follows the key: a
/// `dir/` marker is a directory; any other object a regular file, or what the mode says when
/// it is a symlink (its body is the target, as on the mount), FIFO, socket or device node
/// (whose number is user metadata `rdev`, hexadecimal, as rclone writes it).
pub fn take(meta: &mut BTreeMap<String, String>, key: &str, now_ns: i64) -> Option<PosixAttrs> {
    let mode = meta.get("mode").and_then(|v| parse_mode(v));
    let uid = meta.get("uid").and_then(|v| v.parse::<u32>().ok());
    let gid = meta.get("gid").and_then(|v| v.parse::<u32>().ok());
    let mtime = meta.get("mtime").and_then(|v| parse_time(v));
    let atime = meta.get("atime").and_then(|v| parse_time(v));
    let ctime = meta.get("ctime").and_then(|v| parse_time(v));
    let found = [mode, uid, gid].map(|v| v.is_some());
    let found = found
        .into_iter()
        .chain([mtime, atime, ctime].map(|v| v.is_some()));
    let mut any = false;
    for (name, ok) in KEYS.into_iter().zip(found) {
        if ok {
            meta.remove(name);
            any = true;
        }
    }
    if !any {
        return from_s3cmd(meta, key, now_ns);
    }
    let dir = key.ends_with('/');
    let mode = match mode {
        _ if dir => IFDIR | mode.unwrap_or(0o755) & 0o7777,
        Some(m) if matches!(m & IFMT, IFLNK | IFIFO | IFSOCK | IFCHR | IFBLK) => m,
        Some(m) => IFREG | m & 0o7777,
        None => IFREG | 0o644,
    };
    let mtime_ns = mtime.unwrap_or(now_ns);
    Some(PosixAttrs {
        mode,
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
        mtime_ns,
        atime_ns: atime.unwrap_or(mtime_ns),
        ctime_ns: ctime.unwrap_or(now_ns),
    })
}

/// Takes away what an S3 client is not trusted to set (see `docs/semantics.md`, "Trust"):
/// set-user-ID and set-group-ID bits are cleared, and a device node becomes an empty regular
/// file. Anyone with S3 write access could otherwise plant a set-uid binary or a device node
/// that `cp -a` or `rsync -a` as root carries out of the (nosuid, nodev) mount onto a
/// filesystem where they work. Returns whether anything was taken away.
pub fn restrict(p: &mut PosixAttrs) -> bool {
    let before = p.mode;
    if matches!(p.mode & IFMT, IFCHR | IFBLK) {
        p.mode = IFREG | (p.mode & 0o7777);
    }
    p.mode &= !0o6000;
    p.mode != before
}

/// POSIX attributes from s3cmd's `s3cmd-attrs` (`--preserve`, its default:
/// `atime:…/ctime:…/gid:…/mode:33188/mtime:…/uid:…/…`, decimal mode, whole seconds), which is
/// left in place for s3cmd to read back.
fn from_s3cmd(meta: &BTreeMap<String, String>, key: &str, now_ns: i64) -> Option<PosixAttrs> {
    let attrs = meta.get("s3cmd-attrs")?;
    let mut m: BTreeMap<String, String> = attrs
        .split('/')
        .filter_map(|f| f.split_once(':'))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(mode) = m.get_mut("mode") {
        // Always decimal here: made octal for `take`.
        *mode = format!("{:o}", mode.parse::<u32>().ok()?);
    }
    if m.is_empty() {
        return None;
    }
    take(&mut m, key, now_ns)
}

/// `st_mode` from octal (`100644`, `0644`) or, when that gives no valid file type but decimal
/// does, from decimal (s3fs: `33188`).
fn parse_mode(v: &str) -> Option<u32> {
    let valid = |m: u32| {
        m <= 0o177777
            && matches!(
                m & IFMT,
                0 | IFREG | IFDIR | IFLNK | IFIFO | IFCHR | IFBLK | IFSOCK
            )
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match u32::from_str_radix(v, 8).ok().filter(|m| valid(*m)) {
        Some(m) => Some(m),
        None => v.parse::<u32>().ok().filter(|m| valid(*m) && m & IFMT != 0),
    }
}

/// Nanoseconds since the epoch from `secs[.fraction]` (up to nine decimals used) or RFC 3339.
fn parse_time(v: &str) -> Option<i64> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !secs.is_empty() && all_digits(secs) && all_digits(frac) {
        let s: i64 = secs.parse().ok()?;
        let mut nanos: i64 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
        }
        let t = s.checked_mul(1_000_000_000)?.checked_add(nanos)?;
        return Some(if neg { -t } else { t });
    }
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// `secs.fraction` without trailing zeros (`1701234567.5`, `1701234567`).
fn format_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    let (s, n) = (a / 1_000_000_000, a % 1_000_000_000);
    if n == 0 {
        return format!("{sign}{s}");
    }
    let frac = format!("{n:09}");
    format!("{sign}{s}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(format_time(1_701_234_567_500_000_000), "1701234567.5");
        assert_eq!(format_time(-1_500_000_000), "-1.5");
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
        for ok in ["100644", "120777", "10644", "140755", "41777"] {
            let mut p = take(&mut meta(&[("mode", ok)]), "x", 5).unwrap();
            let before = p.mode;
            assert!(!restrict(&mut p), "{ok}");
            assert_eq!(p.mode, before);
        }
    }

    #[test]
    fn modes_octal_or_s3fs_decimal() {
        assert_eq!(parse_mode("100644"), Some(0o100644));
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("120777"), Some(0o120777));
        assert_eq!(parse_mode("33188"), Some(0o100644), "s3fs writes decimal");
        assert_eq!(parse_mode("16877"), Some(0o040755));
        for bad in ["", "rw-r--r--", "-1", "0x1a4", "777777", "99999999999"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
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
        // s3cmd's own record, when nothing else is given (and kept for s3cmd).
        let s3cmd = "atime:1700000001/ctime:1700000002/gid:7/gname:lp/md5:x/mode:33216/\
                     mtime:1700000003/uid:8/uname:mail";
        let mut m = meta(&[("s3cmd-attrs", s3cmd)]);
        let p = take(&mut m, "f", 5).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((p.mode, p.uid, p.gid), (0o100700, 8, 7));
        assert_eq!(
            (p.atime_ns, p.ctime_ns, p.mtime_ns),
            (
                1_700_000_001 * 1_000_000_000,
                1_700_000_002 * 1_000_000_000,
                1_700_000_003 * 1_000_000_000
            )
        );
        let mut m = meta(&[("s3cmd-attrs", "md5:x/uname:root")]);
        assert!(take(&mut m, "f", 5).is_none());
        let mut m = meta(&[("mode", "20666"), ("rdev", "103")]);
        assert_eq!(take(&mut m, "null", 5).unwrap().mode, 0o020666);
        assert_eq!(m, meta(&[("rdev", "103")]));
    }
}
