//! Holes: runs of zeros stored as nothing.

use bytes::Bytes;

/// Granularity of hole detection: runs of zeros are found in whole pages.
pub const HOLE_PAGE: usize = 4096;

/// The shortest run of zeros stored as a hole within data: shorter runs are not worth the
/// extra chunk they split the data into.
pub const MIN_HOLE: usize = 64 << 10;

/// Cuts `data` into runs, each `(length, is_hole)`, in order and covering it: a hole is a run
/// of zero pages (4 KiB, counted from the start of `data`; the last page may be short) at
/// least [`MIN_HOLE`] long, or all of `data` when it is all zeros; everything else is data.
pub fn zero_runs(data: &[u8]) -> Vec<(usize, bool)> {
    let zero_page = |p: &[u8]| p.chunks(64).all(|c| c.iter().fold(0u8, |a, b| a | b) == 0);
    let mut runs: Vec<(usize, bool)> = Vec::new();
    let push = |len: usize, hole: bool, runs: &mut Vec<(usize, bool)>| match runs.last_mut() {
        Some((n, h)) if *h == hole => *n += len,
        _ => runs.push((len, hole)),
    };
    let mut zeros = 0usize;
    for page in data.chunks(HOLE_PAGE) {
        if zero_page(page) {
            zeros += page.len();
            continue;
        }
        if zeros > 0 {
            push(zeros, zeros >= MIN_HOLE, &mut runs);
            zeros = 0;
        }
        push(page.len(), false, &mut runs);
    }
    if zeros > 0 {
        push(zeros, zeros >= MIN_HOLE || zeros == data.len(), &mut runs);
    }
    runs
}

/// Size of the shared buffer of zeros holes are read from.
const ZEROS_LEN: usize = 1 << 20;

/// `n` zero bytes as slices of one shared buffer (a hole's bytes: nothing is read or allocated).
pub(crate) fn zeros(n: usize) -> Vec<Bytes> {
    static ZEROS: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let z = ZEROS.get_or_init(|| Bytes::from(vec![0u8; ZEROS_LEN]));
    let mut out = Vec::with_capacity(n.div_ceil(ZEROS_LEN));
    let mut left = n;
    while left > 0 {
        let k = left.min(ZEROS_LEN);
        out.push(z.slice(..k));
        left -= k;
    }
    out
}
