//! The S3 layer's access hook: called for every request it has routed, before the operation
//! runs. It names the operation for the access log and the metrics ([`RoutedOp`]), says who
//! is asking ([`Caller`], left in the request's extensions for the operations), maps the
//! operation onto the actions it needs ([`wanted`]) and asks the engine's access layer
//! ([`engine::Engine::authorize`]) for each. The decision itself is the engine's.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use engine::access::{AccessRequest, Action, Listing, Origin};
use engine::{Engine, Principal};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{CopyObjectInput, CopySource, PostObjectInput, UploadPartCopyInput};
use s3s::{S3Request, S3Result};

use crate::errors::s3_err;

/// Where the S3 layer leaves the name of the operation it routed a request to; put into the
/// request's extensions before the request goes in, read once the response is out.
#[derive(Clone, Default)]
pub struct RoutedOp(Arc<OnceLock<&'static str>>);

impl RoutedOp {
    /// The routed operation's name (`GetBucketPolicy`, `UploadPartCopy`, …); `None` when the
    /// request never reached routing (a bad signature, a malformed path).
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }

    fn set(&self, name: &'static str) {
        let _ = self.0.set(name);
    }
}

/// Operation names as `&'static str` (the metrics key on them). The S3 layer knows about a
/// hundred operations: the set stays that small.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let Ok(mut names) = NAMES.get_or_init(Default::default).lock() else {
        return "Other";
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(n);
    n
}

/// Who made a request and from where: in the extensions of every request that passed the
/// access hook.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal.
    pub principal: Principal,
    /// Where from.
    pub origin: Origin,
}

impl Caller {
    /// The caller of `req` (an anonymous one if the hook did not run, which it always does).
    pub fn of<T>(req: &S3Request<T>) -> Caller {
        req.extensions.get::<Caller>().cloned().unwrap_or(Caller {
            principal: Principal::Anonymous,
            origin: Origin::default(),
        })
    }

    /// Asks the engine whether this caller may make `req`.
    pub fn authorize(&self, engine: &Engine, req: AccessRequest<'_>) -> S3Result<()> {
        engine
            .authorize(&self.principal, self.origin, req)
            .map_err(s3_err)
    }
}

/// A request's headers, as policy conditions read them.
#[derive(Debug)]
struct Headers<'a>(&'a http::HeaderMap);

impl engine::access::policy::RequestHeaders for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The access hook.
pub struct Access {
    /// The configured keys: administrators.
    pub admins: Arc<HashSet<String>>,
    /// The engine that decides.
    pub engine: Engine,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = intern(cx.s3_op().name());
        if let Some(slot) = cx.extensions_mut().get::<RoutedOp>() {
            slot.set(name);
        }
        let principal = match cx.credentials() {
            Some(c) if self.admins.contains(&c.access_key) => Principal::Admin,
            Some(c) => Principal::Key(c.access_key.clone()),
            None => Principal::Anonymous,
        };
        let origin = cx
            .extensions_mut()
            .get::<Origin>()
            .copied()
            .unwrap_or_default();
        let caller = Caller { principal, origin };
        let (bucket, key) = match cx.s3_path() {
            s3s::path::S3Path::Root => ("", None),
            s3s::path::S3Path::Bucket { bucket } => (bucket.as_ref(), None),
            s3s::path::S3Path::Object { bucket, key } => (bucket.as_ref(), Some(key.as_ref())),
        };
        let query = cx.uri().query().unwrap_or_default();
        let pairs = crate::precheck::query_pairs(query);
        let param = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_ref());
        let bypass = cx
            .headers()
            .get("x-amz-bypass-governance-retention")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let versioned = param("versionId").is_some();
        let headers = Headers(cx.headers());
        let listing = Listing {
            prefix: param("prefix").unwrap_or_default(),
            delimiter: param("delimiter"),
            max_keys: param("max-keys"),
        };
        for action in wanted(name, versioned, bypass) {
            let listing = matches!(
                action,
                Action::ListBucket
                    | Action::ListBucketVersions
                    | Action::ListBucketMultipartUploads
            )
            .then_some(listing);
            // HeadBucket is ListBucket without a listing (a grant on a prefix does not cover it).
            let listing = listing.filter(|_| name != "HeadBucket");
            let req = AccessRequest {
                action,
                bucket,
                key,
                version_id: param("versionId"),
                listing,
                headers: Some(&headers),
            };
            caller.authorize(&self.engine, req)?;
        }
        cx.extensions_mut().insert(caller);
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        authorize_source(&self.engine, &Caller::of(req), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        authorize_source(&self.engine, &Caller::of(req), &req.input.copy_source)
    }

    /// A browser form upload (its signature, expiry and policy conditions already checked by
    /// the S3 layer): s3:PutObject on the key the form names, as its signer (or anonymous).
    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        let caller = Caller::of(req);
        let headers = Headers(&req.headers);
        let mut ask =
            AccessRequest::new(Action::PutObject, &req.input.bucket, Some(&req.input.key));
        ask.headers = Some(&headers);
        caller.authorize(&self.engine, ask)
    }
}

