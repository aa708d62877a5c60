//! A foreground `run` or `exec`: berth stays the parent, forwards every signal it gets to the
//! container process, relays the caller's terminal when the process has a pty, and returns the
//! exit code shells use (the status itself, or 128+N for signal N).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{isatty, read, write, Pid};

use crate::error::{Error, Result, SysContext};

/// A foreground berth adopts the container's init even when the spawn sequence forked it
/// from an intermediate child (a joined user namespace), so it can wait for it.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Blocks the signals a foreground berth forwards, before the container process exists, so
/// none is lost between clone and the wait loop (the child unblocks them for itself).
pub fn block_forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE] {
        set.remove(s);
    }
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    set
}

pub fn supervise(pid: Pid, console: Option<OwnedFd>, signals: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC).ctx("signalfd", "supervisor")?;
    let stdin = std::io::stdin();
    let _raw = console.as_ref().and_then(|_| RawMode::enter(stdin.as_fd()));
    if let Some(master) = &console {
        copy_window_size(stdin.as_fd(), master);
    }
    let mut stdin_open = console.is_some();
    let mut master = console;
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(m) = master.take() {
                drain(&m);
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => r.ctx("poll", "supervisor")?,
        };
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if sig_ready {
            handle_signal(&sfd, pid, stdin.as_fd(), master.as_ref())?;
        }
        if master_ready && !copy(master.as_ref().map(|m| m.as_fd()), std::io::stdout().as_fd()) {
            master = None;
        }
        if stdin_ready {
            stdin_open = copy(Some(stdin.as_fd()), master.as_ref().map(|m| m.as_fd()).unwrap_or(stdin.as_fd()));
        }
    }
}

fn handle_signal(sfd: &SignalFd, pid: Pid, stdin: BorrowedFd, master: Option<&OwnedFd>) -> Result<()> {
    let Some(info) = sfd.read_signal().ctx("read signal", "supervisor")? else { return Ok(()) };
    match (Signal::try_from(info.ssi_signo as i32), master) {
        (Ok(Signal::SIGCHLD), _) | (Err(_), _) => {}
        // The caller's window changed: the pty follows, and the kernel tells the process.
        (Ok(Signal::SIGWINCH), Some(master)) => copy_window_size(stdin, master),
        (Ok(sig), _) => {
            let _ = kill(pid, sig);
        }
    }
    Ok(())
}

/// Copies what is readable now; false when the source is finished (EOF, or EIO from a pty
/// master whose peers are all closed).
fn copy(from: Option<BorrowedFd>, to: BorrowedFd) -> bool {
    let Some(from) = from else { return false };
    let mut buf = [0u8; 16 * 1024];
    match read(from, &mut buf) {
        Ok(0) | Err(Errno::EIO) => false,
        Ok(n) => {
            write_all(to, &buf[..n]);
            true
        }
        Err(Errno::EINTR) | Err(Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

fn write_all(to: BorrowedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match write(to, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// After the process exited, whatever it wrote last is still in the pty.
fn drain(master: &OwnedFd) {
    let _ = fcntl(master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    while copy(Some(master.as_fd()), std::io::stdout().as_fd()) {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            break;
        }
    }
}

fn copy_window_size(from: BorrowedFd, master: &OwnedFd) {
    if let Ok(ws) = crate::sys::get_winsize(&from.as_raw_fd()) {
        let _ = crate::sys::set_winsize(master, &ws);
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as i32)),
        Ok(_) => Ok(None),
        Err(e) => Err(Error::sys("wait for", format!("container process {pid}"), e)),
    }
}

/// The caller's terminal in raw mode while it drives the container's pty; restored on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter(stdin: BorrowedFd) -> Option<RawMode> {
        if !isatty(stdin).unwrap_or(false) {
            return None;
        }
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
