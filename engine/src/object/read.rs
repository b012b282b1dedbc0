//! Reading objects: head, get (whole, ranged, by part), extents.

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use super::ObjectBody;
use crate::error::{Error, Result};
use crate::meta::{object_key, Manifest, ObjectMeta};

use super::version::{self, VersionSel};
use super::Engine;

/// A requested byte range, as in an HTTP `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive; `last` is clamped to the object).
    FromTo(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes into `[start, end)`.
    pub fn resolve(&self, size: u64) -> Result<(u64, u64)> {
        let bad = Err(Error::InvalidRange { size });
        match *self {
            ByteRange::FromTo(a, b) => {
                if a >= size || b < a {
                    return bad;
                }
                Ok((a, b.min(size - 1) + 1))
            }
            ByteRange::From(a) => {
                if a >= size {
                    return bad;
                }
                Ok((a, size))
            }
            ByteRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return bad;
                }
                Ok((size.saturating_sub(n), size))
            }
        }
    }
}

/// The answer to a get: metadata, the byte range served, and the bytes.
pub struct GetObject {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// `[start, end)` of the bytes in `body`.
    pub range: (u64, u64),
    /// The bytes.
    pub body: ObjectBody,
}

impl Engine {
    /// An object's metadata, or `NoSuchKey` (also when its latest version is a delete marker:
    /// [`Error::DeleteMarker`]).
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.head_object_version(bucket, key, &VersionSel::Latest)
    }

    /// The metadata of the version `sel` names (`NoSuchVersion` when there is none; a delete
    /// marker is [`Error::DeleteMarker`]).
    pub fn head_object_version(
        &self,
        bucket: &str,
        key: &str,
        sel: &VersionSel,
    ) -> Result<ObjectMeta> {
        let txn = self.read()?;
        Ok(version::locate_readable(&txn, bucket, key, &object_key(bucket, key), sel)?.1)
    }

    /// An object version's metadata and manifest, read in one transaction.
    pub(crate) fn object_with_manifest(
        &self,
        bucket: &str,
        key: &str,
        sel: &VersionSel,
    ) -> Result<(ObjectMeta, Manifest)> {
        let txn = self.read()?;
        let (_, meta) = version::locate_readable(&txn, bucket, key, &object_key(bucket, key), sel)?;
        let m = crate::meta::read_manifest(&txn, &meta.data_id, key)?;
        Ok((meta, m))
    }

    /// Byte offsets of part `n` (1-based) of a multipart object, as `[start, end)`.
    pub fn part_range(&self, bucket: &str, key: &str, part: u32) -> Result<(u64, u64)> {
        let (meta, parts) = self.part_sizes(bucket, key)?;
        part_bounds(meta.size, &parts, part)
    }

    /// An object's metadata and the sizes of its parts, in order (none: not a multipart
    /// object), read in one transaction.
    pub fn part_sizes(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, Vec<u64>)> {
        self.version_part_sizes(bucket, key, &VersionSel::Latest)
    }

    /// [`Engine::part_sizes`] of the version `sel` names.
    pub fn version_part_sizes(
        &self,
        bucket: &str,
        key: &str,
        sel: &VersionSel,
    ) -> Result<(ObjectMeta, Vec<u64>)> {
        let (meta, m) = self.object_with_manifest(bucket, key, sel)?;
        let parts = match m {
            Manifest::Chunks { part_sizes, .. } => part_sizes,
            Manifest::Inline(_) => Vec::new(),
        };
        Ok((meta, parts))
    }

    /// The byte ranges `[start, end)` of an object that hold data, in order and merged (holes
    /// left out; an inline object is all data), with the metadata of the version they describe.
    pub fn object_extents(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, Vec<(u64, u64)>)> {
        let (meta, m) = self.object_with_manifest(bucket, key, &VersionSel::Latest)?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        match &m {
            Manifest::Inline(d) if !d.is_empty() => out.push((0, d.len() as u64)),
            Manifest::Inline(_) => {}
            Manifest::Chunks { chunks, .. } => {
                let mut at = 0u64;
                for c in chunks {
                    let end = at + c.len as u64;
                    if !c.is_hole() {
                        match out.last_mut() {
                            Some((_, e)) if *e == at => *e = end,
                            _ => out.push((at, end)),
                        }
                    }
                    at = end;
                }
            }
        }
        Ok((meta, out))
    }

    /// Streams an object, or the byte range of it. Only the chunks (and, within a chunk, the data
    /// shards) the range touches are read.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject> {
        self.get_object_with(bucket, key, &VersionSel::Latest, |_, _| {
            Ok::<_, Error>(range)
        })
        .await?
    }

    /// A get of the version `sel` names whose preconditions and range are decided on the very
    /// version it serves: `decide`
    /// sees the object's metadata and part sizes (empty unless multipart) as read in the same
    /// transaction as the data layout, and returns the range to serve or its own error (e.g. a
    /// failed `If-Match`). So an overwrite between the check and the read cannot serve the new
    /// version under a condition checked against the old one.
    pub async fn get_object_with<F, E>(
        &self,
        bucket: &str,
        key: &str,
        sel: &VersionSel,
        decide: F,
    ) -> Result<std::result::Result<GetObject, E>>
    where
        F: FnOnce(&ObjectMeta, &[u64]) -> std::result::Result<Option<ByteRange>, E>,
    {
        let (meta, manifest) = self.object_with_manifest(bucket, key, sel)?;
        let parts: &[u64] = match &manifest {
            Manifest::Chunks { part_sizes, .. } => part_sizes,
            Manifest::Inline(_) => &[],
        };
        let range = match decide(&meta, parts) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let (start, end) = match range {
            Some(r) => r.resolve(meta.size)?,
            None => (0, meta.size),
        };
        let body: ObjectBody = match manifest {
            Manifest::Inline(data) => {
                let b = Bytes::from(data).slice(start as usize..end as usize);
                Box::pin(stream::once(async move { Ok(b) }))
            }
            Manifest::Chunks { chunks, .. } => {
                let mut pieces = Vec::new();
                let mut off = 0u64;
                for c in chunks {
                    let (cs, ce) = (off, off + c.len as u64);
                    off = ce;
                    if ce <= start || cs >= end {
                        continue;
                    }
                    let a = start.max(cs) - cs;
                    let b = end.min(ce) - cs;
                    pieces.push((c, a as usize, b as usize));
                }
                let me = self.clone();
                let depth = self.inner.cfg.pipeline_depth;
                Box::pin(
                    stream::iter(pieces)
                        .map(move |(c, a, b)| {
                            let me = me.clone();
                            async move {
                                tokio::task::spawn_blocking(move || {
                                    me.inner.chunks.read_chunk(&c, a, b)
                                })
                                .await?
                            }
                        })
                        .buffered(depth)
                        .flat_map(|r| {
                            stream::iter(match r {
                                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                                Err(e) => vec![Err(e)],
                            })
                        }),
                )
            }
        };
        // The first piece is read before answering: a chunk that cannot be read (too few
        // shards reachable) fails the get with its error, instead of a response whose body
        // breaks off after its headers promised a length.
        let mut body = body;
        let body: ObjectBody = match body.next().await {
            Some(Err(e)) => return Err(e),
            Some(Ok(first)) => Box::pin(stream::once(async move { Ok(first) }).chain(body)),
            None => body,
        };
        Ok(Ok(GetObject {
            meta,
            range: (start, end),
            body,
        }))
    }
}

/// Byte offsets `[start, end)` of part `part` (1-based) of an object of `size` bytes with
/// these part sizes (none: a single put, whose only part is the whole object).
pub fn part_bounds(size: u64, part_sizes: &[u64], part: u32) -> Result<(u64, u64)> {
    if part_sizes.is_empty() {
        return match part {
            1 => Ok((0, size)),
            _ => Err(Error::InvalidPart(format!("part {part} does not exist"))),
        };
    }
    if part == 0 || part as usize > part_sizes.len() {
        return Err(Error::InvalidPart(format!("part {part} does not exist")));
    }
    let start: u64 = part_sizes[..part as usize - 1].iter().sum();
    Ok((start, start + part_sizes[part as usize - 1]))
}

/// Whether an ETag condition (quoted or not, or `*`) matches `etag`.
pub fn etag_matches(cond: &str, etag: &str) -> bool {
    cond.split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}