/// A copy reads its source: the caller needs GetObject (GetObjectVersion) on it.
fn authorize_source(engine: &Engine, caller: &Caller, source: &CopySource) -> S3Result<()> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = source
    else {
        return Err(s3s::s3_error!(
            NotImplemented,
            "Copying from an access point is not supported"
        ));
    };
    let action = if version_id.is_some() {
        Action::GetObjectVersion
    } else {
        Action::GetObject
    };
    let mut req = AccessRequest::new(action, bucket, Some(key));
    req.version_id = version_id.as_deref();
    caller.authorize(engine, req)
}

/// The actions S3 operation `op` needs (several for some): `versioned` when it names a
/// version, `bypass` when it asks to bypass governance retention. DeleteObjects needs none
/// here: each of its keys is decided on its own by the operation; nor does PostObject (its
/// key is in the form, read after this). An operation this server
/// does not map needs an action no key is granted (only administrators pass).
pub fn wanted(op: &str, versioned: bool, bypass: bool) -> Vec<Action> {
    use Action as A;
    let v = |plain: A, version: A| if versioned { version } else { plain };
    let one = match op {
        "ListBuckets" => A::ListAllMyBuckets,
        "CreateBucket" => A::CreateBucket,
        "DeleteBucket" => A::DeleteBucket,
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => A::ListBucket,
        "ListObjectVersions" => A::ListBucketVersions,
        "ListMultipartUploads" => A::ListBucketMultipartUploads,
        "GetBucketLocation" => A::GetBucketLocation,
        "GetBucketVersioning" => A::GetBucketVersioning,
        "PutBucketVersioning" => A::PutBucketVersioning,
        "GetObject" | "HeadObject" => v(A::GetObject, A::GetObjectVersion),
        "GetObjectAttributes" => v(A::GetObjectAttributes, A::GetObjectVersionAttributes),
        "PutObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "CopyObject"
        | "UploadPartCopy" => A::PutObject,
        // A browser form names its key in the form: decided once it is read (`post_object`).
        "PostObject" => return Vec::new(),
        "DeleteObject" => v(A::DeleteObject, A::DeleteObjectVersion),
        "DeleteObjects" => return Vec::new(),
        "AbortMultipartUpload" => A::AbortMultipartUpload,
        "ListParts" => A::ListMultipartUploadParts,
        "GetObjectTagging" => v(A::GetObjectTagging, A::GetObjectVersionTagging),
        "PutObjectTagging" => v(A::PutObjectTagging, A::PutObjectVersionTagging),
        "DeleteObjectTagging" => v(A::DeleteObjectTagging, A::DeleteObjectVersionTagging),
        "GetObjectAcl" => v(A::GetObjectAcl, A::GetObjectVersionAcl),
        "PutObjectAcl" => v(A::PutObjectAcl, A::PutObjectVersionAcl),
        "GetObjectRetention" => A::GetObjectRetention,
        "PutObjectRetention" => A::PutObjectRetention,
        "GetObjectLegalHold" => A::GetObjectLegalHold,
        "PutObjectLegalHold" => A::PutObjectLegalHold,
        "RestoreObject" => A::RestoreObject,
        "GetBucketPolicy" => A::GetBucketPolicy,
        "PutBucketPolicy" => A::PutBucketPolicy,
        "DeleteBucketPolicy" => A::DeleteBucketPolicy,
        "GetBucketPolicyStatus" => A::GetBucketPolicyStatus,
        "GetBucketAcl" => A::GetBucketAcl,
        "PutBucketAcl" => A::PutBucketAcl,
        "GetBucketCors" => A::GetBucketCORS,
        "PutBucketCors" | "DeleteBucketCors" => A::PutBucketCORS,
        "GetBucketTagging" => A::GetBucketTagging,
        "PutBucketTagging" | "DeleteBucketTagging" => A::PutBucketTagging,
        "GetBucketLifecycleConfiguration" | "GetBucketLifecycle" => A::GetLifecycleConfiguration,
        "PutBucketLifecycleConfiguration" | "PutBucketLifecycle" | "DeleteBucketLifecycle" => {
            A::PutLifecycleConfiguration
        }
        "GetObjectLockConfiguration" => A::GetBucketObjectLockConfiguration,
        "PutObjectLockConfiguration" => A::PutBucketObjectLockConfiguration,
        "GetPublicAccessBlock" => A::GetBucketPublicAccessBlock,
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => A::PutBucketPublicAccessBlock,
        "GetBucketOwnershipControls" => A::GetBucketOwnershipControls,
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            A::PutBucketOwnershipControls
        }
        "GetBucketNotificationConfiguration" => A::GetBucketNotification,
        "PutBucketNotificationConfiguration" => A::PutBucketNotification,
        "GetBucketEncryption" => A::GetEncryptionConfiguration,
        "PutBucketEncryption" | "DeleteBucketEncryption" => A::PutEncryptionConfiguration,
        "GetBucketLogging" => A::GetBucketLogging,
        "PutBucketLogging" => A::PutBucketLogging,
        "GetBucketWebsite" => A::GetBucketWebsite,
        "PutBucketWebsite" => A::PutBucketWebsite,
        "DeleteBucketWebsite" => A::DeleteBucketWebsite,
        "GetBucketReplication" => A::GetReplicationConfiguration,
        "PutBucketReplication" | "DeleteBucketReplication" => A::PutReplicationConfiguration,
        "GetBucketRequestPayment" => A::GetBucketRequestPayment,
        "PutBucketRequestPayment" => A::PutBucketRequestPayment,
        "GetBucketAccelerateConfiguration" => A::GetAccelerateConfiguration,
        "PutBucketAccelerateConfiguration" => A::PutAccelerateConfiguration,
        // Everything else (analytics, inventory, metrics, intelligent tiering, select, …):
        // this server implements none of it; an administrator gets NotImplemented from the
        // operation, and nobody else learns more than AccessDenied.
        _ => A::PutIntelligentTieringConfiguration,
    };
    let mut out = vec![one];
    if bypass && matches!(op, "DeleteObject" | "PutObjectRetention") {
        out.push(A::BypassGovernanceRetention);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_bypass_need_their_own_actions() {
        assert_eq!(
            wanted("GetObject", true, false),
            vec![Action::GetObjectVersion]
        );
        assert_eq!(wanted("HeadObject", false, false), vec![Action::GetObject]);
        assert_eq!(
            wanted("DeleteObject", true, true),
            vec![
                Action::DeleteObjectVersion,
                Action::BypassGovernanceRetention
            ]
        );
        assert!(wanted("DeleteObjects", false, true).is_empty());
        assert_eq!(wanted("SelectObjectContent", false, false).len(), 1);
    }
}
