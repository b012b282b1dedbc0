//! The disk set: identity files, deterministic shard placement, and the shards of one chunk
//! written to and read from their disks (each through [`ShardIo`]).
//!
//! Each disk is a directory holding `predastore-disk.json` (its identity) and `volumes/`, the
//! append-only volume files its shards live in (see [`super::local`]). Where a shard is comes
//! from its chunk record ([`ShardLoc`]); which disk it is on, from placement.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::local::LocalDisk;
use super::placement::Layout;
use super::remote::RemoteDisk;
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

/// The disks shards go to: this data directory's own and, in cluster mode, those of the
/// other members. Placement and the shard operations name a disk by its slot: in one machine
/// slot `i` is local disk `i`; in a cluster each (member, disk) of every layout generation
/// known gets a slot, numbered as first seen and never renumbered while the process runs, so
/// a slot found by one topology means the same disk in the next.
#[derive(Debug)]
pub struct DiskSet {
    /// This data directory's disks, by index.
    pub disks: Vec<LocalDisk>,
    topology: RwLock<Arc<Topology>>,
    set_id: String,
    fsync: bool,
}

/// The slots and, in a cluster, the layouts that place chunks on them: replaced whole when the
/// cluster's membership changes ([`DiskSet::set_cluster`]).
#[derive(Debug)]
struct Topology {
    slots: Vec<Slot>,
    /// In a cluster, the (member id, disk) of each slot.
    keys: Vec<(String, u32)>,
    cluster: Option<ClusterPlacement>,
}

/// Where one of a chunk's shards may go.
#[derive(Debug)]
enum Slot {
    /// A disk of this node (its index in [`DiskSet::disks`]).
    Local(usize),
    /// A disk of another member.
    Remote {
        /// The member's id (for messages).
        member: String,
        /// Its disk, through the member's transport.
        disk: RemoteDisk,
    },
    /// A disk of a member that cannot be reached any more (lost, removed): its shards count
    /// as missing.
    Gone,
}

/// Placement in a cluster: every layout generation chunks may name, with the slot of each of
/// its members' disks.
#[derive(Debug)]
struct ClusterPlacement {
    generations: BTreeMap<u32, (Layout, Vec<Vec<usize>>)>,
    current: u32,
}

impl Topology {
    fn slot<'a>(&'a self, disks: &'a [LocalDisk], slot: usize) -> Option<SlotDisk<'a>> {
        match self.slots.get(slot)? {
            Slot::Local(i) => disks.get(*i).map(SlotDisk::Local),
            Slot::Remote { member, disk } => Some(SlotDisk::Remote(member, disk)),
            Slot::Gone => None,
        }
    }

    /// Slots holding shards `0..n` of `chunk` as layout generation `layout` placed them.
    fn placement(
        &self,
        n_disks: usize,
        chunk: &[u8; 32],
        layout: u32,
        n: usize,
    ) -> Result<Vec<usize>> {
        let Some(c) = &self.cluster else {
            if layout != 0 {
                return Err(Error::LayoutUnknown(layout));
            }
            return Ok(single_node_placement(n_disks, chunk, n));
        };
        let (l, slot_of) = c
            .generations
            .get(&layout)
            .ok_or(Error::LayoutUnknown(layout))?;
        Ok(l.place(chunk)
            .into_iter()
            .take(n)
            .map(|p| slot_of[p.member][p.disk as usize])
            .collect())
    }
}

/// Rendezvous hashing over the positions of one machine's disks.
fn single_node_placement(n_disks: usize, chunk: &[u8; 32], n: usize) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = (0..n_disks)
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

/// One slot's disk, to dispatch a shard operation to.
enum SlotDisk<'a> {
    Local(&'a LocalDisk),
    Remote(&'a str, &'a RemoteDisk),
}

