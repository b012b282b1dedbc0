//! The data directory's format file, checked at open.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the on-disk format this build writes (see docs/format.md).
pub const FORMAT_VERSION: u32 = 6;
/// The oldest version this build reads: version 4 only added holes to manifests, version 5
/// object versions (a `versions` table, optional fields in object and bucket records) and
/// version 6 compressed chunks and inline objects (an optional tail on chunk records, a third
/// manifest variant), so a version 3 to 5 directory is valid version 6 and is upgraded in place
/// (its format file rewritten) at open. Older builds refuse a version 6 directory, which may
/// hold data they would read as garbage.
pub const OLDEST_READABLE_VERSION: u32 = 3;
/// Name of the format file in the data directory.
pub const FORMAT_FILE: &str = "predastore.json";

/// Contents of `predastore.json`: what may never change for the life of a data directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FormatInfo {
    /// On-disk format version.
    pub format_version: u32,
    /// Random id shared by all disks of this set.
    pub set_id: String,
    /// Data shards per chunk.
    pub data_shards: usize,
    /// Parity shards per chunk.
    pub parity_shards: usize,
    /// Number of disks in the set (placement is computed over them).
    pub disks: usize,
}

impl FormatInfo {
    /// Reads the format file; `None` for a new data directory. Fails on a version this build
    /// does not read.
    pub fn load(data_dir: &Path) -> Result<Option<FormatInfo>> {
        let path = data_dir.join(FORMAT_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
        let found = v
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::Format(format!("{}: no format_version", path.display())))?;
        if !(OLDEST_READABLE_VERSION as u64..=FORMAT_VERSION as u64).contains(&found) {
            return Err(Error::FormatVersion {
                path,
                found: found as u32,
                expected: FORMAT_VERSION,
            });
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error::Format(format!("{}: {e}", path.display())))
    }

    /// Writes the format file atomically.
    pub fn store(&self, data_dir: &Path, fsync: bool) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Format(e.to_string()))?;
        crate::fsutil::write_atomic(&data_dir.join(FORMAT_FILE), &bytes, fsync)
    }
}
