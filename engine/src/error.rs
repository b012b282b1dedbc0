//! Typed errors of the storage engine.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine. Front doors map these onto S3 error codes or errnos.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket name breaks the S3 naming rules.
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The object key is empty or contains a forbidden character.
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    /// The object key is longer than S3 allows (1024 bytes).
    #[error("the object key is {len} bytes, longer than the 1024 allowed")]
    KeyTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The bucket does not exist.
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    /// The bucket exists already.
    #[error("bucket {0:?} already exists")]
    BucketAlreadyExists(String),
    /// The bucket exists and belongs to someone else than the one creating it.
    #[error("bucket {0:?} already exists and belongs to another key")]
    BucketTaken(String),
    /// The request is not allowed (see [`crate::access`]).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// No key has this access key id or name.
    #[error("no key {0:?}")]
    NoSuchAccessKey(String),
    /// Another key has this name already.
    #[error("a key named {0:?} exists already")]
    KeyNameTaken(String),
    /// A key name outside 1..=64 of `A-Za-z0-9+=,.@_-`.
    #[error("invalid key name {0:?}: use 1 to 64 letters, digits and +=,.@_-")]
    InvalidKeyName(String),
    /// An ACL in a bucket whose ownership setting (BucketOwnerEnforced) disables them.
    #[error("the bucket does not allow ACLs")]
    AclNotSupported,
    /// BucketOwnerEnforced asked for a bucket that has an ACL.
    #[error("the bucket has an ACL: BucketOwnerEnforced needs a private bucket")]
    AclWithOwnership,
    /// An ACL grant names a key that does not exist.
    #[error("no key {0:?} to grant to")]
    InvalidGrantee(String),
    /// A bucket policy S3 would refuse, and why.
    #[error("malformed policy: {0}")]
    MalformedPolicy(String),
    /// CORS rules S3 would refuse, and why.
    #[error("invalid CORS configuration: {0}")]
    InvalidCors(String),
    /// A notification configuration S3 would refuse, and why.
    #[error("invalid notification configuration: {0}")]
    InvalidNotification(String),
    /// The bucket has no policy.
    #[error("bucket {0:?} has no policy")]
    NoSuchBucketPolicy(String),
    /// The bucket still holds objects.
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The object does not exist.
    #[error("object {bucket}/{key} does not exist")]
    NoSuchKey {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// A `versionId` that is neither `null` nor an id this store makes.
    #[error("invalid version id {0:?}")]
    InvalidVersionId(String),
    /// The object has no version with the id asked for.
    #[error("the object {key:?} has no such version")]
    NoSuchVersion {
        /// Object key.
        key: String,
    },
    /// The version asked for is a delete marker: the latest (S3's 404) or named by its id
    /// (S3's 405).
    #[error("object {bucket}/{key} is a delete marker")]
    DeleteMarker {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// The marker's version id.
        version_id: String,
        /// Whether the request named the marker by its version id.
        by_id: bool,
        /// When the marker was made, ns since the epoch.
        last_modified_ns: i64,
    },
    /// A lifecycle configuration S3 would refuse: `malformed` for what its schema forbids
    /// (`MalformedXML`), otherwise a value out of range or rules in conflict
    /// (`InvalidArgument`).
    #[error("invalid lifecycle configuration: {reason}")]
    InvalidLifecycle {
        /// Why.
        reason: String,
        /// Whether S3 calls it malformed XML.
        malformed: bool,
    },
    /// A default retention of no days.
    #[error("the default retention period must be a positive number of days or years")]
    InvalidRetentionPeriod,
    /// Object lock settings in a write or request to a bucket without object lock.
    #[error("the bucket has no object lock configuration")]
    LockNotEnabled,
    /// The bucket's state does not allow the request (e.g. suspending versioning under
    /// object lock).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(&'static str),
    /// The version is protected by object lock (retention or legal hold).
    #[error("object {key:?} is locked: {reason}")]
    ObjectLocked {
        /// Object key.
        key: String,
        /// Which protection.
        reason: &'static str,
    },
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("multipart upload {0} does not exist")]
    NoSuchUpload(String),
    /// A conditional operation's precondition does not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(&'static str),
    /// The requested byte range lies outside the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    InvalidRange {
        /// Size of the object.
        size: u64,
    },
    /// A part named in a multipart completion is unknown or its ETag does not match.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// Parts in a multipart completion are not in ascending order.
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is below the minimum part size.
    #[error("part {part} is {size} bytes, below the minimum of {min} bytes")]
    EntityTooSmall {
        /// Part number.
        part: u32,
        /// Its size.
        size: u64,
        /// The minimum allowed.
        min: u64,
    },
    /// A part number outside 1..=10000.
    #[error("part number {0} is outside 1..=10000")]
    InvalidPartNumber(u32),
    /// Fewer disks than the write quorum accepted a chunk.
    #[error("write quorum not reached: {written} of {needed} shards could be stored")]
    WriteQuorum {
        /// Shards durably written.
        written: usize,
        /// Shards required.
        needed: usize,
    },
    /// Fewer disks than the write quorum accepted a chunk because the others are full.
    #[error("no space left on the disks: {written} of {needed} shards could be stored, {full} disks full")]
    NoSpace {
        /// Shards durably written.
        written: usize,
        /// Shards required.
        needed: usize,
        /// Disks that refused a shard for lack of space.
        full: usize,
    },
    /// Too few intact shards remain to rebuild a chunk.
    #[error("chunk {chunk} is unreadable: {intact} intact shards, {needed} needed")]
    ReadQuorum {
        /// Hex chunk hash.
        chunk: String,
        /// Intact shards found.
        intact: usize,
        /// Shards required.
        needed: usize,
    },
    /// A chunk's shards were placed by a cluster layout this node does not know yet (another
    /// node made it moments ago; the node reloads the layouts within a second or two).
    #[error("chunk placed by cluster layout {0}, which this node has not loaded yet; retry")]
    LayoutUnknown(u32),
    /// A chunk a write found stored already (deduplicated) had no record left when the write
    /// committed: in a cluster, another node's GC collected it meanwhile (on one machine the
    /// GC lock rules that out, and this means damaged metadata). Nothing was changed; the
    /// write may be sent again.
    #[error(
        "chunk {0}, found stored already, was collected before this write committed; send it again"
    )]
    ChunkCollected(String),
    /// In a cluster, a write came to its commit later than
    /// [`crate::EngineConfig::write_limit`] after it began storing a chunk's shards: the commit
    /// is refused (those shards are left to the orphan sweep), and the write may be sent again.
    #[error(
        "the write took {held:?} from storing its data to committing it, longer than the \
         {limit:?} a cluster allows; send it again (a large object as a multipart upload)"
    )]
    WriteTooSlow {
        /// How long the oldest shard had waited.
        held: std::time::Duration,
        /// The limit.
        limit: std::time::Duration,
    },
    /// Data read back does not match its hash even after reconstruction.
    #[error("data corruption in chunk {0}")]
    Corrupt(String),
    /// The data directory was written by another on-disk format version.
    #[error("{path} has on-disk format version {found}; this build reads version {expected}")]
    FormatVersion {
        /// File holding the version.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },
    /// The data directory or a disk is not what it should be.
    #[error("data directory: {0}")]
    Format(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(#[from] StoreError),
    /// A metadata record could not be decoded.
    #[error("metadata record is corrupt: {0}")]
    Decode(String),
    /// An I/O error (disk or input stream).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine is closing.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A long operation was interrupted on request.
    #[error("operation interrupted")]
    Interrupted,
}

/// A failure of the metadata store underneath ([`crate::kv`]), whichever implementation it is.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct StoreError {
    source: Box<dyn std::error::Error + Send + Sync>,
    no_space: bool,
}

impl StoreError {
    /// Wraps an implementation's error; `no_space`: the store ran out of room.
    pub fn new(source: impl std::error::Error + Send + Sync + 'static, no_space: bool) -> Self {
        StoreError {
            source: Box::new(source),
            no_space,
        }
    }

    /// Whether the store ran out of space: its map (`storage.map_size`) or the filesystem
    /// holding it.
    pub fn is_no_space(&self) -> bool {
        self.no_space
    }
}

/// Whether an I/O error means "out of space" (a full disk or an exhausted quota).
pub fn io_is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl Error {
    /// Whether the operation failed for lack of space: on the disks (shards), on the
    /// filesystem holding the metadata, or in the metadata map (`storage.map_size`).
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NoSpace { .. } => true,
            Error::Io(e) => io_is_no_space(e),
            Error::Meta(e) => e.is_no_space(),
            _ => false,
        }
    }
}

impl From<rmp_serde::encode::Error> for Error {
    fn from(e: rmp_serde::encode::Error) -> Self {
        Error::Decode(e.to_string())
    }
}

impl From<rmp_serde::decode::Error> for Error {
    fn from(e: rmp_serde::decode::Error) -> Self {
        Error::Decode(e.to_string())
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Io(std::io::Error::other(e))
    }
}
