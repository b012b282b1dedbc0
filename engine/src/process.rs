//! Process-wide settings the front doors apply at start.

/// Keeps the heap from holding on to chunk buffers: buffers of 4 MiB and more (chunks) come
/// straight from the kernel and go back to it when freed, and there are at most two heap arenas.
/// Without this, glibc keeps freed buffers in per-thread arenas, and a server's resident memory
/// grows with the number of threads that ever stored or read a chunk. Measured on mountd (96
/// open files holding 288 MiB of unflushed data, budget 64 MiB; sequential read of 1 GiB):
/// glibc defaults 312 MiB RSS; two arenas only 221 MiB; two arenas and a 256 KiB mmap threshold
/// 93 MiB but reads 40 % slower (every shard buffer a fresh zeroed mapping); two arenas and a
/// 4 MiB threshold 100 MiB at full read speed. Call before starting any thread.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
