//! The S3 operations: a thin mapping of s3s requests onto the engine, one file per group
//! (buckets, object reads, object writes, copies, listing, tagging, multipart); the `S3` impl
//! below only dispatches.

use std::collections::BTreeMap;

use engine::{
    ByteRange, CopyOptions, Engine, ListQuery, ObjectAttrs, ObjectMeta, PutOptions, VersionSel,
    Versioning,
};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio_util::io::StreamReader;

use crate::access::Caller;
use crate::body::{Expected, VerifyingBody, CHECKSUMS};
use crate::errors::s3_err;

/// The S3 service over one engine.
#[derive(Clone)]
pub struct Store {
    /// The engine.
    pub engine: Engine,
    /// Region reported by GetBucketLocation.
    pub region: String,
    /// How long a request body may stall.
    pub body_idle: std::time::Duration,
    /// Whether S3 clients may set set-uid/set-gid bits and device nodes (`auth.allow_setid_and_devices`).
    pub allow_setid_and_devices: bool,
}

/// What a PutObject or UploadPart request says its body is (Content-MD5, checksums, trailer),
/// and the request's input.
macro_rules! expected {
    ($req:expr) => {{
        let i = &$req.input;
        expected_from(
            i.content_md5.as_ref(),
            i.checksum_algorithm.as_ref(),
            [
                i.checksum_crc32.as_ref(),
                i.checksum_crc32c.as_ref(),
                i.checksum_crc64nvme.as_ref(),
                i.checksum_sha1.as_ref(),
                i.checksum_sha256.as_ref(),
            ],
            $req.trailing_headers,
        )
        .map(|mut e| {
            e.framing = $req
                .extensions
                .get::<std::sync::Arc<crate::framing::Framing>>()
                .cloned();
            (e, $req.input)
        })
    }};
}

/// The bucket, key, upload id and part number an UploadPart or UploadPartCopy input names.
macro_rules! part_of {
    ($i:expr) => {
        (
            &$i.bucket,
            &$i.key,
            &$i.upload_id,
            $i.part_number.max(0) as u32,
        )
    };
}

/// The attributes a PutObject, CreateMultipartUpload or CopyObject (with REPLACE) input
/// carries ([`attrs_from`]), tagged with `$tagging`.
macro_rules! attrs_of {
    ($s:expr, $i:expr, $tagging:expr) => {
        attrs_from(
            &$i.key,
            $i.content_type.map(|c| c.to_string()),
            $i.content_encoding,
            $i.content_disposition,
            $i.content_language,
            $i.cache_control,
            $i.expires,
            $i.metadata,
            $tagging,
            $s.allow_setid_and_devices,
        )
    };
}

/// The object lock (`x-amz-object-lock-*` headers) a PutObject, CreateMultipartUpload or
/// CopyObject input asks for.
macro_rules! lock_of {
    ($i:expr) => {
        object_lock::lock_request(
            $i.object_lock_mode.as_ref(),
            $i.object_lock_retain_until_date.as_ref(),
            $i.object_lock_legal_hold_status.as_ref(),
        )
    };
}

/// The ACL (`x-amz-acl`, `x-amz-grant-*`) a PutObject, CreateMultipartUpload or CopyObject
/// input asks for the new object ([`acl::acl_for_write`]).
macro_rules! object_acl {
    ($s:expr, $i:expr) => {{
        let mut req = super::acl::acl_request!($i, None);
        req.headers[1].0 = None;
        super::acl::acl_for_write($s, &$i.bucket, req).await
    }};
}

/// An output with an object's checksums (`$c`, from [`checksums_out`]), plus `$extra`.
macro_rules! with_checksums {
    ($ty:ident, $c:expr, { $($field:ident: $val:expr),* $(,)? }) => {
        $ty {
            checksum_crc32: $c.checksum_crc32,
            checksum_crc32c: $c.checksum_crc32c,
            checksum_crc64nvme: $c.checksum_crc64nvme,
            checksum_sha1: $c.checksum_sha1,
            checksum_sha256: $c.checksum_sha256,
            checksum_type: $c.checksum_type,
            $($field: $val,)*
            ..Default::default()
        }
    };
}

