//! Terminals. A container's pty comes from its own devpts instance (so its name inside is
//! /dev/pts/N), its master goes to the engine over the console socket in exactly one message —
//! the pty's name as data and the master as the only SCM_RIGHTS fd, which is all containerd and
//! conmon accept — and the peer becomes the process's controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, setsid};

use crate::error::{Error, Result, SysContext};
use crate::sys;

pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
    pub name: String,
}

/// Connects to an engine's console socket (before the caller enters the container's mount
/// namespace, where the socket's path would not exist).
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx("create socket for", path.display())?;
    let addr = UnixAddr::new(path).ctx("console socket address", path.display())?;
    connect(sock.as_raw_fd(), &addr).ctx("connect to console socket", path.display())?;
    Ok(sock)
}

/// Opens a new pty from the devpts whose ptmx node is `ptmx` (already resolved inside the
/// container's root).
pub fn open_pty(ptmx: OwnedFd) -> Result<Pty> {
    let number = sys::pty_unlock(&ptmx).ctx("unlock pty", "/dev/pts/ptmx")?;
    let peer = sys::pty_peer(&ptmx).ctx("open pty peer", format!("/dev/pts/{number}"))?;
    Ok(Pty { master: ptmx, peer, name: format!("/dev/pts/{number}") })
}

/// The flags a ptmx node is opened with: no controlling-terminal side effect, not a symlink.
pub fn ptmx_flags() -> OFlag {
    OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW
}

/// A new pty as the container's process gets it, from the devpts whose ptmx node is `ptmx`:
/// sized as process.consoleSize asks, owned by the process's user with the group devpts gave
/// it (tty, gid 5: runc changes only the owner, and `mesg` and `write` rely on the group).
/// Only a pty berth made itself changes owner (never a host file behind the caller's stdio).
pub fn open_for(ptmx: OwnedFd, process: &oci_spec::runtime::Process) -> Result<Pty> {
    let pty = open_pty(ptmx)?;
    if let Some(size) = process.console_size() {
        set_size(&pty, size.height() as u16, size.width() as u16)?;
    }
    let owner = nix::unistd::Uid::from_raw(process.user().uid());
    nix::unistd::fchown(&pty.peer, Some(owner), None).ctx("chown", &pty.name)?;
    Ok(pty)
}

pub fn set_size(pty: &Pty, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    sys::set_winsize(&pty.master, &ws).ctx("set terminal size", &pty.name)
}

/// One message: the pty's name as data, the master as the only fd.
pub fn send_master(socket: &OwnedFd, pty: &Pty) -> Result<()> {
    let fds = [pty.master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(pty.name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ctx("send pty master", "console socket")?;
    Ok(())
}

/// The receiving side, for `run` and `exec` relaying the caller's own terminal. When what
/// the process writes goes to a file or pipe rather than a terminal, the pty's ONLCR goes
/// off, as engines clear it on the masters they receive: the bytes arrive as written, "\n"
/// not "\r\n". A caller's terminal (in raw mode while berth relays) needs the pty's "\r".
pub fn recv_master(socket: &OwnedFd) -> Result<OwnedFd> {
    let master = recv_fd(socket)?;
    if !nix::unistd::isatty(std::io::stdout()).unwrap_or(false) {
        let mut modes = tcgetattr(&master).ctx("read terminal modes of", "the container's pty")?;
        modes.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(&master, SetArg::TCSANOW, &modes).ctx("set terminal modes of", "the container's pty")?;
    }
    Ok(master)
}

fn recv_fd(socket: &OwnedFd) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let (_, master) = crate::sys::recv_with_fd(socket, &mut name).ctx("receive pty master", "console")?;
    master.ok_or_else(|| Error::Protocol { channel: "console", what: "no pty master received".into() })
}

/// The peer becomes stdin, stdout, stderr and the controlling terminal of a new session.
pub fn make_controlling(peer: &OwnedFd) -> Result<()> {
    setsid().ctx("setsid", "container process")?;
    sys::set_controlling_tty(peer).ctx("set controlling terminal", "container process")?;
    let fd = peer.as_fd();
    dup2_stdin(fd).ctx("dup2", "terminal to stdin")?;
    dup2_stdout(fd).ctx("dup2", "terminal to stdout")?;
    dup2_stderr(fd).ctx("dup2", "terminal to stderr")?;
    Ok(())
}
