//! boto3 (with its default checksum settings) against a real s3d: runs tests/boto3_suite.py.

mod common;

use common::*;

#[test]
fn boto3_suite() {
    let s = Server::start();
    s.python_suite("boto3_suite.py", &[]);
}
