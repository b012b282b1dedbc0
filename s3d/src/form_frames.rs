//! Browser form uploads (`POST` of `multipart/form-data`) reach the S3 layer in frames of at
//! most [`MAX_FRAME`] bytes.
//!
//! s3s 0.14.1 looks for the closing boundary of the file part frame by frame; when a frame
//! ends with the first bytes of `\r\n--boundary` (a single `\r`: one frame in 256 of binary
//! data) it joins them with the whole next frame, and refuses the upload ("failed to read file
//! stream") if that makes more than 64 KiB. hyper hands over frames of whatever a read gave,
//! often larger, so binary uploads failed now and then. Frames of at most 32 KiB keep every
//! join under the limit (a boundary is at most 70 bytes); splitting `Bytes` copies nothing.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Largest frame handed on.
pub const MAX_FRAME: usize = 32 * 1024;

/// Whether a request is a browser form upload.
pub fn is_form_upload(method: &http::Method, headers: &http::HeaderMap) -> bool {
    method == http::Method::POST
        && headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

/// A body whose data frames are at most [`MAX_FRAME`] bytes.
pub struct SmallFrames<B> {
    inner: B,
    rest: Bytes,
}

impl<B> SmallFrames<B> {
    pub fn new(inner: B) -> Self {
        SmallFrames {
            inner,
            rest: Bytes::new(),
        }
    }

    fn next_piece(&mut self) -> Bytes {
        let n = self.rest.len().min(MAX_FRAME);
        self.rest.split_to(n)
    }
}

impl<B> Body for SmallFrames<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.next_piece()))));
        }
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(Frame::data(self.next_piece()))))
                }
                Err(other) => Poll::Ready(Some(Ok(other))),
            },
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let extra = self.rest.len() as u64;
        let mut h = SizeHint::new();
        h.set_lower(inner.lower() + extra);
        if let Some(u) = inner.upper() {
            h.set_upper(u + extra);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn large_frames_are_split_without_losing_or_reordering_a_byte() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let frames = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(data[..5].to_vec()))),
            Ok(Frame::data(Bytes::from(data[5..200_000].to_vec()))),
            Ok(Frame::data(Bytes::new())),
            Ok(Frame::data(Bytes::from(data[200_000..].to_vec()))),
        ];
        let mut body = SmallFrames::new(StreamBody::new(futures::stream::iter(frames)));
        let mut out = Vec::new();
        while let Some(f) = body.frame().await {
            let d = f.unwrap().into_data().unwrap();
            assert!(d.len() <= MAX_FRAME, "a frame of {} bytes", d.len());
            out.extend_from_slice(&d);
        }
        assert!(out == data);
    }

    #[tokio::test]
    async fn the_size_hint_counts_what_is_held_back() {
        let mut body = SmallFrames::new(Full::new(Bytes::from(vec![7u8; 100_000])));
        assert_eq!(body.size_hint().exact(), Some(100_000));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), MAX_FRAME);
        assert_eq!(body.size_hint().exact(), Some(100_000 - MAX_FRAME as u64));
        assert!(!body.is_end_stream());
        while body.frame().await.is_some() {}
        assert!(body.is_end_stream());
    }

    #[test]
    fn only_form_posts_are_form_uploads() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "Multipart/Form-Data; boundary=x".parse().unwrap(),
        );
        assert!(is_form_upload(&http::Method::POST, &h));
        assert!(!is_form_upload(&http::Method::PUT, &h));
        h.insert(
            http::header::CONTENT_TYPE,
            "application/xml".parse().unwrap(),
        );
        assert!(!is_form_upload(&http::Method::POST, &h));
    }
}
