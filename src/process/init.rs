//! The container init: the child of clone, running the spawn sequence of design.md step 3 in
//! order, each step one call. Until "ready" its errors travel to the parent over the sync
//! channel; after it, they go to the container's stderr (the parent has gone).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{sethostname, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Process, Spec};

use super::init_config::{parent_makes_overlay, InitConfig};
use super::launch::{self, Program};
use super::namespaces::{self, Plan};
use super::start_gate;
use super::sync::{Channel, Message};
use super::sysctl;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookPoint};
use crate::rootfs::path::{fd_path, Root};
use crate::rootfs::{self, MountContext};
use crate::tty::{self, Pty};

/// What setup hands to the last stage, which runs after `start` releases the init.
struct Launch {
    program: Program,
    state: Option<String>,
}

/// `born_in_cgroup`: cloned straight into the container's cgroup2 directory.
pub fn run(cfg: &InitConfig, plan: &Plan, ch: Channel, born_in_cgroup: bool) -> ! {
    crate::logging::forget_log_file();
    super::die_with_runtime(&ch);
    let launch = match keep_only(&setup_fds(cfg, &ch)).and_then(|()| setup(cfg, plan, &ch, born_in_cgroup)) {
        Ok(launch) => launch,
        Err(e) => {
            let _ = ch.send(&Message::Failed { code: e.run_exit_code(), msg: e.to_string() });
            crate::sys::exit_now(1);
        }
    };
    // From here on the init waits for `start`, seen by whatever `exec` puts in the container:
    // it holds stdio, the preserved fds and the start socket, nothing else of the runtime's.
    let mut waiting = preserved(cfg);
    waiting.extend([ch.raw_fd(), cfg.start.as_raw_fd()]);
    // Ready, the init outlives `create` (which returns), so it must not die with it; from
    // here a create that dies has recorded the init, and `delete` ends it.
    if let Err(e) = keep_only(&waiting)
        .and_then(|()| nix::sys::prctl::set_pdeathsig(None).ctx("clear parent-death signal", "container init"))
    {
        let _ = ch.send(&Message::Failed { code: e.run_exit_code(), msg: e.to_string() });
        crate::sys::exit_now(1);
    }
    if let Err(e) = ch.send(&Message::Ready) {
        eprintln!("berth: container init: {e}");
        crate::sys::exit_now(1);
    }
    drop(ch);
    let e = launch_process(cfg, launch);
    eprintln!("berth: {e}");
    crate::sys::exit_now(e.run_exit_code());
}

/// stdio and the fds the caller passed on (--preserve-fds, LISTEN_FDS).
fn preserved(cfg: &InitConfig) -> Vec<RawFd> {
    (0..3 + cfg.preserve_fds as RawFd).collect()
}

/// What setup still needs of the fds the init was cloned with: the init is a clone of berth
/// and holds all of berth's until it closes them (the state directory's lock among them).
fn setup_fds(cfg: &InitConfig, ch: &Channel) -> Vec<RawFd> {
    let mut keep = preserved(cfg);
    keep.extend([ch.raw_fd(), cfg.start.as_raw_fd()]);
    keep.extend(cfg.console.map(|c| c.as_raw_fd()));
    keep.extend(cfg.idmaps.iter().flatten().map(|f| f.as_raw_fd()));
    keep
}

fn keep_only(fds: &[RawFd]) -> Result<()> {
    super::fds::close_all_except(fds)
}

