//! `--daemon`: detach from the terminal once the mount is up.
//!
//! The process forks before it starts any thread. The child starts a new session, moves to `/`,
//! points its standard streams at `/dev/null` (or the log file) and mounts; the parent waits on a
//! pipe until the child says the mount is up (exit 0) or why it failed (its message, exit 1), so
//! a script that runs `mountd --daemon` can rely on the exit status.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

/// Which side of the fork this is.
pub enum Role {
    /// The original process: exit with this status now.
    Parent(ExitCode),
    /// The daemon: report the mount's outcome through the notifier.
    Child(Notifier),
}

/// The daemon's end of the pipe to the waiting parent.
pub struct Notifier {
    pipe: File,
}

impl Notifier {
    /// The mount is up: the parent exits 0.
    pub fn mounted(mut self) {
        let _ = self.pipe.write_all(&[0]);
    }

    /// The mount failed: the parent prints `why` and exits 1.
    pub fn failed(mut self, why: &str) {
        let mut msg = vec![1u8];
        msg.extend_from_slice(why.as_bytes());
        let _ = self.pipe.write_all(&msg);
    }
}

/// Forks into the background. Must be called before any thread is started.
pub fn detach(log_file: Option<&Path>) -> Result<Role, String> {
    let log = match log_file {
        Some(p) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("cannot open log file {}: {e}", p.display()))?,
        None => OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?,
    };
    let null_in = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (documented precondition), so the child may go on
    // running ordinary Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(read_end);
            // SAFETY: plain syscalls; the descriptors are valid and owned by this process.
            unsafe {
                libc::setsid();
                libc::dup2(null_in.as_raw_fd(), 0);
                libc::dup2(log.as_raw_fd(), 1);
                libc::dup2(log.as_raw_fd(), 2);
            }
            let _ = std::env::set_current_dir("/");
            Ok(Role::Child(Notifier {
                pipe: File::from(write_end),
            }))
        }
        _ => {
            drop(write_end);
            let mut status = Vec::new();
            let _ = File::from(read_end).read_to_end(&mut status);
            Ok(Role::Parent(match status.first() {
                Some(0) => ExitCode::SUCCESS,
                Some(_) => {
                    eprintln!("mountd: {}", String::from_utf8_lossy(&status[1..]));
                    ExitCode::FAILURE
                }
                None => {
                    eprintln!("mountd: the background process exited before mounting");
                    ExitCode::FAILURE
                }
            }))
        }
    }
}
