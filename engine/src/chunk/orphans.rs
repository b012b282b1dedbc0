//! The orphan sweep of a cluster node: shards on this node's disks that no chunk record names
//! (writes that crashed or gave up before their commit, old copies a rebalance could not free
//! on a member it could not reach) are given back to the file system.
//!
//! On one machine the GC lock keeps writers out while the sweep runs, so whatever no record
//! names is an orphan. In a cluster other nodes write here through the shard service and
//! commit to etcd, out of reach of any lock of this node; instead, time bounds them: a write
//! must commit within the write limit of storing its first shard
//! ([`crate::EngineConfig::write_limit`], checked in the commit itself), and a shard region
//! is freed only when it was seen, whole and unnamed, at a sweep at least twice that long ago
//! and is still unnamed. Whatever wrote it had begun before it was first seen, so has
//! committed or can no longer commit. The sightings are kept per disk in
//! `volumes/orphans.seen`, dated by the kernel's boot clock (which a clock set by NTP does not
//! move); a sighting from an earlier boot counts as made when this boot began.
//!
//! A region counts as a shard only when its header and every block of its payload check out,
//! so the bytes freed are exactly those its writer wrote before the first sighting. Other
//! unnamed space (preallocation, torn writes) is freed only in volumes no process appends to
//! any more (unlocked), where nothing can be written again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::gc::GcReport;
use super::shard::{ShardHeader, HEADER_LEN};
use super::shard_io::ShardIo;
use super::volume::{self, region_len, ALIGN};
use super::ChunkStore;
use crate::error::Result;

/// The sightings file in each disk's volume directory.
pub const SEEN_FILE: &str = "orphans.seen";

/// A shard region that no record named when a sweep looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Unnamed {
    /// Volume id.
    pub volume: u64,
    /// Offset of the region.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// Which shard it holds: the chunk, the index, and the hash of its block table (which
    /// commits to the payload).
    pub chunk: [u8; 32],
    pub index: u8,
    pub table: [u8; 32],
}

/// The kernel's boot clock: this boot's id and seconds since it began (suspend included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootClock {
    pub boot_id: String,
    pub secs: u64,
}

impl BootClock {
    /// Now.
    pub(crate) fn now() -> Result<BootClock> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
            .trim()
            .to_string();
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: plain syscall writing into a timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(BootClock {
            boot_id,
            secs: ts.tv_sec.max(0) as u64,
        })
    }
}

/// The regions one disk's last sweep saw unnamed, each with when it was first seen (boot
/// clock seconds of `boot_id`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Sightings {
    pub boot_id: String,
    pub seen: HashMap<Unnamed, u64>,
}

impl Sightings {
    /// The sightings in `path` as of `now`: those of an earlier boot dated at this boot's
    /// start. A missing or unreadable file, or a bad line, only makes regions wait longer.
    pub(crate) fn load(path: &Path, now: &BootClock) -> Sightings {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = text.lines();
        let same_boot = lines.next() == Some(now.boot_id.as_str());
        let seen = lines
            .filter_map(parse_line)
            .map(|(u, at)| (u, if same_boot { at.min(now.secs) } else { 0 }))
            .collect();
        Sightings {
            boot_id: now.boot_id.clone(),
            seen,
        }
    }

