//! The channel between `create` and the container init: a SOCK_SEQPACKET socketpair, one JSON
//! message per packet. The init reports every failure over it with its context, so the parent
//! prints "mount \"proc\" on \"/proc\": EPERM" rather than "init exited with status 1".

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// parent -> init: uid_map and gid_map are written; the init may use its new ids.
    IdMapsWritten,
    /// init -> parent: mounts are done; run prestart and createRuntime hooks.
    RunHooks,
    /// parent -> init: hooks ran; here is the state JSON for the container-side hooks.
    HooksDone { state: String },
    /// init -> parent: everything is set up; the init now waits on the exec FIFO.
    Ready,
    /// init -> parent: the init failed; `code` is the exit code `run` reports.
    Failed { code: i32, msg: String },
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx("socketpair", "sync channel")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::Init { code: 125, msg: e.to_string() })?;
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).ctx("send", "sync channel")?;
        Ok(())
    }

    /// None when the other side closed the channel (exited) without a message.
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; 256 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.ctx("receive", "sync channel")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init { code: 125, msg: format!("sync channel: {e}") })
    }

    /// Waits for exactly `expected`; a failure report becomes the error it describes.
    pub fn expect(&self, what: &str, check: impl Fn(&Message) -> bool) -> Result<Message> {
        match self.recv()? {
            Some(Message::Failed { code, msg }) => Err(Error::Init { code, msg }),
            Some(m) if check(&m) => Ok(m),
            Some(m) => Err(Error::Init { code: 125, msg: format!("sync channel: expected {what}, got {m:?}") }),
            None => Err(Error::Init { code: 125, msg: format!("container init exited before {what}") }),
        }
    }
}
