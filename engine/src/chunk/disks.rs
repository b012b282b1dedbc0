//! The disk set: identity files, deterministic shard placement, and the shards of one chunk
//! written to and read from their disks (each through [`ShardIo`]).
//!
//! Each disk is a directory holding `predastore-disk.json` (its identity) and `volumes/`, the
//! append-only volume files its shards live in (see [`super::local`]). Where a shard is comes
//! from its chunk record ([`ShardLoc`]); which disk it is on, from placement.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::local::LocalDisk;
use super::shard::ShardHeader;
use super::shard_io::{DiskState, Pending, ShardAt, ShardIo, ShardRead};
use super::volume::{self, PendingSync, ShardBuf};
use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, OLDEST_READABLE_VERSION};
use crate::meta::ShardLoc;

/// Name of the identity file in every disk directory.
pub const IDENTITY_FILE: &str = "predastore-disk.json";

/// Identity of one disk of a set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskIdentity {
    /// On-disk format version.
    pub format_version: u32,
    /// The set the disk belongs to.
    pub set_id: String,
    /// Unique id of this disk (new when a disk is replaced).
    pub disk_id: String,
    /// Position of the disk in the set.
    pub index: usize,
}

/// The disks of one data directory.
#[derive(Debug)]
pub struct DiskSet {
    /// All disks, by index.
    pub disks: Vec<LocalDisk>,
    set_id: String,
    fsync: bool,
}

/// Outcome of writing the shards of one chunk.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// Bit `i` set: shard `i` was not written.
    pub missing: u64,
    /// Shards durably written.
    pub written: usize,
    /// Shards refused for lack of space (the disk or its quota is full).
    pub full: usize,
    /// Where each shard went ([`ShardLoc::NONE`] for missing ones).
    pub locs: Vec<ShardLoc>,
    /// The writes still to be made durable: shard index and its pending sync.
    pub unsynced: Vec<(usize, PendingSync)>,
}

impl DiskSet {
    /// Opens the disks at `paths` for set `set_id`, probing each one's state.
    pub fn open(paths: &[PathBuf], set_id: &str, policy: volume::WritePolicy) -> DiskSet {
        let disks = paths
            .iter()
            .enumerate()
            .map(|(index, path)| LocalDisk::new(index, path.clone(), policy))
            .collect();
        let set = DiskSet {
            disks,
            set_id: set_id.to_string(),
            fsync: policy.fsync,
        };
        set.refresh();
        set
    }

    /// Re-reads every disk's identity file and updates its state.
    pub fn refresh(&self) {
        for d in &self.disks {
            let s = probe(&d.path, &self.set_id, d.index);
            if let DiskState::Foreign(why) = &s {
                tracing::error!(disk = %d.path.display(), "refusing disk: {why}");
            }
            d.set_state(s);
        }
    }

    /// Writes a fresh identity into every disk of a new set.
    pub fn format_all(&self) -> Result<()> {
        for d in &self.disks {
            format_disk(&d.path, &self.set_id, d.index, self.fsync)?;
            d.set_state(DiskState::Online);
        }
        Ok(())
    }

    /// Formats a missing or empty disk so heal can refill it. Refuses foreign disks and disks
    /// that hold files.
    pub fn adopt(&self, index: usize) -> Result<bool> {
        let d = &self.disks[index];
        match probe(&d.path, &self.set_id, index) {
            DiskState::Online => {
                d.set_state(DiskState::Online);
                Ok(false)
            }
            DiskState::Foreign(why) => Err(Error::Format(format!(
                "disk {} is not ours: {why}",
                d.path.display()
            ))),
            DiskState::Missing | DiskState::Unformatted => {
                format_disk(&d.path, &self.set_id, index, self.fsync)?;
                d.forget_volume();
                d.set_state(DiskState::Online);
                tracing::warn!(disk = %d.path.display(), "formatted replacement disk");
                Ok(true)
            }
        }
    }

