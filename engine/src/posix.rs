//! The POSIX model both doors share: what a file on the mount is (type and mode, owner, times,
//! a device number, extended attributes), its defaults, how it changes, and how it is written as
//! S3 user metadata so that rclone, s3fs and s3cmd read it right.
//!
//! ## User metadata
//! - `mode`: `st_mode` with the file type. Written C-style, octal with a leading zero
//!   (`0100644`), which both C's `strtoll(…, 0)` (s3fs) and base-8 parsers (rclone) read right.
//!   Read by [`parse_mode`]; see there for the decimal-or-octal rule.
//! - `uid`, `gid`: decimal.
//! - `mtime`, `atime`, `ctime`: seconds since the epoch, `secs` or `secs.nnnnnnnnn` (nine
//!   digits, as s3fs writes and reads them; rclone reads them as a decimal number). RFC 3339, as
//!   rclone writes `atime`, is read too.
//! - `rdev`: a device node's number, hexadecimal (rclone's form).
//! - `xattr-<name>`: an extended attribute set on the mount (value base64).
//! - `s3cmd-attrs`: s3cmd's own record (`atime:…/ctime:…/gid:…/mode:33188/mtime:…/uid:…`,
//!   decimal mode, whole seconds). Read when none of the names above is given; written (its
//!   POSIX fields kept current) for every object that has POSIX attributes, so that
//!   `s3cmd sync` restores what the mount, s3fs or rclone set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Mask of the file type in `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Symbolic link (the object's body is the target).
pub const S_IFLNK: u32 = 0o120000;
/// Named pipe.
pub const S_IFIFO: u32 = 0o010000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;

/// User-metadata name of the mode.
pub const MODE: &str = "mode";
/// User-metadata name of the owner.
pub const UID: &str = "uid";
/// User-metadata name of the group.
pub const GID: &str = "gid";
/// User-metadata name of the modification time.
pub const MTIME: &str = "mtime";
/// User-metadata name of the access time.
pub const ATIME: &str = "atime";
/// User-metadata name of the status-change time.
pub const CTIME: &str = "ctime";
/// User-metadata name of a device node's number.
pub const RDEV: &str = "rdev";
/// User-metadata name of s3cmd's attribute record.
pub const S3CMD_ATTRS: &str = "s3cmd-attrs";
/// Prefix of the user-metadata names that hold extended attributes.
pub const XATTR_PREFIX: &str = "xattr-";

/// The POSIX names, in the order [`take`] reads them.
const KEYS: [&str; 6] = [MODE, UID, GID, MTIME, ATIME, CTIME];

/// POSIX attributes of an object, as seen on the mount.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PosixAttrs {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch.
    pub ctime_ns: i64,
    /// Access time, ns since the epoch.
    pub atime_ns: i64,
}

/// What a file is, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (also what a mode without a file type means).
    Regular,
    /// A directory (a `dir/` marker object).
    Directory,
    /// A symbolic link; the object's body is the target.
    Symlink,
    /// A named pipe (an empty object; the kernel implements it).
    Fifo,
    /// A socket (an empty object).
    Socket,
    /// A character device (an empty object; its number is `rdev`).
    CharDevice,
    /// A block device (an empty object; its number is `rdev`).
    BlockDevice,
}

/// A change of attributes (`chmod`, `chown`, `utimensat`): what is `None` stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// New permission bits (the file type never changes).
    pub perm: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time, ns.
    pub atime_ns: Option<i64>,
    /// New modification time, ns.
    pub mtime_ns: Option<i64>,
    /// Clear the set-user-ID bit, and set-group-ID when the group may execute, of a file that
    /// is not a directory: what a write, a truncate or a chown does (see [`PosixAttrs::kill_setid`]).
    pub kill_setid: bool,
}

impl Change {
    /// Whether the change changes anything.
    pub fn is_empty(&self) -> bool {
        *self == Change::default()
    }
}

