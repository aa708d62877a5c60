//! `exec` on a container: checks its state, opens the init's namespaces and hands off to
//! process::exec.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use super::create::{console_channel, write_pid_file, Console, CONFIG_COPY};
use super::lifecycle::load;
use super::state::Status;
use crate::error::{Error, Result};
use crate::process::exec::{self, ExecConfig};
use crate::process::namespaces::open_init_namespaces;
use crate::process::sealed_exe;
use crate::procfs;
use crate::security::seccomp;

pub struct ExecOptions {
    pub process: Process,
    pub console: Console,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// Sub-cgroups of the container's to put the process in (`--cgroup [controllers:]path`).
    pub sub_cgroup: Vec<String>,
    /// --pidfd-socket: where a pidfd of the new process goes.
    pub pidfd_socket: Option<PathBuf>,
}

pub struct Execd {
    pub pid: Pid,
    /// With a terminal relayed by this process: where the pty master arrives.
    pub console: Option<OwnedFd>,
}

/// A container whose processes may hold CAP_SYS_PTRACE in berth's user namespace can open the
/// executable of the exec'd process while it is still berth (sealed_exe): then berth first
/// re-executes itself from a sealed copy, and the exec'd process is forked from that. An exec
/// that brings CAP_SYS_PTRACE into a container whose processes could not hold it is recorded,
/// so every later exec into that container is sealed too; into a container that is created
/// but not started (its init is still berth, not made from a sealed copy) it is refused.
fn guard_runtime_exe(root: &Path, c: &super::Container, status: Status, spec: &Spec, process: &Process) -> Result<()> {
    let init_exposed = spec.process().as_ref().is_some_and(|init| sealed_exe::exposed(spec, &[init]));
    let exec_exposed = sealed_exe::exposed(spec, &[process]);
    if exec_exposed && !init_exposed {
        if status == Status::Created {
            return Err(Error::InvalidArgument(format!(
                "container {:?} is created but not started, and its init is still berth: an exec that may hold CAP_SYS_PTRACE could reach it; start the container first",
                c.state.id
            )));
        }
        if !c.state.ptrace_execs {
            super::State::mark_ptrace_exec(root, &c.state.id)?;
        }
    }
    if init_exposed || exec_exposed || c.state.ptrace_execs {
        sealed_exe::ensure()?;
    }
    Ok(())
}

/// The config the container was created with: exec's defaults (env, user, caps, cwd).
pub fn saved_config(root: &Path, id: &str) -> Result<Spec> {
    let c = load(root, id)?;
    let path = c.dir.join(CONFIG_COPY);
    let text = std::fs::read(&path).map_err(|source| Error::ReadConfig { path: path.clone(), source })?;
    crate::spec::parse_saved(&text, &path)
}

/// `exec --process FILE` ("-": stdin, read once across a re-exec): an OCI process JSON, checked
/// as a config's process is. A process without a user runs as the container's own does.
pub fn process_from_file(root: &Path, id: &str, path: &Path) -> Result<Process> {
    let text = if path.as_os_str() == "-" {
        sealed_exe::stdin_once().map_err(|e| Error::InvalidArgument(format!("read process from stdin: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidArgument(format!("read process {}: {e}", path.display())))?
    };
    let parse = |e: serde_json::Error| Error::InvalidArgument(format!("parse process {}: {e}", path.display()));
    let mut process: serde_json::Value = serde_json::from_str(&text).map_err(parse)?;
    if process.get("user").is_none() {
        let spec = saved_config(root, id)?;
        if let (Some(object), Some(init)) = (process.as_object_mut(), spec.process().as_ref()) {
            object.insert("user".into(), serde_json::to_value(init.user()).unwrap_or_default());
        }
    }
    // Checked as the config's process is: what berth cannot apply is refused by name.
    let text = serde_json::to_vec(&process).map_err(parse)?;
    crate::spec::parse_process(&text, path)
}

pub fn exec(root: &Path, id: &str, opts: &ExecOptions) -> Result<Execd> {
    let c = load(root, id)?;
    let status = c.status();
    match status {
        Status::Stopped => return Err(Error::ExecStopped),
        Status::Paused if !opts.ignore_paused => return Err(Error::ExecPaused),
        Status::Creating => return Err(super::lifecycle::being_created(id, &c.state)),
        _ => {}
    }
    let spec = saved_config(root, id)?;
    guard_runtime_exe(root, &c, status, &spec, &opts.process)?;
    let namespaces = open_init_namespaces(&spec, c.state.pid)?;
    // Without a mount namespace to join, the container's root is the init's (it chrooted).
    let root = match crate::rootfs::shares_runtime_mount_namespace(&spec) {
        true => {
            let path = format!("/proc/{}/root", c.state.pid);
            Some(std::fs::File::open(&path).map_err(|e| Error::io("open", path, e))?)
        }
        false => None,
    };
    // The files above must belong to the init we recorded, not to a process that got its pid.
    if !procfs::is_alive(c.state.pid, c.state.pid_start_time) {
        return Err(Error::ExecStopped);
    }
    let cgroups = crate::cgroups::sub_dirs(&c.state.cgroups, &opts.sub_cgroup)?;
    let seccomp_section = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp = seccomp_section.map(seccomp::compile).transpose()?;
    let terminal = opts.process.terminal().unwrap_or(false);
    let (ours, theirs) = console_channel(terminal, &opts.console)?;
    let pidfd_socket = opts.pidfd_socket.as_deref().map(crate::pidfd_socket::connect_to).transpose()?;
    // Last before the fork: from here this process, and the one it forks until that joins the
    // container's cgroup, run on execCPUAffinity.initial.
    if let Some(cpus) = crate::process::sched::enter_initial_cpus(&opts.process)? {
        crate::logging::debug(&format!(
            "exec: running on CPUs {cpus} (execCPUAffinity.initial) until the process joins the container's cgroup"
        ));
    }
    let cfg = ExecConfig {
        process: &opts.process,
        linux: spec.linux().as_ref(),
        namespaces,
        cgroups,
        resctrl: c.state.resctrl.as_ref(),
        console: theirs.as_ref(),
        preserve_fds: opts.preserve_fds,
        seccomp: seccomp.as_ref(),
        root,
        ignore_paused: opts.ignore_paused,
    };
    let mut deliver = |pid: Pid, listener: OwnedFd| -> Result<()> {
        let Some(path) = seccomp_section.and_then(|s| s.listener_path().as_deref()) else { return Ok(()) };
        let metadata = seccomp_section.and_then(|s| s.listener_metadata().as_deref());
        seccomp::send_listener(path, &listener, pid.as_raw(), metadata, c.oci_state())
    };
    crate::logging::debug(&format!("exec {id}: joining the namespaces of init {}", c.state.pid));
    let pid = exec::spawn(&cfg, &mut deliver)?;
    crate::logging::debug(&format!("exec {id}: process {pid} is about to exec {:?}", opts.process.args()));
    write_pid_file(opts.pid_file.as_deref(), pid)?;
    if let Some(socket) = &pidfd_socket {
        // berth's own child, not yet reaped: its pid cannot have been reused.
        let sent = crate::sys::pidfd_open(pid)
            .map_err(|e| Error::sys("pidfd_open", pid, e))
            .and_then(|pidfd| crate::pidfd_socket::send(socket, &pidfd, crate::pidfd_socket::Kind::Exec));
        if let Err(e) = sent {
            // The engine cannot wait for a process it has no handle on: it does not run.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(e);
        }
    }
    Ok(Execd { pid, console: ours })
}