    /// Disk indices holding shards `0..n` of `chunk`, by rendezvous hashing over disk positions.
    pub fn placement(&self, chunk: &[u8; 32], n: usize) -> Vec<usize> {
        let mut scored: Vec<(u64, usize)> = (0..self.disks.len())
            .map(|i| {
                let mut h = blake3::Hasher::new();
                h.update(chunk);
                h.update(&(i as u32).to_le_bytes());
                let b = h.finalize();
                let score = u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8]));
                (score, i)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.cmp(a));
        scored.into_iter().take(n).map(|(_, i)| i).collect()
    }

    /// Writes every shard of a chunk (`chunk_len` bytes stored with `encoding`) to its disk (in
    /// parallel), filling in each shard's header; the outcome's `unsynced` says what to make durable before a commit refers to
    /// them. Disks that are offline or fail are reported in the outcome's `missing` mask.
    pub fn write_shards(
        &self,
        chunk: &[u8; 32],
        chunk_len: usize,
        encoding: crate::compression::Encoding,
        k: usize,
        m: usize,
        shards: &mut [ShardBuf],
    ) -> WriteOutcome {
        let place = self.placement(chunk, shards.len());
        let results: Vec<Result<(ShardLoc, PendingSync), bool>> = std::thread::scope(|s| {
            let handles: Vec<_> = shards
                .iter_mut()
                .enumerate()
                .map(|(i, buf)| {
                    let disk_index = place[i];
                    s.spawn(move || {
                        if !self.disks[disk_index].is_online() {
                            return Err(false);
                        }
                        let h = ShardHeader::new(chunk, i, k, m, chunk_len as u32, buf.payload())
                            .encoded(encoding);
                        buf.set_header(&h);
                        // Parity is read only when a disk fails: never kept cached.
                        let r = match self.disks[disk_index].append(buf, i < k) {
                            // Space held ahead by volumes (of this disk or of disks sharing
                            // its filesystem) is given back, then the shard tried once more.
                            Err(e) if e.is_no_space() && self.trim_preallocation() > 0 => {
                                self.disks[disk_index].append(buf, i < k)
                            }
                            r => r,
                        };
                        r.map_err(|e| {
                            let disk = &self.disks[disk_index];
                            tracing::warn!(disk = %disk.path.display(), "shard write failed: {e}");
                            e.is_no_space()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(false)))
                .collect()
        });
        let mut missing = 0u64;
        let mut written = 0;
        let mut full = 0;
        let mut locs = Vec::with_capacity(results.len());
        let mut unsynced = Vec::with_capacity(results.len());
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok((loc, pending)) => {
                    written += 1;
                    locs.push(loc);
                    unsynced.push((i, pending));
                }
                Err(no_space) => {
                    full += no_space as usize;
                    missing |= 1 << i;
                    locs.push(ShardLoc::NONE);
                }
            }
        }
        WriteOutcome {
            missing,
            written,
            full,
            locs,
            unsynced,
        }
    }

    /// Gives back the space every disk's volume has preallocated beyond its last shard; returns
    /// the bytes given back.
    pub fn trim_preallocation(&self) -> u64 {
        let n: u64 = self.disks.iter().map(|d| d.trim_preallocation()).sum();
        if n > 0 {
            tracing::info!("a disk is full: gave back {n} bytes of volume preallocation");
        }
        n
    }

    /// Appends one shard to disk `disk_index`'s volume, durably; returns where it went. Used by
    /// heal.
    pub fn write_shard(
        &self,
        disk_index: usize,
        header: &ShardHeader,
        payload: &[u8],
    ) -> Result<ShardLoc> {
        let mut buf = ShardBuf::from_payload(payload);
        buf.set_header(header);
        let (loc, pending) = self.disks[disk_index].append(&buf, header.index < header.k)?;
        pending.make_durable()?;
        Ok(loc)
    }

    /// Overwrites a (corrupt) shard where it is, durably. Used by heal.
    pub fn rewrite_shard_at(
        &self,
        disk_index: usize,
        loc: ShardLoc,
        header: &ShardHeader,
        payload: &[u8],
    ) -> Result<()> {
        let mut buf = ShardBuf::from_payload(payload);
        buf.set_header(header);
        self.disks[disk_index].rewrite(loc, &buf)
    }

    /// Reads bytes `[lo, hi)` of the payload of shard `at` on disk `disk_index`, verified
    /// (see [`ShardIo::read`]).
    pub fn read_shard(
        &self,
        disk_index: usize,
        at: ShardAt<'_>,
        lo: usize,
        hi: usize,
    ) -> ShardRead {
        self.disks[disk_index].read(at, lo, hi)
    }

    /// Whether a shard is present at `loc` on disk `disk_index`, without reading it.
    pub fn shard_present(&self, disk_index: usize, loc: ShardLoc, shard_len: usize) -> bool {
        self.disks[disk_index].present(loc, shard_len)
    }

    /// Frees the space of a chunk's shards (`locs[i]` on the disk placement gives shard `i`).
    pub fn release(&self, chunk: &[u8; 32], shard_len: usize, locs: &[ShardLoc]) {
        let place = self.placement(chunk, locs.len());
        for (i, loc) in locs.iter().enumerate() {
            if loc.is_some() {
                self.disks[place[i]].release(*loc, shard_len);
            }
        }
    }
}

fn probe(path: &Path, set_id: &str, index: usize) -> DiskState {
    let id_path = path.join(IDENTITY_FILE);
    match fs::read(&id_path) {
        Ok(bytes) => match serde_json::from_slice::<DiskIdentity>(&bytes) {
            Ok(id) if id.set_id != set_id => {
                DiskState::Foreign(format!("belongs to set {}", id.set_id))
            }
            Ok(id) if id.index != index => DiskState::Foreign(format!(
                "is disk {} of the set, configured as disk {index}",
                id.index
            )),
            Ok(id) if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&id.format_version) => {
                DiskState::Foreign(format!(
                    "has format version {}, expected {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}",
                    id.format_version
                ))
            }
            Ok(_) => DiskState::Online,
            Err(e) => DiskState::Foreign(format!("unreadable identity file: {e}")),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => match fs::read_dir(path) {
            Ok(mut entries) => {
                if entries.next().is_none() {
                    DiskState::Unformatted
                } else {
                    DiskState::Foreign("holds files but no identity".into())
                }
            }
            Err(_) => DiskState::Missing,
        },
        Err(_) => DiskState::Missing,
    }
}

fn format_disk(path: &Path, set_id: &str, index: usize, fsync: bool) -> Result<()> {
    crate::private::create_dir_all(&path.join(volume::VOLUME_DIR))?;
    let id = DiskIdentity {
        format_version: FORMAT_VERSION,
        set_id: set_id.to_string(),
        disk_id: hex::encode(rand::random::<[u8; 16]>()),
        index,
    };
    let bytes = serde_json::to_vec_pretty(&id).map_err(|e| Error::Format(e.to_string()))?;
    crate::fsutil::write_atomic(&path.join(IDENTITY_FILE), &bytes, fsync)
}