impl SlotDisk<'_> {
    fn is_online(&self) -> bool {
        match self {
            SlotDisk::Local(d) => d.is_online(),
            SlotDisk::Remote(_, d) => d.is_online(),
        }
    }

    /// Whether to try writing to it: a local disk that is online; a remote one always (its
    /// owner refuses an append to a disk that is not, so asking first would only cost a round
    /// trip per shard).
    fn may_write(&self) -> bool {
        match self {
            SlotDisk::Local(d) => d.is_online(),
            SlotDisk::Remote(..) => true,
        }
    }

    /// Appends a shard; what is left to make it durable (nothing for a remote disk, whose
    /// owner acknowledges only durable appends).
    fn append(&self, buf: &ShardBuf, data: bool) -> Result<(ShardLoc, Option<PendingSync>)> {
        match self {
            SlotDisk::Local(d) => d.append(buf, data).map(|(l, p)| (l, Some(p))),
            SlotDisk::Remote(_, d) => d.append(buf, data).map(|(l, _)| (l, None)),
        }
    }

    fn rewrite(&self, loc: ShardLoc, buf: &ShardBuf) -> Result<()> {
        match self {
            SlotDisk::Local(d) => d.rewrite(loc, buf),
            SlotDisk::Remote(_, d) => d.rewrite(loc, buf),
        }
    }

    fn read(&self, at: ShardAt<'_>, lo: usize, hi: usize) -> ShardRead {
        match self {
            SlotDisk::Local(d) => d.read(at, lo, hi),
            SlotDisk::Remote(_, d) => d.read(at, lo, hi),
        }
    }

    fn present(&self, loc: ShardLoc, shard_len: usize) -> bool {
        match self {
            SlotDisk::Local(d) => d.present(loc, shard_len),
            SlotDisk::Remote(_, d) => d.present(loc, shard_len),
        }
    }

    fn release(&self, loc: ShardLoc, shard_len: usize) {
        match self {
            SlotDisk::Local(d) => d.release(loc, shard_len),
            SlotDisk::Remote(_, d) => d.release(loc, shard_len),
        }
    }

    /// The disk, for messages.
    fn describe(&self) -> String {
        match self {
            SlotDisk::Local(d) => d.path.display().to_string(),
            SlotDisk::Remote(m, d) => format!("member {m}, {d:?}"),
        }
    }
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
    /// The layout generation that placed the shards.
    pub layout: u32,
}

impl DiskSet {
    /// Opens the disks at `paths` for set `set_id`, probing each one's state.
    pub fn open(paths: &[PathBuf], set_id: &str, policy: volume::WritePolicy) -> DiskSet {
        let disks: Vec<LocalDisk> = paths
            .iter()
            .enumerate()
            .map(|(index, path)| LocalDisk::new(index, path.clone(), policy))
            .collect();
        let set = DiskSet {
            topology: RwLock::new(Arc::new(Topology {
                slots: (0..disks.len()).map(Slot::Local).collect(),
                keys: Vec::new(),
                cluster: None,
            })),
            disks,
            set_id: set_id.to_string(),
            fsync: policy.fsync,
        };
        set.refresh();
        set
    }

