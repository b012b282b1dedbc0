//! The disk set: identity files, deterministic shard placement and shard file I/O.
//!
//! Each disk is a directory holding `predastore-disk.json` (its identity) and
//! `chunks/<hh>/<chunk-hex>.<shard>` shard files. Shards are written to `tmp/` first, fsync'd and
//! renamed into place, so a shard file under `chunks/` is always complete.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::FORMAT_VERSION;
use crate::shard::{self, ShardHeader, HEADER_LEN};

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

/// State of one disk as last probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    /// Present, with the right identity.
    Online,
    /// The directory is missing or unreadable.
    Missing,
    /// The directory exists but has no identity (new or replaced disk): heal formats it.
    Unformatted,
    /// The directory belongs to another set or position; it is never used.
    Foreign(String),
}

/// One disk directory.
#[derive(Debug)]
pub struct Disk {
    /// Position in the set.
    pub index: usize,
    /// Directory.
    pub path: PathBuf,
    state: RwLock<DiskState>,
}

impl Disk {
    /// Current state.
    pub fn state(&self) -> DiskState {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or(DiskState::Missing)
    }

    fn set_state(&self, s: DiskState) {
        if let Ok(mut g) = self.state.write() {
            *g = s;
        }
    }

    /// Whether shards may be written to and read from this disk.
    pub fn is_online(&self) -> bool {
        self.state() == DiskState::Online
    }

    /// Path of a shard file.
    pub fn shard_path(&self, chunk: &[u8; 32], index: usize) -> PathBuf {
        let hex = hex::encode(chunk);
        self.path
            .join("chunks")
            .join(&hex[..2])
            .join(format!("{hex}.{index}"))
    }
}

/// The disks of one data directory.
#[derive(Debug)]
pub struct DiskSet {
    /// All disks, by index.
    pub disks: Vec<Disk>,
    set_id: String,
    fsync: bool,
}

/// Outcome of writing the shards of one chunk.
#[derive(Debug, Clone, Copy)]
pub struct WriteOutcome {
    /// Bit `i` set: shard `i` was not written.
    pub missing: u64,
    /// Shards durably written.
    pub written: usize,
}

impl DiskSet {
    /// Opens the disks at `paths` for set `set_id`, probing each one's state.
    pub fn open(paths: &[PathBuf], set_id: &str, fsync: bool) -> DiskSet {
        let disks = paths
            .iter()
            .enumerate()
            .map(|(index, path)| Disk {
                index,
                path: path.clone(),
                state: RwLock::new(DiskState::Missing),
            })
            .collect();
        let set = DiskSet {
            disks,
            set_id: set_id.to_string(),
            fsync,
        };
        set.refresh();
        set
    }

