//! S3 XML request documents as the S3 layer reads them: DeleteObjects, CompleteMultipartUpload,
//! tagging, CreateBucket configuration, versioning, lifecycle, CORS, object lock.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3s::xml::{Deserialize, Deserializer};

fn parse<'a, T: Deserialize<'a>>(b: &'a [u8]) {
    let mut d = Deserializer::new(b);
    if T::deserialize(&mut d).is_ok() {
        let _ = d.expect_eof();
    }
}

fuzz_target!(|data: &[u8]| {
    parse::<s3s::dto::Delete>(data);
    parse::<s3s::dto::CompletedMultipartUpload>(data);
    parse::<s3s::dto::Tagging>(data);
    parse::<s3s::dto::CreateBucketConfiguration>(data);
    parse::<s3s::dto::VersioningConfiguration>(data);
    parse::<s3s::dto::BucketLifecycleConfiguration>(data);
    parse::<s3s::dto::CORSConfiguration>(data);
    parse::<s3s::dto::ObjectLockConfiguration>(data);
});