fn setup(cfg: &InitConfig, plan: &Plan, ch: &Channel, born_in_cgroup: bool) -> Result<Launch> {
    let spec = cfg.spec;
    let process = spec.process().as_ref().ok_or_else(|| Error::InvalidConfig("process is required".into()))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx("reset signal mask", "init")?;
    crate::cgroups::join_self(cfg.cgroups, born_in_cgroup)?;
    crate::resctrl::join_self(cfg.resctrl)?;
    enter_user_namespace(plan, ch)?;
    if plan.join_user.is_some() {
        create_namespaces_inside(plan, ch)?;
    }
    // Non-dumpable from here until execve: no ptrace, no /proc/<pid>/mem or exe from the
    // container (CVE-2019-5736 reached the host binary through /proc/<init>/exe). Not sooner:
    // a non-dumpable task's /proc files belong to root, and an unprivileged parent could no
    // longer write our uid_map. Until the maps are written nothing of the container exists.
    nix::sys::prctl::set_dumpable(false).ctx("set non-dumpable", "init")?;
    for (kind, path) in &plan.init_joins {
        namespaces::join(*kind, path)?;
    }
    if plan.new_cgroup {
        // After joining the cgroup, so the namespace's root is the container's own cgroup.
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx("unshare", "cgroup namespace")?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(cfg.id)?;
    }
    set_names(spec)?;
    umask(Mode::empty());
    let shares_mounts = crate::rootfs::shares_runtime_mount_namespace(spec);
    if !shares_mounts {
        rootfs::isolate(spec, cfg.rootfs)?;
    }
    let overlay_tree = if parent_makes_overlay(cfg, plan) { receive_overlay(ch)? } else { None };
    let ask_bind_source = |index| {
        ch.send(&Message::CloneBindSource { index })?;
        match ch.recv_with_fd()? {
            Some((Message::BindSourceCloned, tree)) => Ok(tree),
            other => {
                Err(Error::Protocol { channel: "sync channel", what: format!("expected a bind source, got {other:?}") })
            }
        }
    };
    let ctx = MountContext {
        bundle: cfg.bundle,
        in_userns: plan.in_userns(),
        new_cgroupns: plan.new_cgroup,
        cgroups: cfg.cgroups,
        idmaps: cfg.idmaps,
        bind_source_from_parent: plan
            .in_userns()
            .then_some(&ask_bind_source as &dyn Fn(usize) -> Result<Option<OwnedFd>>),
        overlay: cfg.overlay,
        overlay_tree: overlay_tree.as_ref(),
        mount_label: spec.linux().as_ref().and_then(|l| l.mount_label().as_deref()),
        proc_pidns: plan.late_pid_join.as_deref(),
    };
    let root = rootfs::prepare(spec, cfg.rootfs, &ctx)?;
    if let Some(console) = cfg.console {
        setup_console(&root, process, console)?;
    }
    rootfs::seal_dev(spec, &root)?;
    set_oom_score_adj(process)?;
    if let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(sysctls)?;
    }
    rootfs::protect(spec, &root)?;
    drop(root);
    let state = run_create_hooks(spec, cfg.rootfs, ch)?;
    let late_pid_namespace = plan
        .late_pid_join
        .as_ref()
        .map(|p| File::open(p).map_err(|e| Error::io("open namespace", p.display(), e)))
        .transpose()?;
    rootfs::enter(cfg.rootfs, cfg.no_pivot, shares_mounts)?;
    if let Some(namespace) = late_pid_namespace {
        fork_into_joined_pid_namespace(namespace, ch)?;
    }
    rootfs::finish_root(spec)?;
    let linux = spec.linux().as_ref();
    let program =
        launch::prepare(process, linux, false, plan.in_userns(), &cfg.extra_env, cfg.preserve_fds, cfg.seccomp)?;
    Ok(Launch { program, state })
}

/// After `start` connects: the filter (its listener to `start`), the startContainer hooks
/// under it, as runc runs them, then the report `start` waits for (it runs the poststart hooks
/// when it arrives), and execve.
fn launch_process(cfg: &InitConfig, launch: Launch) -> Error {
    let conn = match start_gate::wait(cfg.start) {
        Ok(conn) => conn,
        Err(e) => return e,
    };
    let started = || -> Result<()> {
        if let Some(listener) = launch.program.enter_seccomp()? {
            start_gate::hand_over_listener(&conn, &listener)?;
        }
        if let Some(state) = &launch.state {
            hooks::run(HookPoint::StartContainer, cfg.spec.hooks().as_ref(), state)?;
        }
        start_gate::report_started(&conn)
    };
    match started() {
        Ok(()) => launch.program.exec(),
        Err(e) => {
            // `start` fails with the reason (a startContainer hook's output, say), and the
            // container stops: the init exits.
            start_gate::report_failure(&conn, &e.to_string());
            e
        }
    }
}

/// The overlay the parent made while this init set itself up, if it could make one.
fn receive_overlay(ch: &Channel) -> Result<Option<OwnedFd>> {
    match ch.recv_with_fd()? {
        Some((Message::OverlayMade, tree)) => Ok(tree),
        other => Err(Error::Protocol { channel: "sync channel", what: format!("expected the overlay, got {other:?}") }),
    }
}

/// process.terminal: a pty from the container's devpts, its peer bind-mounted on /dev/console
/// and made the init's controlling terminal, its master sent to `console`.
fn setup_console(root: &Root, process: &Process, console: &OwnedFd) -> Result<()> {
    let ptmx = root.resolve_with(Path::new("/dev/pts/ptmx"), tty::ptmx_flags()).ctx("open", "/dev/pts/ptmx")?;
    let pty = tty::open_for(ptmx, process)?;
    bind_console(root, &pty)?;
    tty::send_master(console, &pty)?;
    let Pty { master, peer, .. } = pty;
    drop(master);
    tty::make_controlling(&peer)
}