    /// Places shards over the disks of the cluster `c` describes from now on: new chunks by
    /// its newest layout, chunks of older generations where those placed them. Slots already
    /// numbered keep their numbers (`EngineConfig::validate_cluster` checked `c` against this
    /// node).
    pub(crate) fn set_cluster(&self, c: &crate::config::ClusterShards) {
        let old = self.topology();
        let mut keys = old.keys.clone();
        let mut index: BTreeMap<(String, u32), usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut generations = BTreeMap::new();
        for (g, layout) in &c.layouts {
            let mut slot_of = Vec::new();
            for m in layout.members() {
                let mut of = Vec::new();
                for d in 0..m.disks {
                    let key = (m.id.clone(), d);
                    let slot = *index.entry(key.clone()).or_insert_with(|| {
                        keys.push(key);
                        keys.len() - 1
                    });
                    of.push(slot);
                }
                slot_of.push(of);
            }
            generations.insert(*g, (layout.clone(), slot_of));
        }
        let slots = keys
            .iter()
            .map(|(member, d)| {
                if *member == c.me {
                    match (*d as usize) < self.disks.len() {
                        true => Slot::Local(*d as usize),
                        false => Slot::Gone,
                    }
                } else {
                    match c.transports.get(member) {
                        Some(t) => Slot::Remote {
                            member: member.clone(),
                            disk: RemoteDisk::new(t.clone(), *d),
                        },
                        None => Slot::Gone,
                    }
                }
            })
            .collect();
        let current = c.current().map(|(g, _)| g).unwrap_or(0);
        *self.topology.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Topology {
            slots,
            keys,
            cluster: Some(ClusterPlacement {
                generations,
                current,
            }),
        });
    }

    /// The slots and layouts as they are now.
    fn topology(&self) -> Arc<Topology> {
        self.topology
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The layout generation new chunks are placed by (0 on one machine).
    pub fn current_layout(&self) -> u32 {
        self.topology()
            .cluster
            .as_ref()
            .map(|c| c.current)
            .unwrap_or(0)
    }

    /// The local disk slot `slot` is, if it is one of this node's.
    pub fn local_index(&self, slot: usize) -> Option<usize> {
        match self.topology().slots.get(slot)? {
            Slot::Local(i) => Some(*i),
            _ => None,
        }
    }

    /// Whether the disk of slot `slot` takes reads and writes now.
    pub fn slot_online(&self, slot: usize) -> bool {
        self.topology()
            .slot(&self.disks, slot)
            .is_some_and(|d| d.is_online())
    }

    /// Re-reads every disk's identity file and updates its state.
    pub fn refresh(&self) {
        for d in &self.disks {
            let s = probe(&d.path, &self.set_id, d.index);
            match &s {
                // Said once, not at every probe.
                DiskState::Foreign(why) if d.state() != s => {
                    tracing::error!(disk = %d.path.display(), "refusing disk: {why}");
                }
                _ => {}
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

    /// Slots holding shards `0..n` of `chunk` as layout generation `layout` placed them: in a
    /// cluster by that generation's layout, on one machine (generation 0) by rendezvous
    /// hashing over disk positions. A generation this node does not know (yet) is an error.
    pub fn placement(&self, chunk: &[u8; 32], layout: u32, n: usize) -> Result<Vec<usize>> {
        self.topology()
            .placement(self.disks.len(), chunk, layout, n)
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
        let topology = self.topology();
        let layout = topology.cluster.as_ref().map(|c| c.current).unwrap_or(0);
        let place = match topology.placement(self.disks.len(), chunk, layout, shards.len()) {
            Ok(p) => p,
            // The newest generation is always known: nothing to place by only if it is not.
            Err(_) => vec![usize::MAX; shards.len()],
        };
        let topology = &topology;
        let results: Vec<Result<(ShardLoc, Option<PendingSync>), bool>> = std::thread::scope(|s| {
            let handles: Vec<_> = shards
                .iter_mut()
                .enumerate()
                .map(|(i, buf)| {
                    let slot = place[i];
                    s.spawn(move || {
                        let Some(disk) = topology.slot(&self.disks, slot).filter(|d| d.may_write())
                        else {
                            return Err(false);
                        };
                        let h = ShardHeader::new(chunk, i, k, m, chunk_len as u32, buf.payload())
                            .encoded(encoding);
                        buf.set_header(&h);
                        // Parity is read only when a disk fails: never kept cached.
                        let r = match disk.append(buf, i < k) {
                            // Space held ahead by volumes (of this disk or of disks sharing
                            // its filesystem) is given back, then the shard tried once more.
                            Err(e) if e.is_no_space() && self.trim_preallocation() > 0 => {
                                disk.append(buf, i < k)
                            }
                            r => r,
                        };
                        r.map_err(|e| {
                            tracing::warn!(disk = %disk.describe(), "shard write failed: {e}");
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
                    if let Some(p) = pending {
                        unsynced.push((i, p));
                    }
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
            layout,
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

    /// Appends one shard to the disk of slot `slot`, durably; returns where it went. Used by
    /// heal.
    pub fn write_shard(
        &self,
        slot: usize,
        header: &ShardHeader,
        payload: &[u8],
    ) -> Result<ShardLoc> {
        let topology = self.topology();
        let disk = topology
            .slot(&self.disks, slot)
            .ok_or_else(|| no_slot(slot))?;
        let mut buf = ShardBuf::from_payload(payload);
        buf.set_header(header);
        let (loc, pending) = disk.append(&buf, header.index < header.k)?;
        if let Some(p) = pending {
            p.make_durable()?;
        }
        Ok(loc)
    }

    /// Overwrites a (corrupt) shard where it is, durably. Used by heal.
    pub fn rewrite_shard_at(
        &self,
        slot: usize,
        loc: ShardLoc,
        header: &ShardHeader,
        payload: &[u8],
    ) -> Result<()> {
        let topology = self.topology();
        let disk = topology
            .slot(&self.disks, slot)
            .ok_or_else(|| no_slot(slot))?;
        let mut buf = ShardBuf::from_payload(payload);
        buf.set_header(header);
        disk.rewrite(loc, &buf)
    }

    /// Reads bytes `[lo, hi)` of the payload of shard `at` on the disk of slot `slot`,
    /// verified (see [`ShardIo::read`]).
    pub fn read_shard(&self, slot: usize, at: ShardAt<'_>, lo: usize, hi: usize) -> ShardRead {
        let topology = self.topology();
        match topology.slot(&self.disks, slot) {
            Some(d) => d.read(at, lo, hi),
            None => ShardRead::Missing,
        }
    }

    /// The disk of slot `slot` when it is another node's (reads of it may be hedged).
    pub fn remote_disk(&self, slot: usize) -> Option<RemoteDisk> {
        match self.topology().slots.get(slot)? {
            Slot::Remote { disk, .. } => Some(disk.clone()),
            _ => None,
        }
    }

    /// The disk of slot `slot`, for messages.
    pub fn describe_slot(&self, slot: usize) -> String {
        let topology = self.topology();
        match topology.slot(&self.disks, slot) {
            Some(d) => d.describe(),
            None => format!("slot {slot} (gone)"),
        }
    }

    /// Whether a shard is present at `loc` on the disk of slot `slot`, without reading it.
    pub fn shard_present(&self, slot: usize, loc: ShardLoc, shard_len: usize) -> bool {
        self.topology()
            .slot(&self.disks, slot)
            .is_some_and(|d| d.present(loc, shard_len))
    }

    /// Frees the space of one shard at `loc` on the disk of slot `slot` (if it can be reached).
    pub fn release_shard(&self, slot: usize, loc: ShardLoc, shard_len: usize) {
        let topology = self.topology();
        if let Some(d) = topology.slot(&self.disks, slot) {
            d.release(loc, shard_len);
        }
    }

    /// Frees the space of a chunk's shards (`locs[i]` on the slot layout generation `layout`
    /// placed shard `i` on).
    pub fn release(&self, chunk: &[u8; 32], layout: u32, shard_len: usize, locs: &[ShardLoc]) {
        let topology = self.topology();
        let Ok(place) = topology.placement(self.disks.len(), chunk, layout, locs.len()) else {
            tracing::warn!(chunk = %hex::encode(chunk), "shards of unknown layout {layout} not freed");
            return;
        };
        for (i, loc) in locs.iter().enumerate() {
            if loc.is_some() {
                if let Some(d) = place.get(i).and_then(|s| topology.slot(&self.disks, *s)) {
                    d.release(*loc, shard_len);
                }
            }
        }
    }
}

fn no_slot(slot: usize) -> Error {
    Error::Corrupt(format!("no disk slot {slot}"))
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
