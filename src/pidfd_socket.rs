//! `--pidfd-socket` (runc 1.2): the engine gets a pidfd of the container's process (the init
//! for create and run, the new process for exec), so it can wait for and signal that process
//! without racing pid reuse.
//!
//! The protocol is runc's: connect to the unix socket the engine listens on and send one
//! message, the process's kind as data ("standard" for an init, "setns" for an exec'd
//! process, as runc names them) with the pidfd as its one SCM_RIGHTS fd. The socket is
//! connected before anything is created, so a bad path fails early with nothing to undo.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};

/// The kind of process a pidfd refers to.
#[derive(Clone, Copy)]
pub enum Kind {
    Init,
    Exec,
}

pub fn connect_to(path: &Path) -> Result<OwnedFd> {
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx("create socket for", path.display())?;
    let addr = UnixAddr::new(path).ctx("pidfd socket address", path.display())?;
    connect(sock.as_raw_fd(), &addr).ctx("connect to pidfd socket", path.display())?;
    Ok(sock)
}

/// A pidfd for `pid`, checked against `start_time` (field 22 of /proc/<pid>/stat) once it is
/// open: a pidfd always names one process, and if that process is the one born at
/// `start_time` the pid was not reused in between. (An exec'd process needs no check: it is
/// berth's unreaped child, whose pid nobody else can get.)
pub fn open_checked(pid: Pid, start_time: u64) -> Result<OwnedFd> {
    let pidfd = crate::sys::pidfd_open(pid).ctx("pidfd_open", pid)?;
    if !crate::procfs::is_alive(pid.as_raw(), start_time) {
        return Err(Error::Exited { who: format!("process {pid}"), when: "before its pidfd was sent".into() });
    }
    Ok(pidfd)
}

pub fn send(socket: &OwnedFd, pidfd: &OwnedFd, kind: Kind) -> Result<()> {
    let name: &[u8] = match kind {
        Kind::Init => b"standard",
        Kind::Exec => b"setns",
    };
    let fds = [pidfd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(name)], &cmsg, MsgFlags::empty(), None)
        .ctx("send pidfd", "pidfd socket")?;
    Ok(())
}
