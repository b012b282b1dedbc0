//! The `aws-chunked` framing watch (s3d `framing`): arbitrary bytes fed in arbitrary pieces
//! give the same verdict as fed whole, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = data;
    let mut whole = s3d::framing::Parser::default();
    whole.feed(&bytes);
    let mut pieces = s3d::framing::Parser::default();
    let mut at = 0usize;
    for c in cuts {
        let n = (c as usize).min(bytes.len() - at);
        pieces.feed(&bytes[at..at + n]);
        at += n;
    }
    pieces.feed(&bytes[at..]);
    assert_eq!(whole, pieces);
});
