//! Process-wide settings the front doors apply at start.

/// Bounds the heap without handing every freed buffer back to the kernel: at most two heap
/// arenas, buffers of 4 MiB and more (chunks) straight from the kernel, and up to 32 MiB of
/// freed memory kept at the top of each arena for the next shard instead of being returned and
/// faulted in again.
///
/// Without limits glibc keeps freed buffers in per-thread arenas, and a server's resident
/// memory grows with the number of threads that ever stored or read a chunk. Measured on mountd
/// (96 open files holding 288 MiB of unflushed data, budget 64 MiB; sequential read of 1 GiB):
/// glibc defaults 312 MiB RSS; two arenas only 221 MiB; two arenas and a 256 KiB mmap threshold
/// 93 MiB but reads 40 % slower (every shard buffer a fresh zeroed mapping); two arenas and a
/// 4 MiB threshold 100 MiB. Setting a threshold also pins glibc's trim threshold at 128 KiB,
/// though, so freed shard buffers went back to the kernel at once: `examples/load`, 256 MiB
/// without fsync, 3 runs: put 199 and get ~1,100 MB/s against 242 and 1,450 with glibc's
/// defaults; with the 32 MiB trim threshold 236 and 1,580 (53 MiB RSS against 102), and the
/// mount's 96 open files 108 MiB. An 8 MiB mmap threshold (chunks from the heap too) was a
/// little faster but let those 96 files reach 230 MiB. Call before starting any thread.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