/// GetObjectOutput and HeadObjectOutput share the object's headers: fills them, plus `$extra`.
macro_rules! object_output {
    ($ty:ident, $m:expr, $c:expr, { $($field:ident: $val:expr),* $(,)? }) => {
        with_checksums!($ty, $c, {
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag($m)),
            last_modified: Some(ts($m.last_modified_ns)),
            content_type: content_type_of($m),
            content_encoding: $m.attrs.content_encoding.clone(),
            content_disposition: $m.attrs.content_disposition.clone(),
            content_language: $m.attrs.content_language.clone(),
            cache_control: $m.attrs.cache_control.clone(),
            expires: expires_of($m),
            metadata: user_metadata($m),
            version_id: version_of($m),
            object_lock_mode: object_lock::lock_headers($m).0,
            object_lock_retain_until_date: object_lock::lock_headers($m).1,
            object_lock_legal_hold_status: object_lock::lock_headers($m).2,
            $($field: $val,)*
        })
    };
}

impl Store {
    async fn store_body(
        &self,
        bucket: &str,
        key: &str,
        body: Option<StreamingBlob>,
        expected: Expected,
        mut opts: PutOptions,
    ) -> S3Result<ObjectMeta> {
        let body = body.unwrap_or_else(crate::body::empty);
        let vb = VerifyingBody::new(body, expected, self.body_idle);
        opts.late_checksums = Some(vb.verified.clone());
        let mut reader = StreamReader::new(vb);
        let res = self.engine.put_object(bucket, key, &mut reader, opts).await;
        if res.is_err() {
            drain(&mut reader).await;
        }
        res.map_err(s3_err)
    }
}

/// After a put or part failed in the middle of its body (full disks, say), reads the rest of
/// the body and drops it: clients send the whole body before they read the answer, so without
/// this they see a reset connection (and retry) instead of the error. The body's idle timeout
/// still applies. A body not started is left alone (a client waiting on `Expect:
/// 100-continue` gets the error without sending it).
async fn drain(reader: &mut StreamReader<VerifyingBody, bytes::Bytes>) {
    if reader.get_ref().unfinished() {
        let _ = tokio::io::copy(reader, &mut tokio::io::sink()).await;
    }
}

// After the macros above: the groups use them.
mod acl;
mod bucket;
mod conditions;
mod convert;
mod copy;
mod cors;
mod lifecycle;
mod list;
mod mpu_checksum;
mod multipart;
mod notification;
mod object_lock;
mod object_read;
mod object_write;
mod policy;
mod tagging;

use conditions::*;
use convert::*;
pub use convert::{range_of, urlencode};
pub use tagging::parse_tagging;

/// Implements s3s's `S3` trait: every operation is the function of the same name in its
/// module. Most take the input and return the output; those listed after `with caller` also
/// take who asks ([`Caller`]: whose bucket a new one is, which buckets a key may list); those
/// listed after `whole request` take the request (they read the body and its trailers) and
/// return the response.
macro_rules! s3_operations {
    (
        $( $module:ident::$op:ident($input:ty) -> $output:ty, )*
        ; with caller:
        $( $cmodule:ident::$cop:ident($cinput:ty) -> $coutput:ty, )*
        ; whole request:
        $( $rmodule:ident::$rop:ident($rinput:ty) -> $routput:ty, )*
    ) => {
        #[async_trait::async_trait]
        impl S3 for Store {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    Ok(S3Response::new($module::$op(self, req.input).await?))
                }
            )*
            $(
                async fn $cop(&self, req: S3Request<$cinput>) -> S3Result<S3Response<$coutput>> {
                    let caller = Caller::of(&req);
                    Ok(S3Response::new($cmodule::$cop(self, &caller, req.input).await?))
                }
            )*
            $(
                async fn $rop(&self, req: S3Request<$rinput>) -> S3Result<S3Response<$routput>> {
                    $rmodule::$rop(self, req).await
                }
            )*
        }
    };
}

