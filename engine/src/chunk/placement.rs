//! Where a chunk's shards go when the disks belong to several machines (cluster mode): rendezvous
//! hashing over (member, disk) pairs with the member as the failure domain.
//!
//! A [`Layout`] is the members with their disk counts and the codec's `k + m`. It allows each
//! member at most `cap` shards of any chunk, chosen so that losing the most members possible
//! loses at most `m` shards of every chunk: with 4 + 2 on three members `cap` is 2 (any one member
//! may be lost), on six members 1 (any two). A layout in which every chunk cannot survive the
//! loss of one member is refused, with the reason.
//!
//! Every (shard, member, disk) triple gets a score (BLAKE3 of the chunk hash, the shard index,
//! the member id and the disk); taken best first, a triple places its shard unless the shard is
//! placed, the disk taken or the member at its cap. Scores depend on nothing but those, so the
//! members' order does not matter, and a member joining or leaving moves the shards whose best
//! place it is or was, plus those its cap pushes along (1.17–1.43 × the minimum for 4 + 2 on
//! 3–11 members: see the tests). The single-node engine keeps its own placement over disk
//! positions ([`super::disks::DiskSet::placement`]): this one is for the nodes of a cluster,
//! one layout per generation of its membership (a chunk's record names the generation that
//! placed it; rebalance moves chunks to the newest, [`super::rebalance`]).

use std::collections::HashSet;

/// A member of the cluster as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Stable, unique id (it is hashed into every score: renaming a member moves its shards).
    pub id: String,
    /// Disks the member holds shards on.
    pub disks: u32,
}

/// The place of one shard: a member (its position in [`Layout::members`]) and one of its disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    /// Position of the member in [`Layout::members`].
    pub member: usize,
    /// One of the member's disks, `0..disks`.
    pub disk: u32,
}

/// Why a layout is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The codec has no data shards.
    #[error("a layout needs at least one data shard")]
    NoData,
    /// Two members share an id.
    #[error("member id {0:?} appears twice")]
    DuplicateMember(String),
    /// Not every chunk could survive the loss of one member.
    #[error(
        "{members} member(s) with {disks} disk(s) in all cannot hold {data} + {parity} shards \
         so that losing one member loses at most {parity} shards of a chunk: {hint}"
    )]
    CannotLoseAMember {
        /// Members in the layout.
        members: usize,
        /// Their disks, all together.
        disks: u64,
        /// The codec's data shards.
        data: usize,
        /// The codec's parity shards.
        parity: usize,
        /// What would make a layout that works.
        hint: String,
    },
}

/// The members, the codec's shape, and the most shards of a chunk one member may hold.
#[derive(Debug, Clone)]
pub struct Layout {
    members: Vec<Member>,
    data: usize,
    parity: usize,
    cap: usize,
    tolerated: usize,
}

impl Layout {
    /// The layout for `members` and a `data + parity` codec, tolerating as many lost members as
    /// their disks allow (at least one, or the layout is refused).
    pub fn new(members: Vec<Member>, data: usize, parity: usize) -> Result<Layout, LayoutError> {
        if data == 0 {
            return Err(LayoutError::NoData);
        }
        let mut seen = HashSet::new();
        for m in &members {
            if !seen.insert(m.id.as_str()) {
                return Err(LayoutError::DuplicateMember(m.id.clone()));
            }
        }
        let n = data + parity;
        // `f` lost members hold at most `f × cap` shards of a chunk, which must not exceed the
        // parity; the room is what the members can hold at that cap.
        for f in (1..=parity).rev() {
            let cap = parity / f;
            let room: usize = members.iter().map(|m| cap.min(m.disks as usize)).sum();
            if room >= n {
                return Ok(Layout {
                    members,
                    data,
                    parity,
                    cap,
                    tolerated: f,
                });
            }
        }
        let disks = members.iter().map(|m| m.disks as u64).sum();
        let hint = if parity == 0 {
            "without parity any lost shard loses the chunk".to_string()
        } else {
            let need = n.div_ceil(parity);
            format!(
                "at most {parity} shard(s) per member needs at least {need} members with \
                 {parity} disk(s) or more each (add members, or choose a codec with more parity)"
            )
        };
        Err(LayoutError::CannotLoseAMember {
            members: members.len(),
            disks,
            data,
            parity,
            hint,
        })
    }

    /// The members, in the order given.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Data shards of the codec it is for.
    pub fn data_shards(&self) -> usize {
        self.data
    }

    /// Parity shards of the codec it is for.
    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    /// Shards of one chunk a member may hold.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Members that may be lost at once with every chunk still readable.
    pub fn tolerated_member_losses(&self) -> usize {
        self.tolerated
    }

    /// Where shards `0..k + m` of `chunk` go, in shard order: distinct (member, disk) pairs,
    /// at most [`cap`](Self::cap) on any member.
    pub fn place(&self, chunk: &[u8; 32]) -> Vec<Place> {
        let n = self.data + self.parity;
        // Every (shard, member, disk) with its score, best first; ties (never seen in
        // practice) go by member id and disk, not by list order.
        let mut all: Vec<(u64, &str, u32, usize, usize)> = Vec::new();
        for (mi, m) in self.members.iter().enumerate() {
            for disk in 0..m.disks {
                for shard in 0..n {
                    all.push((score(chunk, shard, &m.id, disk), &m.id, disk, mi, shard));
                }
            }
        }
        all.sort_unstable_by(|a, b| (b.0, b.1, b.2, b.4).cmp(&(a.0, a.1, a.2, a.4)));
        let mut held = vec![0usize; self.members.len()];
        let mut out: Vec<Option<Place>> = vec![None; n];
        let mut placed = 0;
        for (_, _, disk, member, shard) in all {
            let place = Place { member, disk };
            if out[shard].is_some() || held[member] >= self.cap || out.contains(&Some(place)) {
                continue;
            }
            out[shard] = Some(place);
            held[member] += 1;
            placed += 1;
            if placed == n {
                break;
            }
        }
        // `new` made sure the members have room for every shard at the cap.
        out.into_iter().flatten().collect()
    }
}

/// The score of (member, disk) for shard `shard` of `chunk`.
fn score(chunk: &[u8; 32], shard: usize, member: &str, disk: u32) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(chunk);
    h.update(&(shard as u32).to_le_bytes());
    h.update(&(member.len() as u32).to_le_bytes());
    h.update(member.as_bytes());
    h.update(&disk.to_le_bytes());
    let b = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&b.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests;