impl PosixAttrs {
    /// Attributes of something created now with `mode` (type and permissions) by `uid:gid`.
    pub fn new(mode: u32, uid: u32, gid: u32, now_ns: i64) -> PosixAttrs {
        PosixAttrs {
            mode,
            uid,
            gid,
            mtime_ns: now_ns,
            ctime_ns: now_ns,
            atime_ns: now_ns,
        }
    }

    /// What an object without POSIX attributes shows: root's, times `last_modified_ns`, a
    /// directory 0755 for a `dir/` marker key, a regular file 0644 otherwise.
    pub fn default_for(key: &str, last_modified_ns: i64) -> PosixAttrs {
        if key.ends_with('/') {
            return PosixAttrs::default_dir(last_modified_ns);
        }
        PosixAttrs::new(S_IFREG | 0o644, 0, 0, last_modified_ns)
    }

    /// What a directory without POSIX attributes shows (0755, root's, times `t_ns`).
    pub fn default_dir(t_ns: i64) -> PosixAttrs {
        PosixAttrs::new(S_IFDIR | 0o755, 0, 0, t_ns)
    }

    /// The file type.
    pub fn kind(&self) -> FileKind {
        match self.mode & S_IFMT {
            S_IFDIR => FileKind::Directory,
            S_IFLNK => FileKind::Symlink,
            S_IFIFO => FileKind::Fifo,
            S_IFSOCK => FileKind::Socket,
            S_IFCHR => FileKind::CharDevice,
            S_IFBLK => FileKind::BlockDevice,
            _ => FileKind::Regular,
        }
    }

    /// The permission bits (with set-id and sticky).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    /// Applies `c` as POSIX does: the named attributes change, ctime becomes `now_ns`, nothing
    /// else moves (a `chmod` keeps mtime and atime).
    pub fn apply(&mut self, c: &Change, now_ns: i64) {
        if let Some(p) = c.perm {
            self.mode = (self.mode & !0o7777) | (p & 0o7777);
        }
        if let Some(u) = c.uid {
            self.uid = u;
        }
        if let Some(g) = c.gid {
            self.gid = g;
        }
        if let Some(a) = c.atime_ns {
            self.atime_ns = a;
        }
        if let Some(m) = c.mtime_ns {
            self.mtime_ns = m;
        }
        if c.kill_setid {
            self.kill_setid();
        }
        self.ctime_ns = now_ns;
    }

    /// Clears set-user-ID, and set-group-ID when the group may execute (without group execute
    /// it marks mandatory locking, and stays), as Linux does when a file that is not a directory
    /// is written, truncated or changes owner.
    pub fn kill_setid(&mut self) {
        if self.mode & S_IFMT == S_IFDIR {
            return;
        }
        self.mode &= !0o4000;
        if self.mode & 0o010 != 0 {
            self.mode &= !0o2000;
        }
    }
}

/// The user metadata an object shows over S3: what was put with it, and its POSIX attributes
/// when it has any (these win over put keys of the same names).
pub fn shown(
    user_metadata: &BTreeMap<String, String>,
    posix: Option<&PosixAttrs>,
) -> BTreeMap<String, String> {
    let mut out = user_metadata.clone();
    if let Some(p) = posix {
        show(p, &mut out);
    }
    out
}

/// Writes `p` into user metadata under the POSIX names and in `s3cmd-attrs`.
pub fn show(p: &PosixAttrs, out: &mut BTreeMap<String, String>) {
    out.insert(MODE.into(), format_mode(p.mode));
    out.insert(UID.into(), p.uid.to_string());
    out.insert(GID.into(), p.gid.to_string());
    out.insert(MTIME.into(), format_time(p.mtime_ns));
    out.insert(ATIME.into(), format_time(p.atime_ns));
    out.insert(CTIME.into(), format_time(p.ctime_ns));
    let record = s3cmd_record(out.get(S3CMD_ATTRS).map(String::as_str), p);
    out.insert(S3CMD_ATTRS.into(), record);
}

