//! `start`: what happens between create and the container's process. The init created by
//! `create` waits in accept(2) on start.sock (process::start_gate); `start` connects, the init
//! loads its seccomp filter (handing over a NOTIFY listener, which goes to
//! linux.seccomp.listenerPath), runs the startContainer hooks and reports; then `start` runs
//! the poststart hooks while the init execs the process.

use std::path::Path;

use super::create::CONFIG_COPY;
use super::lifecycle::{load_locked, Container};
use super::state::Status;
use crate::cgroups;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookPoint};
use crate::process::start_gate;

/// Releases the init waiting in start_gate, delivers its seccomp NOTIFY listener if it hands
/// one over, then runs the poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let (_lock, c) = load_locked(root, id)?;
    let status = c.status();
    if status != Status::Created {
        return Err(Error::NotCreated { id: id.into(), status: status.to_string() });
    }
    let pidfd = c.pidfd()?;
    // An init frozen in its cgroup would never answer.
    if let Some(frozen) = cgroups::frozen_dir(&c.state.cgroups) {
        return Err(Error::Busy(format!("container's cgroup unexpectedly frozen: {}", frozen.display())));
    }
    let conn = start_gate::connect(&c.dir)?;
    let socket = c.dir.join(start_gate::SOCKET);
    std::fs::remove_file(&socket).ctx("remove start socket", socket.display())?;
    let cgroups = Some(c.state.cgroups.as_slice());
    if let Some(listener) = start_gate::next_report(&conn, &pidfd, cgroups)? {
        deliver_listener(&c, listener)?;
        start_gate::answer(&conn)?;
        if start_gate::next_report(&conn, &pidfd, cgroups)?.is_some() {
            return Err(Error::Protocol {
                channel: "start",
                what: "the container init handed over two listeners".into(),
            });
        }
    }
    crate::logging::debug(&format!("start {id}: init {} released", c.state.pid));
    let json = c.state.oci(Status::Running).to_string();
    hooks::run_warn(HookPoint::Poststart, c.state.hooks.as_ref(), &json);
    Ok(())
}

/// Hands the init's seccomp NOTIFY listener to linux.seccomp.listenerPath, with the state.
fn deliver_listener(c: &Container, listener: std::os::fd::OwnedFd) -> Result<()> {
    let path = c.dir.join(CONFIG_COPY);
    let text = std::fs::read(&path).map_err(|source| Error::ReadConfig { path: path.clone(), source })?;
    let spec = crate::spec::parse_saved(&text, &path)?;
    let section = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(listener_path) = section.and_then(|s| s.listener_path().as_deref()) else { return Ok(()) };
    let metadata = section.and_then(|s| s.listener_metadata().as_deref());
    crate::security::seccomp::send_listener(
        listener_path,
        &listener,
        c.state.pid,
        metadata,
        c.state.oci(Status::Running),
    )
}