    /// Writes them to `path` (replacing it whole).
    pub(crate) fn store(&self, path: &Path) -> Result<()> {
        let mut text = format!("{}\n", self.boot_id);
        for (u, at) in &self.seen {
            text.push_str(&format!(
                "{:016x} {} {} {} {} {} {}\n",
                u.volume,
                u.offset,
                u.len,
                hex::encode(u.chunk),
                u.index,
                hex::encode(u.table),
                at
            ));
        }
        let tmp = path.with_extension("seen.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(Unnamed, u64)> {
    let f: Vec<&str> = line.split(' ').collect();
    let [volume, offset, len, chunk, index, table, at] = f.as_slice() else {
        return None;
    };
    let hash = |s: &str| -> Option<[u8; 32]> { hex::decode(s).ok()?.try_into().ok() };
    Some((
        Unnamed {
            volume: u64::from_str_radix(volume, 16).ok()?,
            offset: offset.parse().ok()?,
            len: len.parse().ok()?,
            chunk: hash(chunk)?,
            index: index.parse().ok()?,
            table: hash(table)?,
        },
        at.parse().ok()?,
    ))
}

/// What a walk through a volume's unnamed space found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Unnamedspace {
    /// Whole, checked shard regions no record names.
    pub shards: Vec<Unnamed>,
    /// Other space holding data no record names (`(offset, len)`, block-aligned).
    pub other: Vec<(u64, u64)>,
}

/// Walks the data of volume `id` (`f`) outside the `live` regions (sorted `(offset, len)`).
pub(crate) fn walk_unnamed(f: &File, id: u64, live: &[(u64, u64)]) -> Result<Unnamedspace> {
    let mut out = Unnamedspace::default();
    let mut li = 0;
    let mut head = [0u8; HEADER_LEN];
    for (a, b) in volume::data_ranges(f)? {
        let mut off = a / ALIGN * ALIGN;
        while off < b {
            while li < live.len() && live[li].0 + live[li].1 <= off {
                li += 1;
            }
            let next_live = match live.get(li) {
                Some(&(s, l)) if s <= off => {
                    off = s + l;
                    continue;
                }
                Some(&(s, _)) => s,
                None => u64::MAX,
            };
            if let Some(u) = checked_shard(f, id, off, &mut head).filter(|u| {
                u.offset
                    .checked_add(u.len)
                    .is_some_and(|end| end <= next_live)
            }) {
                out.shards.push(u);
                off += u.len;
                continue;
            }
            match out.other.last_mut() {
                Some((s, l)) if *s + *l == off => *l += ALIGN,
                _ => out.other.push((off, ALIGN)),
            }
            off += ALIGN;
        }
    }
    Ok(out)
}

/// The shard region at `off`, if a valid header is there and the payload matches it.
fn checked_shard(f: &File, volume: u64, off: u64, head: &mut [u8; HEADER_LEN]) -> Option<Unnamed> {
    f.read_exact_at(head, off).ok()?;
    let h = ShardHeader::decode(head).ok()?;
    let codec = super::erasure::Codec {
        k: (h.k as usize).max(1),
        m: h.m as usize,
    };
    let shard_len = codec.shard_len(h.chunk_len as usize);
    let len = region_len(shard_len);
    let mut payload = vec![0u8; shard_len];
    f.read_exact_at(&mut payload, off + HEADER_LEN as u64)
        .ok()?;
    if !h.verify_blocks(shard_len, 0, &payload) {
        return None;
    }
    let mut table = [0u8; 32];
    table.copy_from_slice(&head[48..80]);
    Some(Unnamed {
        volume,
        offset: off,
        len,
        chunk: h.chunk,
        index: h.index,
        table,
    })
}

/// One volume file opened for the sweep: read-write, and whether a process still appends to it.
struct OpenVolume {
    file: File,
    path: PathBuf,
    /// Nobody appends to it: this sweep holds its lock, and nothing can be written in it again.
    unlocked: bool,
}

impl OpenVolume {
    fn open(path: PathBuf) -> Result<Option<OpenVolume>> {
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let unlocked = file.try_lock().is_ok();
        Ok(Some(OpenVolume {
            file,
            path,
            unlocked,
        }))
    }

    /// Punches `[offset, offset + len)`; the bytes freed.
    fn punch(&self, offset: u64, len: u64) -> Result<u64> {
        Ok(if volume::punch_file(&self.file, offset, len)? {
            len
        } else {
            0
        })
    }
}

impl ChunkStore {
    /// The orphan sweep of a cluster node (see the module's doc): frees the unnamed shards of
    /// this node's disks seen at least twice the write limit ago, notes the others for a
    /// later sweep, and frees other unnamed space in volumes nobody appends to.
    pub(crate) fn sweep_cluster_orphans(&self, limit: Duration, rep: &mut GcReport) -> Result<()> {
        let grace = limit.saturating_mul(2).as_secs().max(1);
        // The clock is read before the records: a region ripe by it was seen before any
        // write that may still commit had begun.
        let now = BootClock::now()?;
        let live = self.live_regions()?;
        for d in &self.disks.disks {
            if !d.is_online() {
                continue;
            }
            let seen_path = d.path.join(volume::VOLUME_DIR).join(SEEN_FILE);
            let before = Sightings::load(&seen_path, &now);
            let mut after = Sightings {
                boot_id: now.boot_id.clone(),
                seen: HashMap::new(),
            };
            for (id, path) in volume::list_volumes(&d.path) {
                let Some(v) = OpenVolume::open(path)? else {
                    continue;
                };
                let mut regions = live[d.index].get(&id).cloned().unwrap_or_default();
                regions.sort_unstable();
                let found = walk_unnamed(&v.file, id, &regions)?;
                let mut waiting = false;
                for u in found.shards {
                    let first = before.seen.get(&u).copied().unwrap_or(now.secs);
                    if now.secs.saturating_sub(first) >= grace {
                        rep.orphan_bytes_freed += v.punch(u.offset, u.len)?;
                    } else {
                        rep.orphan_bytes_waiting += u.len;
                        after.seen.insert(u, first);
                        waiting = true;
                    }
                }
                if !v.unlocked {
                    continue;
                }
                if regions.is_empty() && !waiting {
                    match std::fs::remove_file(&v.path) {
                        Ok(()) => rep.volumes_removed += 1,
                        // Another sweep (`s3d gc` beside the node's own) was first.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                    continue;
                }
                for (offset, len) in found.other {
                    rep.orphan_bytes_freed += v.punch(offset, len)?;
                }
            }
            if after.seen.is_empty() && before.seen.is_empty() {
                continue;
            }
            if let Err(e) = after.store(&seen_path) {
                tracing::warn!("orphan sightings of {} not kept: {e}", d.path.display());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
