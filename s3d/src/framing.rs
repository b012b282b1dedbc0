//! The framing of `aws-chunked` request bodies (`x-amz-content-sha256: STREAMING-…`), watched
//! as the bytes pass on to the S3 layer's decoder.
//!
//! s3s 0.14.1 decodes and verifies the chunks, but a stream that simply stops after a whole
//! chunk, without the final zero-length chunk, ends there like a complete one; and the decoded
//! length declared in `x-amz-decoded-content-length` is never compared with what arrives. A
//! proxy or client that cuts a stream must never produce a short object, so the body passes
//! through a [`Watch`] that records whether the final chunk arrived, and the body verifier
//! refuses the upload at its end unless it did and the length matches ([`Framing::verdict`]).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Longest chunk header line accepted (`hex-size;chunk-signature=<64 hex>\r\n` is ~90 bytes).
const MAX_HEADER_LINE: usize = 4096;

/// Where the parser is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line (bytes so far).
    Header(Vec<u8>),
    /// Inside a chunk's data: bytes still to skip.
    Data(u64),
    /// After a chunk's data: bytes of its `\r\n` still to skip.
    DataEnd(u8),
    /// The zero-length chunk arrived; trailers (if any) follow.
    Final,
    /// Not `aws-chunked` framing; the decoder refuses such a stream on its own.
    Broken,
}

/// A push parser of `aws-chunked` framing that only tracks chunk boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parser {
    state: State,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Header(Vec::new()),
        }
    }
}

impl Parser {
    /// Feeds the next bytes of the encoded stream.
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            match &mut self.state {
                State::Final | State::Broken => return,
                State::Header(line) => match b.iter().position(|&c| c == b'\n') {
                    Some(i) => {
                        line.extend_from_slice(&b[..=i]);
                        b = &b[i + 1..];
                        let line = std::mem::take(line);
                        self.state = match chunk_size(&line) {
                            Some(0) => State::Final,
                            Some(n) => State::Data(n),
                            None => State::Broken,
                        };
                    }
                    None => {
                        line.extend_from_slice(b);
                        if line.len() > MAX_HEADER_LINE {
                            self.state = State::Broken;
                        }
                        return;
                    }
                },
                State::Data(left) => {
                    let take = (*left).min(b.len() as u64);
                    b = &b[take as usize..];
                    *left -= take;
                    if *left == 0 {
                        self.state = State::DataEnd(2);
                    }
                }
                State::DataEnd(left) => {
                    *left -= 1;
                    b = &b[1..];
                    if *left == 0 {
                        self.state = State::Header(Vec::new());
                    }
                }
            }
        }
    }

    /// Whether the final zero-length chunk has arrived.
    pub fn saw_final_chunk(&self) -> bool {
        self.state == State::Final
    }
}

/// The size in a chunk header line: hex digits before `;` or `\r`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let end = line
        .iter()
        .position(|&c| c == b';' || c == b'\r')
        .unwrap_or(line.len());
    let hex = std::str::from_utf8(&line[..end]).ok()?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Why an `aws-chunked` body is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incomplete {
    /// The stream ended without its zero-length chunk.
    #[error("the aws-chunked stream ended before its final zero-length chunk ({received} bytes received)")]
    NoFinalChunk {
        /// Decoded bytes received.
        received: u64,
    },
    /// The decoded length differs from `x-amz-decoded-content-length`.
    #[error("x-amz-decoded-content-length is {declared} but the stream carried {received} bytes")]
    LengthMismatch {
        /// Declared length.
        declared: u64,
        /// Decoded bytes received.
        received: u64,
    },
}

/// What the watch found, shared with the body verifier through the request's extensions.
#[derive(Debug)]
pub struct Framing {
    /// `x-amz-decoded-content-length`, if it parsed.
    pub declared: Option<u64>,
    parser: Mutex<Parser>,
}

