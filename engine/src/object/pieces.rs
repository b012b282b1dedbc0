//! References in pieces: how an object of more chunks than one metadata transaction may touch
//! ([`REFS_PER_COMMIT`]) is pinned, committed and copied.
//!
//! Its references are taken first, a transaction per piece, by draft records of this process
//! (a *hold*: released by GC should the process die, like any draft); the commit that installs
//! the object then deletes the hold's records, a few keys, and so hands their references to the
//! manifest without counting a chunk. Letting a large manifest go is the reverse
//! ([`crate::meta::release_piece`]).

use std::sync::Arc;

use super::draft::{encode_record, piece_key, Draft};
use super::Engine;
use crate::error::{Error, Result};
use crate::kv::{Table, Write};
use crate::meta::{chunk_known, incref, ChunkRef, REFS_PER_COMMIT};

/// Run in each piece's transaction before it pins: `false` stops the hold (what it pinned on
/// is gone or changed, so its chunks may be collected); an error fails it.
pub(crate) type HoldCheck = Arc<dyn Fn(&mut dyn Write) -> Result<bool> + Send + Sync>;

/// A check that always lets the hold go on (its chunks are pinned by the caller already).
pub(crate) fn no_check() -> HoldCheck {
    Arc::new(|_| Ok(true))
}

impl Engine {
    /// Makes `copies` new drafts that each pin every chunk of `chunks` — chunks with records
    /// (found by dedup or pinned by the caller), never fresh shards — in transactions of at
    /// most [`REFS_PER_COMMIT`] chunks, each running `check` first, taking every draft's
    /// reference on its piece at once and recording the piece's known MD5s (`md5s`, in the
    /// order of `chunks`, or empty). Returns the drafts, or `None` when a `check` said no. On
    /// `None` or an error, what was pinned is released.
    pub(crate) async fn hold_in_pieces(
        &self,
        chunks: Vec<ChunkRef>,
        md5s: Vec<Option<[u8; 16]>>,
        copies: usize,
        check: HoldCheck,
    ) -> Result<Option<Vec<Draft>>> {
        let owner = self.owner()?.id.clone();
        let ids: Arc<Vec<String>> = Arc::new((0..copies).map(|_| self.new_draft_id()).collect());
        let chunks = Arc::new(chunks);
        let md5s = Arc::new(md5s);
        let mut made = 0u32;
        let pieces = chunks.len().div_ceil(REFS_PER_COMMIT);
        let mut outcome = Ok(true);
        for i in 0..pieces {
            let (chunks, md5s, ids, owner, check) = (
                chunks.clone(),
                md5s.clone(),
                ids.clone(),
                owner.clone(),
                check.clone(),
            );
            let r = self
                .commit(move |txn| {
                    if !check(txn)? {
                        return Ok(false);
                    }
                    let from = i * REFS_PER_COMMIT;
                    let to = (from + REFS_PER_COMMIT).min(chunks.len());
                    let piece = &chunks[from..to];
                    for (j, c) in piece.iter().enumerate() {
                        if c.is_hole() {
                            continue;
                        }
                        if !chunk_known(txn, c)? {
                            return Err(Error::ChunkCollected(hex::encode(c.hash)));
                        }
                        incref(txn, &c.hash, c.len, None, ids.len() as u64)?;
                        if let Some(Some(m)) = md5s.get(from + j) {
                            txn.put(Table::ChunkMd5, &c.hash, m)?;
                        }
                    }
                    let record = encode_record(&owner, piece);
                    for id in ids.iter() {
                        txn.put(Table::Drafts, &piece_key(id, i as u32), &record)?;
                    }
                    Ok(true)
                })
                .await;
            match r {
                Ok(true) => made += 1,
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        let drafts: Vec<Draft> = ids
            .iter()
            .map(|id| Draft::with_pieces(id.clone(), made))
            .collect();
        match outcome {
            Ok(true) => Ok(Some(drafts)),
            other => {
                for d in drafts {
                    self.close_draft(d);
                }
                other.map(|_| None)
            }
        }
    }
}
