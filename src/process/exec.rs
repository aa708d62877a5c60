//! `exec`: a new process in a running container, made in two steps so that no container
//! process ever sees it while it still has anything of the host.
//!
//! An intermediate is cloned into the container's cgroup but outside its pid namespace, where
//! nothing in the container can see it. It joins the container's user namespace first, then
//! the others (joining the mount namespace makes the container's root its root and cwd), and
//! closes every fd but the few the process needs. Only then does it fork the exec'd process
//! into the container's pid and time namespaces, with berth as its parent, and exit. That
//! process takes the same last steps as the init.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, Process};
use std::os::fd::AsFd;

use super::init::become_namespace_root;
use super::launch::{self, Program};
use super::namespaces::for_children_only;
use super::sync::{self, Channel, Message, Waited};
use crate::error::{Error, Result, SysContext};
use crate::security::seccomp::Compiled;
use crate::tty;

pub struct ExecConfig<'a> {
    pub process: &'a Process,
    /// The container's linux section: its personality and NUMA policy hold for this process too.
    pub linux: Option<&'a Linux>,
    /// The init's namespaces, user first.
    pub namespaces: Vec<(CloneFlags, File)>,
    pub cgroups: Vec<crate::cgroups::CgroupDir>,
    pub resctrl: Option<&'a crate::resctrl::Group>,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Compiled>,
    /// The init's root (/proc/<init>/root), for a container in the runtime's mount namespace:
    /// joining no mount namespace, the process takes the container's root by chroot.
    pub root: Option<File>,
    /// --ignore-paused: a frozen cgroup is no reason to give up waiting for the process.
    pub ignore_paused: bool,
}

/// Delivers a seccomp NOTIFY listener for the process `pid` to its listener.
pub type DeliverListener<'a> = dyn FnMut(Pid, OwnedFd) -> Result<()> + 'a;

/// Returns the new process's host pid once it is about to execve.
pub fn spawn(cfg: &ExecConfig, deliver: &mut DeliverListener) -> Result<Pid> {
    let (parent_end, child_end) = sync::pair()?;
    let intermediate = match super::fork_into_cgroup(CloneFlags::empty(), &cfg.cgroups) {
        Ok(super::Forked { child: None, born_in_unified }) => {
            drop(parent_end);
            enter_container(cfg, child_end, born_in_unified)
        }
        Ok(super::Forked { child: Some(pid), .. }) => pid,
        Err(errno) => return Err(Error::sys("clone", "exec process", errno)),
    };
    drop(child_end);
    let mut pid = intermediate;
    // With --ignore-paused a frozen container is expected: the process is made once thawed.
    let waited = Waited {
        what: "the exec'd process to be ready",
        cgroups: (!cfg.ignore_paused).then_some(cfg.cgroups.as_slice()),
    };
    if let Err(e) = handshake(&parent_end, intermediate, &mut pid, deliver, &waited) {
        for p in [pid, intermediate] {
            let _ = kill(p, Signal::SIGKILL);
            super::spawn::reap_bounded(p);
        }
        return Err(e);
    }
    Ok(pid)
}

fn handshake(
    ch: &Channel,
    intermediate: Pid,
    pid: &mut Pid,
    deliver: &mut DeliverListener,
    waited: &Waited,
) -> Result<()> {
    loop {
        ch.wait(waited)?;
        match ch.recv_with_fd()? {
            Some((Message::ExecPid { pid: real }, _)) => {
                let _ = waitpid(intermediate, None);
                *pid = Pid::from_raw(real);
            }
            Some((Message::Prepared, _)) => ch.send(&Message::Proceed)?,
            Some((Message::Ready, listener)) => {
                if let Some(fd) = listener {
                    deliver(*pid, fd)?;
                    ch.send(&Message::ListenerSent)?;
                }
                return Ok(());
            }
            Some((Message::Failed { code, msg }, _)) => return Err(Error::Init { code, msg }),
            Some((other, _)) => {
                return Err(Error::Protocol { channel: "sync channel", what: format!("unexpected {other:?}") })
            }
            None => return Err(Error::Exited { who: "exec process".into(), when: "before it was ready".into() }),
        }
    }
}

