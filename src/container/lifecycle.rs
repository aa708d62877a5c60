//! start, kill, delete, state and list on a recorded container.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::dir::ContainerDir;
use super::state::{State, Status};
use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::process::start_gate;
use crate::procfs;
use crate::{cgroups, sys};

pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

impl Container {
    /// Derived from the live process every time: a pid that is gone, a zombie, or a pid reused
    /// by another process (start time differs) all mean stopped.
    pub fn status(&self) -> Status {
        if self.state.creating.is_some() {
            Status::Creating
        } else if !procfs::is_alive(self.state.pid, self.state.pid_start_time) {
            Status::Stopped
        } else if self.dir.join(start_gate::SOCKET).exists() {
            Status::Created
        } else if cgroups::is_frozen(&self.state.cgroups) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn oci_state(&self) -> serde_json::Value {
        self.state.oci(self.status())
    }

    /// A pidfd for the init, checked to still be the process we recorded.
    pub(super) fn pidfd(&self) -> Result<std::os::fd::OwnedFd> {
        let pid = Pid::from_raw(self.state.pid);
        let fd = sys::pidfd_open(pid).map_err(|_| Error::ContainerNotRunning)?;
        if !procfs::is_alive(self.state.pid, self.state.pid_start_time) {
            return Err(Error::ContainerNotRunning);
        }
        Ok(fd)
    }
}

/// Reads a container without locking it (`state`, `list`): state.json is replaced atomically.
/// A state directory without state.json is a container being created (or whose creator died
/// before it recorded anything).
pub fn load(root: &Path, id: &str) -> Result<Container> {
    super::dir::validate_id(id)?;
    let dir = super::dir::state_dir(root, id);
    match State::read(&dir) {
        Ok(state) => Ok(Container { state, dir }),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if dir.is_dir() {
                Ok(Container { state: State::unrecorded(id), dir })
            } else {
                Err(Error::ContainerNotFound(id.into()))
            }
        }
        Err(e) => Err(e),
    }
}

pub(super) fn load_locked(root: &Path, id: &str) -> Result<(ContainerDir, Container)> {
    let lock = ContainerDir::open(root, id)?;
    let container = Container { state: State::read(&lock.path)?, dir: lock.path.clone() };
    if container.state.creating.is_some() {
        return Err(being_created(id, &container.state));
    }
    Ok((lock, container))
}

/// The error for a command on a container whose create has not finished.
pub(super) fn being_created(id: &str, state: &State) -> Error {
    match state.creating.filter(|c| c.is_alive()) {
        Some(creator) => Error::Busy(format!(
            "container {id:?} is being created by process {} ({}); try again when that has finished",
            creator.pid,
            procfs::cmdline(creator.pid)
        )),
        None => Error::Busy(format!(
            "container {id:?} was being created by a process that died: `delete` it (its status is creating)"
        )),
    }
}

/// Accepts what runc accepts: "9", "KILL", "SIGKILL" (any case), and 0: no signal, only the
/// check that the container's process is alive (kill(2)'s signal 0).
pub fn parse_signal(s: &str) -> Result<Option<Signal>> {
    let unknown = || Error::InvalidArgument(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return if n == 0 { Ok(None) } else { Signal::try_from(n).map(Some).map_err(|_| unknown()) };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map(Some).map_err(|_| unknown())
}

/// `signal` None sends nothing: it only checks that the process is there.
pub fn kill(root: &Path, id: &str, signal: Option<Signal>, all: bool) -> Result<()> {
    let (_lock, c) = load_locked(root, id)?;
    let raw = signal.map_or(0, |s| s as i32);
    if all {
        // Whatever is left in the cgroup, which may be nothing once the container stopped:
        // engines kill --all a stopped container to reap stragglers, and runc says nothing.
        for pid in cgroups::pids(&c.state.cgroups) {
            match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(Error::sys("kill", pid, e)),
            }
        }
        return Ok(());
    }
    if c.status() == Status::Stopped {
        return Err(Error::ContainerNotRunning);
    }
    let pidfd = c.pidfd()?;
    match sys::pidfd_send_signal(&pidfd, raw) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => Err(Error::ContainerNotRunning),
        Err(e) => Err(Error::sys("kill", format!("container {id} init {}", c.state.pid), e)),
    }
}

