//! The S3 operations: a thin mapping of s3s requests onto the engine, one file per group
//! (buckets, object reads, object writes, copies, listing, tagging, multipart); the `S3` impl
//! below only dispatches.

use std::collections::BTreeMap;

use engine::{ByteRange, CopyOptions, Engine, ListQuery, ObjectAttrs, ObjectMeta, PutOptions};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio_util::io::StreamReader;

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

/// What a PutObject or UploadPart input says its body is (Content-MD5, checksums, trailer).
macro_rules! expected {
    ($i:expr, $trailers:expr, $extensions:expr) => {
        expected_from(
            $i.content_md5.as_ref(),
            $i.checksum_algorithm.as_ref(),
            [
                $i.checksum_crc32.as_ref(),
                $i.checksum_crc32c.as_ref(),
                $i.checksum_crc64nvme.as_ref(),
                $i.checksum_sha1.as_ref(),
                $i.checksum_sha256.as_ref(),
            ],
            $trailers,
        )
        .map(|mut e| {
            e.framing = $extensions
                .get::<std::sync::Arc<crate::framing::Framing>>()
                .cloned();
            e
        })
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

/// GetObjectOutput and HeadObjectOutput share the object's headers: fills them, plus `$extra`.
macro_rules! object_output {
    ($ty:ident, $m:expr, $c:expr, { $($field:ident: $val:expr),* $(,)? }) => {
        $ty {
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
            checksum_crc32: $c.checksum_crc32,
            checksum_crc32c: $c.checksum_crc32c,
            checksum_crc64nvme: $c.checksum_crc64nvme,
            checksum_sha1: $c.checksum_sha1,
            checksum_sha256: $c.checksum_sha256,
            $($field: $val,)*
            ..Default::default()
        }
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
mod bucket;
mod conditions;
mod convert;
mod copy;
mod list;
mod multipart;
mod object_read;
mod object_write;
mod tagging;

use conditions::*;
pub use convert::range_of;
use convert::*;
pub use tagging::parse_tagging;

#[async_trait::async_trait]
impl S3 for Store {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        Ok(S3Response::new(
            bucket::list_buckets(self, req.input).await?,
        ))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        Ok(S3Response::new(
            bucket::create_bucket(self, req.input).await?,
        ))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        Ok(S3Response::new(
            bucket::delete_bucket(self, req.input).await?,
        ))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        Ok(S3Response::new(bucket::head_bucket(self, req.input).await?))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        Ok(S3Response::new(
            bucket::get_bucket_location(self, req.input).await?,
        ))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        Ok(S3Response::new(
            bucket::get_bucket_versioning(self, req.input).await?,
        ))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        object_write::put_object(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        Ok(S3Response::new(
            object_read::get_object(self, req.input).await?,
        ))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        Ok(S3Response::new(
            object_read::head_object(self, req.input).await?,
        ))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        Ok(S3Response::new(
            object_write::delete_object(self, req.input).await?,
        ))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        Ok(S3Response::new(
            object_write::delete_objects(self, req.input).await?,
        ))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        Ok(S3Response::new(copy::copy_object(self, req.input).await?))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        Ok(S3Response::new(list::list_objects(self, req.input).await?))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        Ok(S3Response::new(
            list::list_objects_v2(self, req.input).await?,
        ))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        Ok(S3Response::new(
            list::list_object_versions(self, req.input).await?,
        ))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        Ok(S3Response::new(
            tagging::get_object_tagging(self, req.input).await?,
        ))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        Ok(S3Response::new(
            tagging::put_object_tagging(self, req.input).await?,
        ))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        Ok(S3Response::new(
            tagging::delete_object_tagging(self, req.input).await?,
        ))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        Ok(S3Response::new(
            multipart::create_multipart_upload(self, req.input).await?,
        ))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        Ok(S3Response::new(
            copy::upload_part_copy(self, req.input).await?,
        ))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        Ok(S3Response::new(
            multipart::complete_multipart_upload(self, req.input).await?,
        ))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        Ok(S3Response::new(
            multipart::abort_multipart_upload(self, req.input).await?,
        ))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        Ok(S3Response::new(
            multipart::list_parts(self, req.input).await?,
        ))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        Ok(S3Response::new(
            multipart::list_multipart_uploads(self, req.input).await?,
        ))
    }
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
