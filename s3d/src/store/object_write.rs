//! Writing and deleting objects: PutObject, DeleteObject, DeleteObjects.

use super::*;

pub(super) async fn put_object(
    s: &Store,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let (expected, mut i) = expected!(req)?;
    // Refused before its body is read (a bad header, an ACL the bucket refuses): the client is
    // still sending it, so a small body is read and dropped first — the client then sees the
    // error rather than a reset connection.
    let refused = |e, body| async move {
        drain_small(body, s.body_idle).await;
        Err(e)
    };
    let mut attrs = match attrs_of!(s, i, i.tagging.clone()) {
        Ok(a) => a,
        Err(e) => return refused(e, i.body.take()).await,
    };
    attrs.lock = match lock_of!(i) {
        Ok(l) => l,
        Err(e) => return refused(e, i.body.take()).await,
    };
    attrs.acl = match object_acl!(s, i) {
        Ok(a) => a,
        Err(e) => return refused(e, i.body.take()).await,
    };
    let (if_none_match, if_match) = write_conditions(i.if_match.as_ref(), i.if_none_match.as_ref());
    let opts = PutOptions {
        attrs,
        if_none_match,
        if_match,
        late_checksums: None,
        min_part_size: None,
    };
    let m = s
        .store_body(&i.bucket, &i.key, i.body, expected, opts)
        .await?;
    let c = checksums_out(
        &m,
        Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
        true,
    );
    Ok(S3Response::new(with_checksums!(PutObjectOutput, c, {
        e_tag: Some(etag(&m)),
        version_id: written_version(&m),
        expiration: lifecycle::expiration_header(s, &i.bucket, &m),
    })))
}

pub(super) async fn delete_object(s: &Store, i: DeleteObjectInput) -> S3Result<DeleteObjectOutput> {
    let sel = version_sel(&i.version_id)?;
    if let Some(c) = &i.if_match {
        match s.engine.head_object_version(&i.bucket, &i.key, &sel) {
            Ok(m) if c.is_any() || c.as_etag().is_some_and(|e| e.value() == m.etag) => {}
            Ok(_) => {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ))
            }
            Err(engine::Error::NoSuchKey { .. } | engine::Error::DeleteMarker { .. }) => {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."))
            }
            Err(e) => return Err(s3_err(e)),
        }
    }
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    let d = s
        .engine
        .delete_object_version_bypassing(&i.bucket, &i.key, sel, bypass)
        .await
        .map_err(s3_err)?;
    Ok(DeleteObjectOutput {
        delete_marker: d.delete_marker.then_some(true),
        version_id: d.version_id,
        ..Default::default()
    })
}

/// DeleteObjects: each key is decided on its own (a key the caller may not delete is an
/// `AccessDenied` entry among the errors, and stays).
pub(super) async fn delete_objects(
    s: &Store,
    caller: &Caller,
    i: DeleteObjectsInput,
) -> S3Result<DeleteObjectsOutput> {
    s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    if i.delete.objects.len() > 1000 {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema (at most 1000 keys)"));
    }
    let quiet = i.delete.quiet.unwrap_or(false);
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in i.delete.objects {
        let res = match version_sel(&o.version_id) {
            Err(e) => Err(e),
            Ok(sel) => match may_delete(s, caller, &i.bucket, &o, bypass) {
                Err(e) => Err(e),
                Ok(()) => s
                    .engine
                    .delete_object_version_bypassing(&i.bucket, &o.key, sel, bypass)
                    .await
                    .map_err(s3_err),
            },
        };
        match res {
            Ok(d) => {
                if !quiet {
                    // A delete marker made or removed is named by its version id.
                    let marker_id = d.delete_marker.then(|| d.version_id.clone()).flatten();
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        version_id: o.version_id,
                        delete_marker: d.delete_marker.then_some(true),
                        delete_marker_version_id: marker_id,
                    })
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_string()),
                key: Some(o.key),
                message: e.message().map(String::from),
                version_id: o.version_id,
            }),
        }
    }
    Ok(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    })
}

/// Whether `caller` may delete `o` (its version, when named; bypassing governance retention,
/// when asked).
fn may_delete(
    s: &Store,
    caller: &Caller,
    bucket: &str,
    o: &ObjectIdentifier,
    bypass: bool,
) -> S3Result<()> {
    use engine::access::{AccessRequest, Action};
    let action = if o.version_id.is_some() {
        Action::DeleteObjectVersion
    } else {
        Action::DeleteObject
    };
    let mut req = AccessRequest::new(action, bucket, Some(&o.key));
    req.version_id = o.version_id.as_deref();
    caller.authorize(&s.engine, req)?;
    if bypass {
        req.action = Action::BypassGovernanceRetention;
        caller.authorize(&s.engine, req)?;
    }
    Ok(())
}

/// Bodies up to this size are read and dropped when a write is refused before its body.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads and drops what is left of a refused write's body, if it is small and keeps coming
/// (each piece within `idle`); a larger one is left, and the connection closes.
async fn drain_small(body: Option<StreamingBlob>, idle: std::time::Duration) {
    let Some(mut body) = body else {
        return;
    };
    let mut read = 0;
    while read <= DRAIN_LIMIT {
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(b))) => read += b.len(),
            _ => return,
        }
    }
}