    /// The set id.
    pub fn set_id(&self) -> &str {
        &self.set_id
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

    /// Writes every shard of a chunk to its disk (in parallel), durably. Disks that are offline or
    /// fail are reported in the outcome's `missing` mask.
    pub fn write_shards(
        &self,
        chunk: &[u8; 32],
        chunk_len: usize,
        k: usize,
        m: usize,
        shards: &[Vec<u8>],
    ) -> WriteOutcome {
        let place = self.placement(chunk, shards.len());
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = shards
                .iter()
                .enumerate()
                .map(|(i, payload)| {
                    let disk = &self.disks[place[i]];
                    s.spawn(move || {
                        if !disk.is_online() {
                            return false;
                        }
                        let header = ShardHeader {
                            chunk: *chunk,
                            index: i as u8,
                            k: k as u8,
                            m: m as u8,
                            chunk_len: chunk_len as u32,
                            payload_hash: *blake3::hash(payload).as_bytes(),
                        };
                        match write_shard_file(disk, chunk, i, &header, payload, self.fsync) {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(disk = %disk.path.display(), "shard write failed: {e}");
                                false
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .collect()
        });
        let mut missing = 0u64;
        let mut written = 0;
        for (i, ok) in results.into_iter().enumerate() {
            if ok {
                written += 1;
            } else {
                missing |= 1 << i;
            }
        }
        WriteOutcome { missing, written }
    }

    /// Rewrites one shard (used by heal).
    pub fn rewrite_shard(
        &self,
        chunk: &[u8; 32],
        index: usize,
        header: &ShardHeader,
        payload: &[u8],
        disk_index: usize,
    ) -> Result<()> {
        write_shard_file(
            &self.disks[disk_index],
            chunk,
            index,
            header,
            payload,
            self.fsync,
        )
    }

    /// Reads and verifies shard `index` of `chunk`; `None` when it is missing or corrupt.
    pub fn read_shard(
        &self,
        chunk: &[u8; 32],
        index: usize,
        disk_index: usize,
        shard_len: usize,
    ) -> ShardRead {
        let disk = &self.disks[disk_index];
        if !disk.is_online() {
            return ShardRead::Missing;
        }
        let path = disk.shard_path(chunk, index);
        let mut buf = Vec::with_capacity(HEADER_LEN + shard_len);
        match File::open(&path).and_then(|mut f| f.read_to_end(&mut buf)) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return ShardRead::Missing,
            Err(e) => {
                tracing::warn!(path = %path.display(), "shard read failed: {e}");
                return ShardRead::Missing;
            }
        }
        if shard::verify(&buf, chunk, index, shard_len).is_none() {
            return ShardRead::Corrupt;
        }
        buf.drain(..HEADER_LEN);
        ShardRead::Ok(buf)
    }

    /// Removes every shard file of a chunk from every disk.
    pub fn remove_chunk(&self, chunk: &[u8; 32], n: usize) {
        for (i, d) in self.placement(chunk, n).into_iter().enumerate() {
            let disk = &self.disks[d];
            if disk.is_online() {
                let _ = fs::remove_file(disk.shard_path(chunk, i));
            }
        }
    }
}

/// Result of reading one shard.
#[derive(Debug)]
pub enum ShardRead {
    /// The verified payload.
    Ok(Vec<u8>),
    /// Absent (or its disk is offline).
    Missing,
    /// Present but failing verification.
    Corrupt,
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
            Ok(id) if id.format_version != FORMAT_VERSION => DiskState::Foreign(format!(
                "has format version {}, expected {FORMAT_VERSION}",
                id.format_version
            )),
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
    fs::create_dir_all(path.join("chunks"))?;
    fs::create_dir_all(path.join("tmp"))?;
    let id = DiskIdentity {
        format_version: FORMAT_VERSION,
        set_id: set_id.to_string(),
        disk_id: hex::encode(rand::random::<[u8; 16]>()),
        index,
    };
    let bytes = serde_json::to_vec_pretty(&id).map_err(|e| Error::Format(e.to_string()))?;
    crate::format::write_atomic(&path.join(IDENTITY_FILE), &bytes, fsync)
}

fn write_shard_file(
    disk: &Disk,
    chunk: &[u8; 32],
    index: usize,
    header: &ShardHeader,
    payload: &[u8],
    fsync: bool,
) -> Result<()> {
    let final_path = disk.shard_path(chunk, index);
    let dir = final_path
        .parent()
        .ok_or_else(|| Error::Format("shard path has no parent".into()))?;
    let tmp = disk.path.join("tmp").join(format!(
        "{}.{index}.{}",
        hex::encode(chunk),
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let res = (|| -> Result<()> {
        f.write_all(&header.encode())?;
        f.write_all(payload)?;
        if fsync {
            f.sync_data()?;
        }
        if let Err(e) = fs::rename(&tmp, &final_path) {
            if e.kind() != ErrorKind::NotFound {
                return Err(e.into());
            }
            fs::create_dir_all(dir)?;
            if fsync {
                sync_dir(dir.parent().unwrap_or(dir))?;
            }
            fs::rename(&tmp, &final_path)?;
        }
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