impl Framing {
    /// A watch for a stream that declares `declared` decoded bytes.
    pub fn new(declared: Option<u64>) -> Arc<Framing> {
        Arc::new(Framing {
            declared,
            parser: Mutex::new(Parser::default()),
        })
    }

    /// At the end of the decoded body of `received` bytes: whether it is whole.
    pub fn verdict(&self, received: u64) -> Result<(), Incomplete> {
        let final_chunk = self
            .parser
            .lock()
            .map(|p| p.saw_final_chunk())
            .unwrap_or(false);
        if !final_chunk {
            return Err(Incomplete::NoFinalChunk { received });
        }
        match self.declared {
            Some(d) if d != received => Err(Incomplete::LengthMismatch {
                declared: d,
                received,
            }),
            _ => Ok(()),
        }
    }
}

/// Whether a request's `x-amz-content-sha256` announces `aws-chunked` framing.
pub fn is_streaming(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"))
}

/// A request body passed through unchanged while its framing is parsed.
pub struct Watch<B> {
    inner: B,
    framing: Arc<Framing>,
}

impl<B> Watch<B> {
    /// Watches `inner`, recording into `framing`.
    pub fn new(inner: B, framing: Arc<Framing>) -> Self {
        Watch { inner, framing }
    }
}

impl<B> Body for Watch<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                if let Ok(mut p) = self.framing.parser.lock() {
                    p.feed(d);
                }
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(chunks: &[&[u8]], last: bool, signed: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let sig = if signed {
            format!(";chunk-signature={}", "a".repeat(64))
        } else {
            String::new()
        };
        for c in chunks {
            v.extend_from_slice(format!("{:x}{sig}\r\n", c.len()).as_bytes());
            v.extend_from_slice(c);
            v.extend_from_slice(b"\r\n");
        }
        if last {
            v.extend_from_slice(format!("0{sig}\r\n").as_bytes());
            v.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        }
        v
    }

    fn parse_in_pieces(bytes: &[u8], piece: usize) -> Parser {
        let mut p = Parser::default();
        for c in bytes.chunks(piece.max(1)) {
            p.feed(c);
        }
        p
    }

    #[test]
    fn final_chunk_seen_however_the_stream_is_cut() {
        let a = vec![7u8; 70_000];
        let b = vec![b'\n'; 1000];
        for signed in [true, false] {
            let whole = encode(&[&a, &b], true, signed);
            let cut = encode(&[&a, &b], false, signed);
            for piece in [1, 2, 3, 64, 8192, 1 << 20] {
                let p = parse_in_pieces(&whole, piece);
                assert!(p.saw_final_chunk(), "piece {piece}");
                assert!(!parse_in_pieces(&cut, piece).saw_final_chunk());
                // Cut anywhere before the final chunk's header ends.
                let at = cut.len() + 2;
                assert!(!parse_in_pieces(&whole[..at], piece).saw_final_chunk());
            }
        }
    }

    #[test]
    fn data_that_looks_like_a_final_chunk_is_data() {
        let tricky = b"0\r\n\r\n0;chunk-signature=\r\n".to_vec();
        let cut = encode(&[&tricky], false, true);
        assert!(!parse_in_pieces(&cut, 5).saw_final_chunk());
    }

    #[test]
    fn garbage_is_never_complete() {
        for g in [&b"zz\r\nabc"[..], b"", b"\r\n", &[b'1'; 5000]] {
            assert!(!parse_in_pieces(g, 7).saw_final_chunk());
        }
    }

    #[test]
    fn verdict_checks_the_final_chunk_and_the_length() {
        let f = Framing::new(Some(3));
        assert!(matches!(f.verdict(3), Err(Incomplete::NoFinalChunk { .. })));
        f.parser
            .lock()
            .unwrap()
            .feed(&encode(&[b"abc"], true, false));
        assert_eq!(f.verdict(3), Ok(()));
        assert_eq!(
            f.verdict(2),
            Err(Incomplete::LengthMismatch {
                declared: 3,
                received: 2
            })
        );
    }
}