/// Freezes every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (_lock, c) = load_locked(root, id)?;
    if c.status() != Status::Running {
        return Err(Error::ContainerNotRunning);
    }
    cgroups::freeze(&c.state.cgroups)
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (_lock, c) = load_locked(root, id)?;
    if c.status() != Status::Paused {
        return Err(Error::ContainerNotPaused);
    }
    cgroups::thaw(&c.state.cgroups)
}

/// Stopped containers are removed; created ones are killed first (as runc does); running or
/// paused ones only with `force`. `force` on an unknown id succeeds, as containerd's shim
/// expects after the container is already gone. A container whose create has not finished is
/// refused while its creator runs (it finishes, or undoes what it made, itself); once the
/// creator is gone, whatever its record names is taken apart, with or without `force`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    // Looked at before taking the lock, which a live creator holds: refused at once. A
    // directory with no record yet names no creator: whoever holds its lock is one.
    let mut wait = super::dir::LOCK_TIMEOUT;
    if let Ok(c) = load(root, id) {
        if c.state.creating.is_some_and(|creator| creator.is_alive()) {
            return Err(being_created(id, &c.state));
        }
        if c.state.creating.is_some() {
            wait = Duration::ZERO;
        }
    }
    let lock = match ContainerDir::open_any_within(root, id, wait) {
        Ok(lock) => lock,
        Err(Error::ContainerNotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let c = match State::read(&lock.path) {
        Ok(state) => Container { state, dir: lock.path.clone() },
        // Nothing recorded: the creator died before it made anything but the directory.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Container { state: State::unrecorded(id), dir: lock.path.clone() }
        }
        // A record that cannot be read cannot be undone: said, and left for a person.
        Err(e) => return Err(e),
    };
    let status = c.status();
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::NotStopped { id: id.into(), status: status.to_string() });
    }
    destroy(&c)?;
    lock.remove()?;
    crate::logging::debug(&format!("delete {id}: processes, cgroups and state removed"));
    // Poststop hooks follow a container that was created; an unfinished create ran none of
    // the hooks after which they would clean up.
    if status != Status::Creating {
        let json = c.state.oci(Status::Stopped).to_string();
        hooks::run_warn(HookPoint::Poststop, c.state.hooks.as_ref(), &json);
    }
    Ok(())
}

/// Kills every process of the container, waits for the init to be gone, removes the cgroup.
/// Bounded throughout: the init is waited for at most 10 s, the cgroups at most 5 s.
fn destroy(c: &Container) -> Result<()> {
    // A frozen task cannot act on SIGKILL until thawed, on whichever freezer froze it.
    if !c.state.cgroups.is_empty() {
        cgroups::thaw_all(&c.state.cgroups);
    }
    // Only the init we recorded (pid and start time), never a process that reused its pid.
    let init = c.pidfd().ok();
    if let Some(fd) = &init {
        let _ = sys::pidfd_send_signal(fd, Signal::SIGKILL as i32);
    }
    kill_cgroup(&c.state.cgroups);
    if let Some(fd) = &init {
        wait_readable(fd, Duration::from_secs(10));
    }
    if let Some(group) = &c.state.resctrl {
        crate::resctrl::destroy(group);
    }
    if let Some(before) = &c.state.mounts_before {
        crate::rootfs::unmount_added(&c.state.rootfs, before)?;
    }
    // A process forked while we killed (a setup that was still cloning) is killed again.
    cgroups::destroy_with(&c.state.cgroups, || kill_cgroup(&c.state.cgroups))?;
    match &c.state.systemd_unit {
        Some(unit) => {
            let dir = c.state.cgroups.first().map(|d| d.path.as_path());
            cgroups::systemd::stop(unit, dir)
        }
        None => Ok(()),
    }
}

fn kill_cgroup(dirs: &[cgroups::CgroupDir]) {
    for pid in cgroups::all_pids(dirs) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn wait_readable(fd: &std::os::fd::OwnedFd, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

/// Every container under the root, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read runtime root", root.display(), e)),
    };
    let mut out: Vec<Container> =
        entries.filter_map(|e| e.ok()).filter_map(|e| load(root, &e.file_name().to_string_lossy()).ok()).collect();
    out.sort_by(|a, b| a.state.id.cmp(&b.state.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("KILL").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Some(Signal::SIGUSR1));
        assert_eq!(parse_signal("0").unwrap(), None);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
