//! How `start` releases a created container's init.
//!
//! `create` binds a listening unix socket in the container's state directory (start.sock)
//! and the init inherits it; once set up, the init waits in accept(2), and `start` connects.
//! The init so needs no path outside the container after pivot_root, and holds nothing of
//! the host while it waits: a socket cannot be reopened through /proc/<pid>/fd, unlike the
//! exec FIFO and the host /proc directory it used to keep for reopening that FIFO. Nothing in
//! the container can reach the socket's path to start it early either.
//!
//! Over the connection the init says it has run the startContainer hooks, handing over the
//! seccomp NOTIFY listener when its filter has one (loaded only then, right before execve);
//! `start` delivers the listener and answers before the init goes on.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{
    bind, listen, sendmsg, socket, AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::error::{Error, Result, SysContext};

/// The socket's name in the state directory; while it exists, the container is `created`.
pub const SOCKET: &str = "start.sock";

/// What the init says over the connection: the listener follows (with the fd), started, or
/// failed (the reason follows).
const LISTENER: &[u8] = b"L";
const STARTED: &[u8] = b"0";
const FAILED: u8 = b'E';

/// The socket's path, or a path through the state directory's fd when the full path is longer
/// than a unix socket address holds (108 bytes: engines' state roots can be deep).
fn address(state_dir: &Path) -> Result<(UnixAddr, Option<OwnedFd>)> {
    let path = state_dir.join(SOCKET);
    if let Ok(addr) = UnixAddr::new(&path) {
        return Ok((addr, None));
    }
    let dir = nix::fcntl::open(
        state_dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open", state_dir.display())?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()));
    let addr = UnixAddr::new(&short).ctx("socket address", path.display())?;
    Ok((addr, Some(dir)))
}

/// create's side: made before the init is cloned, which inherits it.
pub fn open(state_dir: &Path) -> Result<OwnedFd> {
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx("create socket", "start socket")?;
    let (addr, _dir) = address(state_dir)?;
    bind(sock.as_raw_fd(), &addr).ctx("bind", state_dir.join(SOCKET).display())?;
    listen(&sock, Backlog::new(1).unwrap_or(Backlog::MAXCONN)).ctx("listen", state_dir.join(SOCKET).display())?;
    Ok(sock)
}

/// The init's side: blocks until `start` connects.
pub fn wait(listener: &OwnedFd) -> Result<OwnedFd> {
    crate::sys::accept_cloexec(listener).map_err(|e| Error::sys("wait for", "start", e))
}

/// The init's side: the seccomp NOTIFY listener, as soon as its filter is loaded; waits until
/// `start` has delivered it.
pub fn hand_over_listener(conn: &OwnedFd, listener: &OwnedFd) -> Result<()> {
    let fds = [listener.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(conn.as_raw_fd(), &[IoSlice::new(LISTENER)], &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .ctx("hand over", "seccomp listener")?;
    let mut byte = [0u8; 1];
    match nix::unistd::read(conn, &mut byte) {
        Ok(1) => Ok(()),
        Ok(_) => Err(Error::Exited { who: "start".into(), when: "before delivering the seccomp listener".into() }),
        Err(e) => Err(Error::sys("wait for", "start to deliver the seccomp listener", e)),
    }
}

/// The init's side: startContainer hooks ran, the process is about to exec.
pub fn report_started(conn: &OwnedFd) -> Result<()> {
    nix::sys::socket::send(conn.as_raw_fd(), STARTED, MsgFlags::MSG_NOSIGNAL).ctx("report", "start")?;
    Ok(())
}

/// The init's side: it could not start the process; `start` reports `reason`. Best effort: the
/// init exits either way, which `start` sees too.
pub fn report_failure(conn: &OwnedFd, reason: &str) {
    let mut text = vec![FAILED];
    text.extend(reason.bytes().take(4000));
    let _ = nix::sys::socket::send(conn.as_raw_fd(), &text, MsgFlags::MSG_NOSIGNAL);
}

/// `start`'s side: connecting releases the init.
pub fn connect(state_dir: &Path) -> Result<OwnedFd> {
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx("create socket", "start socket")?;
    let (addr, _dir) = address(state_dir)?;
    match nix::sys::socket::connect(sock.as_raw_fd(), &addr) {
        Ok(()) => Ok(sock),
        Err(Errno::ECONNREFUSED | Errno::ENOENT) => Err(init_gone()),
        Err(e) => Err(Error::sys("connect to", state_dir.join(SOCKET).display(), e)),
    }
}

/// What the init says next (or that it exited: `init` is its pidfd): Some(listener) when it
/// hands its seccomp listener over, None once it has started.
/// Bounded, and given up as soon as the init's cgroup shows frozen (`cgroups`).
pub fn next_report(
    conn: &OwnedFd,
    init: &OwnedFd,
    cgroups: Option<&[crate::cgroups::CgroupDir]>,
) -> Result<Option<OwnedFd>> {
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN), PollFd::new(init.as_fd(), PollFlags::POLLIN)];
    let waited = super::sync::Waited { what: "the container init to start its process", cgroups };
    loop {
        super::sync::wait_readable(&mut fds, &waited)?;
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            break;
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return Err(init_gone());
        }
    }
    let mut report = [0u8; 4096];
    let (len, listener) = crate::sys::recv_with_fd(conn, &mut report).ctx("receive", "start report")?;
    if len == 0 {
        return Err(init_gone());
    }
    match (report[0], listener) {
        (b'L', Some(fd)) => Ok(Some(fd)),
        (b'0', None) => Ok(None),
        (FAILED, None) => Err(Error::Init { code: 1, msg: String::from_utf8_lossy(&report[1..len]).into_owned() }),
        _ => Err(Error::Protocol { channel: "start", what: "unexpected report from the container init".into() }),
    }
}

/// `start`'s answer once the listener is delivered.
pub fn answer(conn: &OwnedFd) -> Result<()> {
    nix::sys::socket::send(conn.as_raw_fd(), b"1", MsgFlags::MSG_NOSIGNAL).ctx("answer", "container init")?;
    Ok(())
}

fn init_gone() -> Error {
    Error::Exited { who: "container init".into(), when: "before start".into() }
}
