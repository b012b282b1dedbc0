//! Waiting for the network from synchronous code: the metadata seam and the shard seam are
//! synchronous, while etcd and other nodes are reached through async clients on runtimes of
//! their own.

/// Runs `wait` (which blocks for a round trip to another machine), first handing this thread's
/// other tasks to the rest of the runtime when it is a worker of a multi-threaded tokio
/// runtime: the engine's async operations call the seams in place, which costs LMDB and a
/// local disk no more than a memory or disk read, and a remote store a round trip that must
/// not stall the tasks queued behind it. Elsewhere (a blocking thread, a single-threaded
/// runtime, no runtime) it just waits.
pub fn wait_off_worker<T>(wait: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}