fn bind_console(root: &Root, pty: &Pty) -> Result<()> {
    let target = root.create_file(Path::new("/dev/console"))?;
    mount(Some(fd_path(&pty.peer).as_str()), fd_path(&target).as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|errno| Error::Mount {
            what: pty.name.clone(),
            target: "/dev/console".into(),
            fstype: "bind".into(),
            errno,
        })
}

fn enter_user_namespace(plan: &Plan, ch: &Channel) -> Result<()> {
    if let Some(path) = &plan.join_user {
        namespaces::join(CloneFlags::CLONE_NEWUSER, path)?;
        return become_namespace_root();
    }
    if !plan.new_user {
        return Ok(());
    }
    ch.expect("id maps", |m| matches!(m, Message::IdMapsWritten))?;
    become_namespace_root()?;
    // An IPC namespace's message-queue filesystem is made with it, owned by its creator: made
    // now, the container's /dev/mqueue belongs to its root rather than to the host's.
    if plan.has_new(CloneFlags::CLONE_NEWIPC) {
        unshare(CloneFlags::CLONE_NEWIPC).ctx("unshare", "IPC namespace")?;
    }
    Ok(())
}

/// With a joined user namespace the init was cloned without new namespaces: it creates them
/// now, so the joined namespace owns them. A new pid namespace only applies to children, so
/// the init forks once more: the child is the container's pid 1, this process reports its pid
/// and exits. A pipe holds the child back until that report is sent, so the parent hears of
/// the new pid before anything the new init says.
fn create_namespaces_inside(plan: &Plan, ch: &Channel) -> Result<()> {
    unshare(plan.clone_flags - CloneFlags::CLONE_NEWPID).ctx("unshare", "namespaces in the joined user namespace")?;
    if !plan.clone_flags.contains(CloneFlags::CLONE_NEWPID) {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWPID).ctx("unshare", "pid namespace")?;
    super::fork_into_pid_namespace(ch, |pid| Message::InitPid { pid })
}

/// The init has its root, cwd and mounts from the container now: only from here on may the
/// processes already in the joined pid namespace see it. The namespace's fd is gone before.
fn fork_into_joined_pid_namespace(namespace: File, ch: &Channel) -> Result<()> {
    setns(namespace.as_fd(), CloneFlags::CLONE_NEWPID).ctx("join namespace", "pid")?;
    drop(namespace);
    super::fork_into_pid_namespace(ch, |pid| Message::InitPid { pid })
}

/// Become the user namespace's root so the rest of setup runs with its full capabilities.
pub fn become_namespace_root() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx("setgid", "0 in the user namespace")?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx("setuid", "0 in the user namespace")
}

/// A session keyring of the container's own, so it cannot read the host's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|_| Error::InvalidId(id.into(), "it contains NUL"))?;
    match crate::sys::join_session_keyring(&name) {
        // Kernels built without keys.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(Error::sys("join session keyring", name.to_string_lossy(), e)),
    }
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sethostname(h).ctx("sethostname", h)?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = CString::new(d).map_err(|_| Error::InvalidConfig("domainname contains NUL".into()))?;
        crate::sys::setdomainname(&c).ctx("setdomainname", d)?;
    }
    Ok(())
}

fn set_oom_score_adj(process: &Process) -> Result<()> {
    match process.oom_score_adj() {
        Some(v) => std::fs::write("/proc/self/oom_score_adj", v.to_string()).ctx("write oom_score_adj", v),
        None => Ok(()),
    }
}

/// prestart/createRuntime run in the parent (runtime namespace); createContainer runs here, in
/// the container's mount namespace before pivot_root, as config.md orders them.
fn run_create_hooks(spec: &Spec, rootfs: &Path, ch: &Channel) -> Result<Option<String>> {
    let Some(h) = spec.hooks().as_ref() else { return Ok(None) };
    let points = [HookPoint::Prestart, HookPoint::CreateRuntime, HookPoint::CreateContainer, HookPoint::StartContainer];
    if points.iter().all(|p| p.of(h).is_empty()) {
        return Ok(None);
    }
    ch.send(&Message::RunHooks)?;
    let state = match ch.expect("hooks done", |m| matches!(m, Message::HooksDone { .. }))? {
        Message::HooksDone { state } => state,
        other => {
            return Err(Error::Protocol {
                channel: "sync channel",
                what: format!("expected hooks done, got {other:?}"),
            })
        }
    };
    if !HookPoint::CreateContainer.of(h).is_empty() {
        // The hooks find the container's files relative to their cwd, as runc runs them.
        nix::unistd::chdir(rootfs).ctx("chdir", rootfs.display())?;
        hooks::run(HookPoint::CreateContainer, Some(h), &state)?;
    }
    Ok(Some(state))
}