/// The intermediate: into the container, then the fork into its pid namespace.
fn enter_container(cfg: &ExecConfig, ch: Channel, born_in_cgroup: bool) -> ! {
    crate::logging::forget_log_file();
    super::die_with_runtime(&ch);
    let in_userns = match join(cfg, &ch, born_in_cgroup) {
        Ok(in_userns) => in_userns,
        Err(e) => fail(&ch, e),
    };
    if let Err(e) = super::fork_into_pid_namespace(&ch, |pid| Message::ExecPid { pid }) {
        fail(&ch, e);
    }
    let program = match setup(cfg, in_userns) {
        Ok(p) => p,
        Err(e) => fail(&ch, e),
    };
    // Whole but for the filter and execve: berth says whether to go on. A berth that died
    // meanwhile closed the channel (and its death killed us, unless our credentials changed).
    // From its answer the process may outlive berth (`exec -d` returns at once), so the
    // setting goes, which the kernel would keep across execve; before the filter, which may
    // deny prctl.
    let proceed = ch
        .send(&Message::Prepared)
        .and_then(|()| ch.expect("go-ahead", |m| matches!(m, Message::Proceed)))
        .and_then(|_| nix::sys::prctl::set_pdeathsig(None).ctx("clear parent-death signal", "exec"));
    if let Err(e) = proceed {
        fail(&ch, e);
    }
    let e = match program.enter_seccomp().and_then(|listener| ready(&ch, listener.as_ref())) {
        Ok(()) => program.exec(),
        Err(e) => fail(&ch, e),
    };
    eprintln!("berth: {e}");
    crate::sys::exit_now(e.run_exit_code());
}

fn fail(ch: &Channel, e: Error) -> ! {
    let _ = ch.send(&Message::Failed { code: e.run_exit_code(), msg: e.to_string() });
    crate::sys::exit_now(1)
}

/// Joins everything but the pid and time namespaces (set for the children instead) and keeps
/// only the fds the exec'd process needs. Returns whether it is in a user namespace.
fn join(cfg: &ExecConfig, ch: &Channel, born_in_cgroup: bool) -> Result<bool> {
    let mut keep: Vec<RawFd> = (0..3 + cfg.preserve_fds as RawFd).collect();
    keep.push(ch.raw_fd());
    keep.extend(cfg.console.map(|c| c.as_raw_fd()));
    keep.extend(cfg.namespaces.iter().map(|(_, f)| f.as_raw_fd()));
    keep.extend(cfg.root.iter().map(|f| f.as_raw_fd()));
    super::fds::close_all_except(&keep)?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx("reset signal mask", "exec")?;
    nix::sys::prctl::set_dumpable(false).ctx("set non-dumpable", "exec")?;
    crate::cgroups::join_self(&cfg.cgroups, born_in_cgroup)?;
    crate::resctrl::join_self(cfg.resctrl)?;
    let mut in_userns = false;
    for (kind, file) in cfg.namespaces.iter().filter(|(k, _)| !for_children_only(*k)) {
        setns(file.as_fd(), *kind).ctx("join namespace", format!("{kind:?}"))?;
        if *kind == CloneFlags::CLONE_NEWUSER {
            in_userns = true;
            become_namespace_root()?;
        }
    }
    for (kind, file) in cfg.namespaces.iter().filter(|(k, _)| for_children_only(*k)) {
        setns(file.as_fd(), *kind).ctx("join namespace", format!("{kind:?}"))?;
    }
    if let Some(root) = &cfg.root {
        nix::unistd::fchdir(root).ctx("chdir", "the container's root")?;
        nix::unistd::chroot(".").ctx("chroot", "the container's root")?;
        nix::unistd::chdir("/").ctx("chdir", "/")?;
    }
    let mut keep: Vec<RawFd> = (0..3 + cfg.preserve_fds as RawFd).collect();
    keep.push(ch.raw_fd());
    keep.extend(cfg.console.map(|c| c.as_raw_fd()));
    super::fds::close_all_except(&keep)?;
    Ok(in_userns)
}

fn setup(cfg: &ExecConfig, in_userns: bool) -> Result<Program> {
    if let Some(console) = cfg.console {
        setup_terminal(cfg.process, console)?;
    }
    launch::prepare(cfg.process, cfg.linux, true, in_userns, &[], cfg.preserve_fds, cfg.seccomp)
}

/// "ready", with the NOTIFY listener when there is one; then berth has delivered it.
fn ready(ch: &Channel, listener: Option<&OwnedFd>) -> Result<()> {
    match listener {
        None => ch.send(&Message::Ready),
        Some(fd) => {
            ch.send_fd(&Message::Ready, fd)?;
            ch.expect("listener sent", |m| matches!(m, Message::ListenerSent)).map(drop)
        }
    }
}

/// Inside the container's mount namespace now: the pty comes from its /dev/pts.
fn setup_terminal(process: &Process, console: &OwnedFd) -> Result<()> {
    let ptmx = nix::fcntl::open("/dev/pts/ptmx", tty::ptmx_flags(), nix::sys::stat::Mode::empty())
        .ctx("open", "/dev/pts/ptmx")?;
    let pty = tty::open_for(ptmx, process)?;
    tty::send_master(console, &pty)?;
    tty::make_controlling(&pty.peer)
}
