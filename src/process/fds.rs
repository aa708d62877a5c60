//! The runtime's own file descriptors, kept apart from the ones it passes on.
//!
//! A container init is a clone of berth, not an exec of anything: it starts out holding every
//! fd berth had, and close-on-exec only takes effect at the user program's execve. Until then
//! whatever it holds is reachable through /proc/<pid>/fd by a container process allowed to
//! ptrace it, and a directory fd leads out of the rootfs with `..` (CVE-2024-21626). So the
//! init and every exec'd process close all they do not need as their first step, and the fds
//! `--preserve-fds` hands on must be the caller's own.

use std::os::fd::RawFd;

use crate::error::{Error, Result, SysContext};

/// `--preserve-fds N` (and systemd's LISTEN_FDS) pass fds 3..3+N into the container: each must
/// have been passed to berth by its caller. Checked before berth opens a file of its own, which
/// would otherwise take the lowest free number in that range and be handed to the container
/// (runc does exactly that with its cgroup directory fd).
pub fn check_passed(count: u32) -> Result<()> {
    for fd in 3..3i32.saturating_add_unsigned(count) {
        if !crate::sys::fd_is_open(fd) {
            return Err(Error::InvalidArgument(format!(
                "--preserve-fds {count}: fd {fd} was not passed to berth, so there is nothing to preserve there"
            )));
        }
    }
    Ok(())
}

/// Closes every fd but `keep`.
pub fn close_all_except(keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter_map(|fd| u32::try_from(*fd).ok()).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for fd in keep {
        if fd > next {
            crate::sys::close_range(next, fd - 1).ctx("close runtime fds", format!("{next}..{}", fd - 1))?;
        }
        next = fd + 1;
    }
    crate::sys::close_range(next, u32::MAX).ctx("close runtime fds", format!("from {next}"))
}

/// At execve only stdio and fds 3..3+preserve stay open: every fd of berth's is close-on-exec
/// from here on, and the preserved ones are not.
pub fn keep_for_exec(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        crate::sys::clear_cloexec(fd).ctx("keep preserved fd", fd)?;
    }
    crate::sys::cloexec_from(3 + preserve).ctx("mark close-on-exec", format!("fds from {}", 3 + preserve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn missing_fds_are_named() {
        // fd 3 + a few hundred is not open in the test runner.
        let e = check_passed(900).unwrap_err().to_string();
        assert!(e.contains("--preserve-fds 900"), "{e}");
        assert!(check_passed(0).is_ok());
    }

    #[test]
    fn closes_all_but_the_kept() {
        // In a child, so the test runner's own fds are left alone.
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = std::fs::File::open("/dev/null").unwrap();
        let (keep, gone) = (a.as_raw_fd(), b.as_raw_fd());
        match crate::sys::clone_fork(nix::sched::CloneFlags::empty()).unwrap() {
            None => {
                let ok = close_all_except(&[0, 1, 2, keep]).is_ok()
                    && crate::sys::fd_is_open(keep)
                    && !crate::sys::fd_is_open(gone);
                crate::sys::exit_now(if ok { 0 } else { 1 });
            }
            Some(child) => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0), "kept {keep}, closed {gone}");
            }
        }
    }
}