/// s3cmd's record with its POSIX fields set from `p` (decimal mode, whole seconds) and its
/// other fields (`md5`, `uname`, `gname`) kept, in s3cmd's order (sorted by name).
fn s3cmd_record(old: Option<&str>, p: &PosixAttrs) -> String {
    let mut fields: BTreeMap<&str, String> = old
        .into_iter()
        .flat_map(|r| r.split('/'))
        .filter_map(|f| f.split_once(':'))
        .filter(|(k, _)| !KEYS.contains(k) && !k.is_empty())
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    let secs = |ns: i64| ns.div_euclid(1_000_000_000).to_string();
    fields.insert(MODE, p.mode.to_string());
    fields.insert(UID, p.uid.to_string());
    fields.insert(GID, p.gid.to_string());
    fields.insert(MTIME, secs(p.mtime_ns));
    fields.insert(ATIME, secs(p.atime_ns));
    fields.insert(CTIME, secs(p.ctime_ns));
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    parts.join("/")
}

/// Takes the POSIX attributes out of the user metadata of a put to `key` (`None` when no name
/// holds a valid value). What is missing gets the defaults of an object put over S3: mode
/// `0644` (`0755` for a `dir/` marker), root, times `now_ns`. The file type follows the key: a
/// `dir/` marker is a directory; any other object a regular file, or what the mode says when
/// it is a symlink (its body is the target, as on the mount), FIFO, socket or device node
/// (whose number is user metadata `rdev`). `s3cmd-attrs` is read when none of the POSIX names
/// is given, and stays (its fields are rewritten from the attributes when shown).
pub fn take(meta: &mut BTreeMap<String, String>, key: &str, now_ns: i64) -> Option<PosixAttrs> {
    let dir = key.ends_with('/');
    let mode = meta.get(MODE).and_then(|v| parse_mode(v, dir));
    let uid = meta.get(UID).and_then(|v| v.parse::<u32>().ok());
    let gid = meta.get(GID).and_then(|v| v.parse::<u32>().ok());
    let mtime = meta.get(MTIME).and_then(|v| parse_time(v));
    let atime = meta.get(ATIME).and_then(|v| parse_time(v));
    let ctime = meta.get(CTIME).and_then(|v| parse_time(v));
    let found = [mode, uid, gid]
        .map(|v| v.is_some())
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
    let mode = match mode {
        _ if dir => S_IFDIR | mode.unwrap_or(0o755) & 0o7777,
        Some(m) if matches!(m & S_IFMT, S_IFLNK | S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK) => m,
        Some(m) => S_IFREG | m & 0o7777,
        None => S_IFREG | 0o644,
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

/// Forgets what user metadata says about an object's former contents once they change: the
/// `md5` in s3cmd's record (s3cmd checks a download against it and would call the new contents
/// corrupt).
pub fn contents_changed(meta: &mut BTreeMap<String, String>) {
    let Some(record) = meta.get_mut(S3CMD_ATTRS) else {
        return;
    };
    let kept: Vec<&str> = record
        .split('/')
        .filter(|f| !f.starts_with("md5:"))
        .collect();
    *record = kept.join("/");
}

/// Takes away what an S3 client is not trusted to set (see `docs/semantics.md`, "Trust"):
/// set-user-ID and set-group-ID bits are cleared, and a device node becomes an empty regular
/// file. Anyone with S3 write access could otherwise plant a set-uid binary or a device node
/// that `cp -a` or `rsync -a` as root carries out of the (nosuid, nodev) mount onto a
/// filesystem where they work. Returns whether anything was taken away.
pub fn restrict(p: &mut PosixAttrs) -> bool {
    let before = p.mode;
    if matches!(p.mode & S_IFMT, S_IFCHR | S_IFBLK) {
        p.mode = S_IFREG | (p.mode & 0o7777);
    }
    p.mode &= !0o6000;
    p.mode != before
}

/// POSIX attributes from s3cmd's `s3cmd-attrs` (decimal mode, whole seconds).
fn from_s3cmd(meta: &BTreeMap<String, String>, key: &str, now_ns: i64) -> Option<PosixAttrs> {
    let attrs = meta.get(S3CMD_ATTRS)?;
    let mut m: BTreeMap<String, String> = attrs
        .split('/')
        .filter_map(|f| f.split_once(':'))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(mode) = m.get_mut(MODE) {
        // Always decimal here: made C-style octal for `take`.
        *mode = format_mode(mode.parse::<u32>().ok()?);
    }
    if m.is_empty() {
        return None;
    }
    take(&mut m, key, now_ns)
}

/// `mode` as the mount writes it: C-style octal (`0100644`).
pub fn format_mode(mode: u32) -> String {
    format!("0{mode:o}")
}

/// `st_mode` from user metadata `mode`, written octal (rclone: `100644`; C-style: `0100644`;
/// by hand: `644`) or decimal (s3fs: `33188`; by hand: `448`). The rule:
///
/// 1. A leading `0` means octal (as C's `strtoll(…, 0)` reads it).
/// 2. Otherwise the value is read both ways (octal only when it has no digit 8 or 9), and a
///    reading counts when it is a valid `st_mode` (at most `0o177777`, a known file type or
///    none). Among those, the first that holds wins: its file type fits the key (a directory
///    for a `dir/` marker, anything else for another key), it has a file type (the tools that
///    write decimal, s3fs and s3cmd, always write one), it is the octal one.
///
/// So rclone's `40755` is a directory and s3fs's `41471` (decimal `0o120777`) a symlink, not a
/// directory; s3fs's `33152` (`0o100600`, no 8 or 9) is decimal because octal `0o33152` has no
/// valid file type. Left ambiguous, and read as octal: s3fs's decimal device numbers that
/// look like octal FIFOs or devices (`1xxxx`, `2xxxx`); device nodes over S3 are refused anyway.
pub fn parse_mode(v: &str, dir: bool) -> Option<u32> {
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let valid = |m: u32| {
        m <= 0o177777
            && matches!(
                m & S_IFMT,
                0 | S_IFREG | S_IFDIR | S_IFLNK | S_IFIFO | S_IFCHR | S_IFBLK | S_IFSOCK
            )
    };
    let octal = u32::from_str_radix(v, 8).ok().filter(|m| valid(*m));
    if v.len() > 1 && v.starts_with('0') {
        return octal;
    }
    let decimal = v.parse::<u32>().ok().filter(|m| valid(*m));
    let fits = |m: u32| match m & S_IFMT {
        0 => true,
        t => (t == S_IFDIR) == dir,
    };
    // The first best: octal before decimal when both fit and are typed alike.
    [octal, decimal]
        .into_iter()
        .flatten()
        .min_by_key(|m| (!fits(*m), m & S_IFMT == 0))
}

/// Nanoseconds since the epoch from `secs[.fraction]` (up to nine decimals used) or RFC 3339.
pub fn parse_time(v: &str) -> Option<i64> {
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

/// `secs` for whole seconds, else `secs.nnnnnnnnn` (nine digits: s3fs reads the fraction as
/// nanoseconds, rclone as a decimal fraction; both are right only with all nine).
pub fn format_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    let (s, n) = (a / 1_000_000_000, a % 1_000_000_000);
    if n == 0 {
        format!("{sign}{s}")
    } else {
        format!("{sign}{s}.{n:09}")
    }
}

/// A device node's number from user metadata (`rdev`, hexadecimal), 0 when absent or bad.
pub fn rdev(user_metadata: &BTreeMap<String, String>) -> u32 {
    user_metadata
        .get(RDEV)
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .unwrap_or(0)
}

/// `rdev` as it is kept in user metadata.
pub fn format_rdev(rdev: u32) -> String {
    format!("{rdev:x}")
}

/// The user-metadata name under which extended attribute `name` is kept (S3 metadata names
/// are case-insensitive, so lowercased).
pub fn xattr_key(name: &str) -> String {
    format!("{XATTR_PREFIX}{}", name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
