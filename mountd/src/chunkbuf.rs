//! Chunk buffers of files open for writing: counted against the write budget, and recycled.
//!
//! A chunk buffer is 4 MiB by default, past glibc's mmap threshold, so each new one is a fresh
//! mapping whose every page the kernel faults in and zeroes — on a VM that hands freed memory
//! back to its host, the host faults it in again too. A sequential writer goes through a chunk
//! per 4 MiB, so freed buffers are kept in a small pool and reused while their pages are still
//! mapped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes of modified chunks all open files hold in memory.
static BUFFERED: AtomicUsize = AtomicUsize::new(0);

/// Freed buffers kept for reuse: enough for a writer's chunks in flight and the one it fills
/// ([`POOL_MAX`] × the chunk size held at most when idle: 32 MiB at 4 MiB chunks).
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Buffers the pool keeps at most.
const POOL_MAX: usize = 8;

/// Smallest buffer worth keeping (smaller ones come from the heap's free lists anyway).
const POOL_MIN_CAPACITY: usize = 1 << 20;

/// Bytes of modified chunks held in memory by all open files together.
pub fn buffered() -> usize {
    BUFFERED.load(Ordering::Relaxed)
}

/// An empty vector with room for `cap` bytes, from the pool when it has one.
fn take(cap: usize) -> Vec<u8> {
    if cap >= POOL_MIN_CAPACITY {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter().position(|v| v.capacity() >= cap) {
            return pool.swap_remove(i);
        }
    }
    Vec::with_capacity(cap)
}

/// Gives a vector back to the pool (or to the allocator when the pool is full).
fn give_back(mut v: Vec<u8>) {
    if v.capacity() < POOL_MIN_CAPACITY {
        return;
    }
    v.clear();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < POOL_MAX {
        pool.push(v);
    }
}

/// A chunk's bytes in memory, counted in [`buffered`].
pub struct Buf {
    v: Vec<u8>,
}

impl Buf {
    /// Empty, with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Buf {
        Buf { v: take(cap) }
    }

    /// `n` zero bytes.
    pub fn zeroed(n: usize) -> Buf {
        let mut b = Buf::with_capacity(n);
        b.resize(n);
        b
    }

    /// A copy of `data`.
    pub fn copy_of(data: &[u8]) -> Buf {
        let mut b = Buf::with_capacity(data.len());
        b.extend(data);
        b
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.v
    }

    /// The bytes, to change in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.v
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Appends `data`.
    pub fn extend(&mut self, data: &[u8]) {
        self.v.extend_from_slice(data);
        BUFFERED.fetch_add(data.len(), Ordering::Relaxed);
    }

    /// Cuts to `n` bytes or extends with zeros to `n`.
    pub fn resize(&mut self, n: usize) {
        let old = self.v.len();
        self.v.resize(n, 0);
        if n > old {
            BUFFERED.fetch_add(n - old, Ordering::Relaxed);
        } else {
            BUFFERED.fetch_sub(old - n, Ordering::Relaxed);
        }
    }

    /// Writes `data` at `at`, extending the buffer as far as it reaches (a gap between the end
    /// and `at` becomes zeros).
    pub fn write_at(&mut self, at: usize, data: &[u8]) {
        let len = self.v.len();
        if at >= len {
            self.resize(at);
            self.extend(data);
            return;
        }
        let inside = data.len().min(len - at);
        self.v[at..at + inside].copy_from_slice(&data[..inside]);
        self.extend(&data[inside..]);
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(self.v.len(), Ordering::Relaxed);
        give_back(std::mem::take(&mut self.v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_at_overwrites_extends_and_fills_gaps_with_zeros() {
        let mut b = Buf::copy_of(b"abcdef");
        b.write_at(2, b"XY");
        assert_eq!(b.bytes(), b"abXYef");
        b.write_at(4, b"1234");
        assert_eq!(b.bytes(), b"abXY1234");
        b.write_at(10, b"z");
        assert_eq!(b.bytes(), b"abXY1234\0\0z");
        b.resize(3);
        assert_eq!(b.bytes(), b"abX");
    }

    #[test]
    fn a_reused_buffer_starts_empty() {
        let mut b = Buf::with_capacity(POOL_MIN_CAPACITY);
        b.extend(&vec![7u8; POOL_MIN_CAPACITY]);
        drop(b);
        let z = Buf::zeroed(POOL_MIN_CAPACITY);
        assert!(z.bytes().iter().all(|x| *x == 0));
        let e = Buf::with_capacity(POOL_MIN_CAPACITY);
        assert_eq!(e.len(), 0);
    }
}
