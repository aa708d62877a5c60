//! SCMP_ACT_NOTIFY: the listener fd goes to the process at linux.seccomp.listenerPath, with
//! the container process state (runtime-spec's seccomp state format) as the message's data.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde_json::{json, Value};

use crate::error::{Result, SysContext};

pub fn send_listener(path: &Path, listener: &OwnedFd, pid: i32, metadata: Option<&str>, state: Value) -> Result<()> {
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .ctx("create socket for", path.display())?;
    let addr = UnixAddr::new(path).ctx("seccomp listener address", path.display())?;
    connect(sock.as_raw_fd(), &addr).ctx("failed to connect with seccomp agent at", path.display())?;
    let message = json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata.unwrap_or_default(),
        "state": state,
    })
    .to_string();
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(message.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx("send seccomp listener to", path.display())?;
    Ok(())
}
