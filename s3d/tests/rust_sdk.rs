//! The official AWS Rust SDK (`aws-sdk-s3`) as a library client against a real s3d.

mod common;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use common::*;

#[tokio::test]
async fn aws_rust_sdk_round_trips() {
    let s = Server::start();
    // The SDK's TLS roots come from the platform store, which honours SSL_CERT_FILE.
    std::env::set_var("SSL_CERT_FILE", s.ca());
    let conf = aws_sdk_s3::Config::builder()
        .endpoint_url(&s.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .force_path_style(true)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        )
        .build();
    let c = aws_sdk_s3::Client::from_conf(conf);

    c.create_bucket().bucket("rustsdk").send().await.unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let put = c
        .put_object()
        .bucket("rustsdk")
        .key("a/b.bin")
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-test")
        .send()
        .await
        .unwrap();
    assert!(put.e_tag().is_some());
    let got = c
        .get_object()
        .bucket("rustsdk")
        .key("a/b.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[..]
    );
    let ranged = c
        .get_object()
        .bucket("rustsdk")
        .key("a/b.bin")
        .range("bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[1000..2000]
    );

    // Multipart with the SDK's default checksums.
    let up = c
        .create_multipart_upload()
        .bucket("rustsdk")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let part1 = vec![7u8; 5 * 1024 * 1024];
    let part2 = vec![9u8; 1234];
    let mut done = Vec::new();
    for (n, p) in [(1, part1.clone()), (2, part2.clone())] {
        let r = c
            .upload_part()
            .bucket("rustsdk")
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("rustsdk")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket("rustsdk")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some((part1.len() + part2.len()) as i64)
    );
    assert!(head.e_tag().unwrap().ends_with("-2\""));

    let list = c
        .list_objects_v2()
        .bucket("rustsdk")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(list.common_prefixes().len(), 1);
    assert_eq!(list.contents().len(), 1);

    let err = c
        .get_object()
        .bucket("rustsdk")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
}
