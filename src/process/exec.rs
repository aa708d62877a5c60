//! `exec`: a new process in a running container. berth enters the container's pid and time
//! namespaces for its children, clones, and the child joins the cgroup and every other
//! namespace of the init (user first), then takes the same last steps as the init.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fchown, Gid, Pid, Uid};
use oci_spec::runtime::Process;
use std::os::fd::AsFd;

use super::init::{become_namespace_root, hand_over_listener};
use super::launch::{self, Program};
use super::namespaces::{for_children_only, ParentNamespaces};
use super::sync::{self, Channel, Message};
use crate::error::{Error, Result, SysContext};
use crate::security::seccomp::Compiled;
use crate::tty;

pub struct ExecConfig<'a> {
    pub process: &'a Process,
    /// The init's namespaces, user first.
    pub namespaces: Vec<(CloneFlags, File)>,
    pub cgroups: Vec<crate::cgroups::CgroupDir>,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Compiled>,
}

/// Delivers a seccomp NOTIFY listener for the process `pid` to its listener.
pub type DeliverListener<'a> = dyn FnMut(Pid, OwnedFd) -> Result<()> + 'a;

/// Returns the new process's host pid once it is about to execve.
pub fn spawn(cfg: &ExecConfig, deliver: &mut DeliverListener) -> Result<Pid> {
    let (parent_end, child_end) = sync::pair()?;
    let saved = ParentNamespaces::enter_files(&cfg.namespaces)?;
    let pid = match super::fork_into_cgroup(CloneFlags::empty(), &cfg.cgroups) {
        Ok(super::Forked { child: None, born_in_unified }) => {
            drop(parent_end);
            run(cfg, child_end, born_in_unified)
        }
        Ok(super::Forked { child: Some(pid), .. }) => pid,
        Err(errno) => {
            let _ = saved.restore();
            return Err(Error::sys("clone", "exec process", errno));
        }
    };
    drop(child_end);
    let result = saved.restore().and_then(|()| handshake(&parent_end, pid, deliver));
    if let Err(e) = result {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    Ok(pid)
}

fn handshake(ch: &Channel, pid: Pid, deliver: &mut DeliverListener) -> Result<()> {
    loop {
        match ch.recv_with_fd()? {
            Some((Message::SeccompListener, Some(fd))) => {
                deliver(pid, fd)?;
                ch.send(&Message::ListenerSent)?;
            }
            Some((Message::Ready, _)) => return Ok(()),
            Some((Message::Failed { code, msg }, _)) => return Err(Error::Init { code, msg }),
            Some((other, _)) => {
                return Err(Error::Init { code: 125, msg: format!("sync channel: unexpected {other:?}") })
            }
            None => return Err(Error::Init { code: 125, msg: "exec process exited before it was ready".into() }),
        }
    }
}

fn run(cfg: &ExecConfig, ch: Channel, born_in_cgroup: bool) -> ! {
    let program = match setup(cfg, &ch, born_in_cgroup) {
        Ok(p) => p,
        Err(e) => {
            let _ = ch.send(&Message::Failed { code: e.run_exit_code(), msg: e.to_string() });
            crate::sys::exit_now(1);
        }
    };
    if ch.send(&Message::Ready).is_err() {
        crate::sys::exit_now(1);
    }
    drop(ch);
    let e = launch::exec(&program);
    eprintln!("berth: {e}");
    crate::sys::exit_now(e.run_exit_code());
}

fn setup(cfg: &ExecConfig, ch: &Channel, born_in_cgroup: bool) -> Result<Program> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx("reset signal mask", "exec")?;
    nix::sys::prctl::set_dumpable(false).ctx("set non-dumpable", "exec")?;
    crate::cgroups::join_self(&cfg.cgroups, born_in_cgroup)?;
    let mut in_userns = false;
    for (kind, file) in cfg.namespaces.iter().filter(|(k, _)| !for_children_only(*k)) {
        setns(file.as_fd(), *kind).ctx("join namespace", format!("{kind:?}"))?;
        if *kind == CloneFlags::CLONE_NEWUSER {
            in_userns = true;
            become_namespace_root()?;
        }
    }
    if let Some(console) = cfg.console {
        setup_terminal(cfg.process, console)?;
    }
    let mut program = launch::prepare(cfg.process, in_userns, &[], cfg.preserve_fds, cfg.seccomp)?;
    if let Some(listener) = program.seccomp_listener.take() {
        hand_over_listener(ch, &listener)?;
    }
    Ok(program)
}

/// Inside the container's mount namespace now: the pty comes from its /dev/pts.
fn setup_terminal(process: &Process, console: &OwnedFd) -> Result<()> {
    let ptmx = nix::fcntl::open("/dev/pts/ptmx", tty::ptmx_flags(), nix::sys::stat::Mode::empty())
        .ctx("open", "/dev/pts/ptmx")?;
    let pty = tty::open_pty(ptmx)?;
    if let Some(size) = process.console_size() {
        tty::set_size(&pty, size.height() as u16, size.width() as u16)?;
    }
    let user = process.user();
    fchown(&pty.peer, Some(Uid::from_raw(user.uid())), Some(Gid::from_raw(user.gid()))).ctx("chown", &pty.name)?;
    tty::send_master(console, &pty)?;
    tty::make_controlling(&pty.peer)
}
