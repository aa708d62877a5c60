//! The channel between `create` and the container init: a SOCK_SEQPACKET socketpair, one JSON
//! message per packet. The init reports every failure over it with its context, so the parent
//! prints "mount \"proc\" on \"/proc\": EPERM" rather than "init exited with status 1".

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use std::io::IoSlice;
use std::os::fd::RawFd;

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// parent -> init: uid_map and gid_map are written; the init may use its new ids.
    IdMapsWritten,
    /// init -> parent: the init forked into its new pid namespace (the path taken when the
    /// user namespace is joined by path); `pid` is the real init, the sender exits.
    InitPid { pid: i32 },
    /// init -> parent: mounts are done; run prestart and createRuntime hooks.
    RunHooks,
    /// parent -> init: hooks ran; here is the state JSON for the container-side hooks.
    HooksDone { state: String },
    /// init -> parent: everything is set up; the init now waits for `start`. From an exec'd
    /// process: it is about to exec, and its seccomp NOTIFY listener may ride along.
    Ready,
    /// init -> parent: the init failed; `code` is the exit code `run` reports.
    Failed { code: i32, msg: String },
    /// parent -> exec'd process: its seccomp NOTIFY listener was delivered.
    ListenerSent,
    /// intermediate -> parent: the exec'd process was forked into the container's pid
    /// namespace, with the runtime as its parent; `pid` is its host pid.
    ExecPid { pid: i32 },
    /// exec'd process -> parent: set up, about to load its filter and exec; waits for
    /// `Proceed`, so that a berth killed before it has the process die half made, not run.
    Prepared,
    /// parent -> exec'd process: go on to execve.
    Proceed,
    /// parent -> init: the overlay rootfs, made as a detached mount while the init set itself
    /// up, rides along (SCM_RIGHTS). Without an fd the init mounts the overlay itself.
    OverlayMade,
    /// init -> parent: in a user namespace, clone config mount `index`'s bind source (which
    /// the namespace's root may not reach) as a detached tree and send it.
    CloneBindSource { index: usize },
    /// parent -> init: that tree rides along; without an fd the init binds the path itself.
    BindSourceCloned,
}

pub struct Channel {
    fd: OwnedFd,
}

/// What a wait is for, named in the error when it runs out, and the cgroup of the process
/// waited for: a process frozen there never answers, and the wait ends as soon as that shows.
pub struct Waited<'a> {
    pub what: &'static str,
    pub cgroups: Option<&'a [crate::cgroups::CgroupDir]>,
}

/// No wait for the container's processes is longer: setup and start take milliseconds, and
/// what may take long in between (the create-time hooks) has a timeout of its own in practice.
const WAIT_LIMIT: Duration = Duration::from_secs(300);
/// How often a long wait checks that the other side's cgroup was not frozen.
const FROZEN_CHECK_MS: u16 = 250;

/// Waits until one of `fds` has something, at most WAIT_LIMIT. Costs one poll(2) when the
/// answer is already there, as it mostly is.
pub fn wait_readable(fds: &mut [PollFd], waited: &Waited) -> Result<()> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        match poll(fds, PollTimeout::from(FROZEN_CHECK_MS)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("wait for", waited.what, e)),
        }
        if let Some(dir) = waited.cgroups.and_then(crate::cgroups::frozen_dir) {
            return Err(Error::Busy(format!(
                "container's cgroup unexpectedly frozen ({}) while waiting for {}",
                dir.display(),
                waited.what
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy(format!("gave up waiting for {} after {}s", waited.what, WAIT_LIMIT.as_secs())));
        }
    }
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx("socketpair", "sync channel")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits (bounded, see wait_readable) until a message, or the other side's exit, is there.
    pub fn wait(&self, waited: &Waited) -> Result<()> {
        wait_readable(&mut [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)], waited)
    }

    /// Whether the other end is closed: the process at it has exited.
    pub fn peer_gone(&self) -> bool {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
    }

    pub fn send(&self, msg: &Message) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|source| Error::Encode { source })?;
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).ctx("send", "sync channel")?;
        Ok(())
    }

    /// A message with an fd attached to the same packet.
    pub fn send_fd(&self, msg: &Message, fd: &OwnedFd) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|source| Error::Encode { source })?;
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(self.fd.as_raw_fd(), &[IoSlice::new(&bytes)], &cmsg, MsgFlags::MSG_NOSIGNAL, None)
            .ctx("send", "sync channel")?;
        Ok(())
    }

    /// None when the other side closed the channel (exited) without a message.
    pub fn recv(&self) -> Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    pub fn recv_with_fd(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; self.next_size()?];
        let (n, fd) = crate::sys::recv_with_fd(&self.fd, &mut buf).ctx("receive", "sync channel")?;
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Protocol { channel: "sync channel", what: e.to_string() })?;
        Ok(Some((msg, fd)))
    }

    /// The size of the next packet, waiting for it: a message is as long as the state JSON
    /// it may carry, and a buffer for the longest one possible (an mmap and munmap each time)
    /// would cost more than this peek. No control buffer: a peek would install the fds.
    fn next_size(&self) -> Result<usize> {
        loop {
            let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut [], None, flags) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("receive", "sync channel", e)),
                Ok(msg) => return Ok(msg.bytes),
            }
        }
    }

    /// Waits for exactly `expected`; a failure report becomes the error it describes.
    pub fn expect(&self, what: &str, check: impl Fn(&Message) -> bool) -> Result<Message> {
        match self.recv()? {
            Some(Message::Failed { code, msg }) => Err(Error::Init { code, msg }),
            Some(m) if check(&m) => Ok(m),
            Some(m) => Err(Error::Protocol { channel: "sync channel", what: format!("expected {what}, got {m:?}") }),
            None => Err(Error::Exited { who: "container init".into(), when: format!("before {what}") }),
        }
    }
}