s3_operations! {
    bucket::delete_bucket(DeleteBucketInput) -> DeleteBucketOutput,
    bucket::head_bucket(HeadBucketInput) -> HeadBucketOutput,
    bucket::get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput,
    bucket::get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput,
    bucket::put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput,
    object_read::get_object(GetObjectInput) -> GetObjectOutput,
    object_write::delete_object(DeleteObjectInput) -> DeleteObjectOutput,
    copy::copy_object(CopyObjectInput) -> CopyObjectOutput,
    list::list_objects(ListObjectsInput) -> ListObjectsOutput,
    list::list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output,
    list::list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput,
    tagging::get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput,
    tagging::put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput,
    tagging::delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput,
    multipart::create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput,
    copy::upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput,
    multipart::complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput,
    multipart::abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput,
    multipart::list_parts(ListPartsInput) -> ListPartsOutput,
    multipart::list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput,
    lifecycle::get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput,
    lifecycle::put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput,
    lifecycle::delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput,
    policy::get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput,
    policy::get_bucket_policy_status(GetBucketPolicyStatusInput) -> GetBucketPolicyStatusOutput,
    policy::put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput,
    policy::delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput,
    object_lock::get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput,
    object_lock::put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput,
    object_lock::get_object_retention(GetObjectRetentionInput) -> GetObjectRetentionOutput,
    object_lock::put_object_retention(PutObjectRetentionInput) -> PutObjectRetentionOutput,
    object_lock::get_object_legal_hold(GetObjectLegalHoldInput) -> GetObjectLegalHoldOutput,
    object_lock::put_object_legal_hold(PutObjectLegalHoldInput) -> PutObjectLegalHoldOutput,
    bucket::get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput,
    acl::get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput,
    acl::put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput,
    acl::get_object_acl(GetObjectAclInput) -> GetObjectAclOutput,
    acl::put_object_acl(PutObjectAclInput) -> PutObjectAclOutput,
    acl::get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput,
    acl::put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput,
    acl::delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput,
    acl::get_bucket_ownership_controls(GetBucketOwnershipControlsInput) -> GetBucketOwnershipControlsOutput,
    acl::put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput,
    acl::delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput,
    cors::get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput,
    notification::get_bucket_notification_configuration(GetBucketNotificationConfigurationInput) -> GetBucketNotificationConfigurationOutput,
    notification::put_bucket_notification_configuration(PutBucketNotificationConfigurationInput) -> PutBucketNotificationConfigurationOutput,
    cors::put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput,
    cors::delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput,
    tagging::get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput,
    tagging::put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput,
    tagging::delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput,
    object_read::get_object_attributes(GetObjectAttributesInput) -> GetObjectAttributesOutput,
    ; with caller:
    bucket::list_buckets(ListBucketsInput) -> ListBucketsOutput,
    bucket::create_bucket(CreateBucketInput) -> CreateBucketOutput,
    object_write::delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput,
    ; whole request:
    object_read::head_object(HeadObjectInput) -> HeadObjectOutput,
    object_write::put_object(PutObjectInput) -> PutObjectOutput,
    multipart::upload_part(UploadPartInput) -> UploadPartOutput,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn url_codec_roundtrips(s in "\\PC{0,40}") {
            prop_assert_eq!(urldecode(&urlencode(&s)), Some(s));
        }

        #[test]
        fn tagging_parser_never_panics(s in "[a-z%=&+0-9A-F\\PC]{0,80}") {
            let _ = parse_tagging(&s);
        }

        #[test]
        fn operation_names_never_panic(path in "\\PC{0,40}", q in "\\PC{0,40}") {
            let _ = crate::metrics::operation(&http::Method::GET, &path, Some(&q));
        }
    }

    #[test]
    fn tagging_examples() {
        let t = parse_tagging("a=1&b=hello%20world&c=").unwrap();
        assert_eq!(t["b"], "hello world");
        assert_eq!(t["c"], "");
        assert!(parse_tagging("a=%zz").is_err());
        assert!(parse_tagging(&format!("{}=v", "k".repeat(129))).is_err());
    }
}
