//! The one mapping of engine errors onto errnos, for every filesystem call.

use fuser::Errno;

/// Maps engine errors onto errnos.
pub fn errno(e: &engine::Error) -> Errno {
    use engine::Error as E;
    if e.is_no_space() {
        tracing::warn!("{e}");
        return Errno::ENOSPC;
    }
    match e {
        E::NoSuchBucket(_)
        | E::NoSuchKey { .. }
        | E::NoSuchUpload(_)
        | E::NoSuchVersion { .. }
        | E::DeleteMarker { .. } => Errno::ENOENT,
        E::InvalidBucketName { .. } => Errno::EINVAL,
        E::KeyTooLong { .. } => Errno::ENAMETOOLONG,
        E::InvalidKey(_) | E::InvalidVersionId(_) => Errno::EINVAL,
        E::BucketAlreadyExists(_) | E::BucketTaken(_) => Errno::EEXIST,
        E::AccessDenied(_) => Errno::EACCES,
        E::BucketNotEmpty(_) => Errno::ENOTEMPTY,
        E::PreconditionFailed(_) => Errno::EEXIST,
        E::ObjectLocked { .. } | E::LockNotEnabled | E::InvalidBucketState(_) => Errno::EPERM,
        E::WriteQuorum { .. } | E::ReadQuorum { .. } | E::LayoutUnknown(_) => Errno::EIO,
        E::WriteTooSlow { .. } => {
            tracing::error!("{e}");
            Errno::ETIMEDOUT
        }
        other => {
            tracing::error!("engine error: {other}");
            Errno::EIO
        }
    }
}
