//! The container init: the child of clone, running the spawn sequence of design.md step 3 in
//! order, each step one call. Until "ready" its errors travel to the parent over the sync
//! channel; after it, they go to the container's stderr (the parent has gone).

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, openat, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, getcwd, sethostname, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, Process, Spec};

use super::exec_path;
use super::namespaces::{self, Plan};
use super::spawn::InitConfig;
use super::sync::{Channel, Message};
use super::sysctl;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookPoint};
use crate::rootfs::{self, MountContext};
use crate::security::{self, capabilities, credentials, rlimits};

/// What setup hands to the last stage, which runs after `start` releases the init.
struct Launch {
    fifo: OwnedFd,
    host_proc: OwnedFd,
    program: PathBuf,
    state: Option<String>,
}

pub fn run(cfg: &InitConfig, plan: &Plan, ch: Channel) -> ! {
    let launch = match setup(cfg, plan, &ch) {
        Ok(launch) => launch,
        Err(e) => {
            let _ = ch.send(&Message::Failed { code: e.run_exit_code(), msg: e.to_string() });
            crate::sys::exit_now(1);
        }
    };
    if let Err(e) = ch.send(&Message::Ready) {
        eprintln!("berth: container init: {e}");
        crate::sys::exit_now(1);
    }
    drop(ch);
    let Err(e) = launch_process(cfg, launch);
    eprintln!("berth: {e}");
    crate::sys::exit_now(e.run_exit_code());
}

fn setup(cfg: &InitConfig, plan: &Plan, ch: &Channel) -> Result<Launch> {
    let spec = cfg.spec;
    let process = spec.process().as_ref().ok_or_else(|| Error::InvalidConfig("process is required".into()))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx("reset signal mask", "init")?;
    // Non-dumpable until execve: no ptrace, no /proc/<pid>/mem or exe from the container
    // (CVE-2019-5736 reached the host binary through /proc/<init>/exe).
    nix::sys::prctl::set_dumpable(false).ctx("set non-dumpable", "init")?;
    crate::cgroups::join_self(cfg.cgroup_paths)?;
    enter_user_namespace(plan, ch)?;
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
    let ctx = MountContext {
        bundle: cfg.bundle,
        in_userns: plan.in_userns(),
        new_cgroupns: plan.new_cgroup,
        hierarchies: cfg.hierarchies,
        cgroup_paths: cfg.cgroup_paths,
    };
    rootfs::prepare(spec, cfg.rootfs, &ctx)?;
    set_oom_score_adj(process)?;
    if let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(sysctls)?;
    }
    rootfs::protect(spec, cfg.rootfs)?;
    let state = run_create_hooks(spec, ch)?;
    let fifo =
        open(cfg.fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).ctx("open exec fifo", cfg.fifo.display())?;
    let host_proc =
        open("/proc", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ctx("open", "/proc")?;
    rootfs::enter(spec, cfg.rootfs, cfg.no_pivot)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    become_user(process, plan)?;
    enter_cwd(process.cwd())?;
    let args = process.args().as_deref().unwrap_or_default();
    let program = exec_path::find(&args[0], &container_env(cfg, process))?;
    keep_only_stdio_and_preserved(cfg.preserve_fds)?;
    Ok(Launch { fifo, host_proc, program, state })
}

fn launch_process(cfg: &InitConfig, launch: Launch) -> Result<Infallible> {
    let fifo = wait_for_start(&launch)?;
    if let Some(state) = &launch.state {
        hooks::run(HookPoint::StartContainer, cfg.spec.hooks().as_ref(), state)?;
    }
    // `start` runs the poststart hooks when this byte arrives: after startContainer's.
    nix::unistd::write(&fifo, b"0").ctx("write", "exec fifo")?;
    drop(fifo);
    // Seccomp is loaded here, last before execve (its own issue).
    let process = cfg.spec.process().as_ref().ok_or_else(|| Error::InvalidConfig("process is required".into()))?;
    let args = process.args().as_deref().unwrap_or_default();
    let argv = cstrings(args)?;
    let envp = cstrings(&container_env(cfg, process))?;
    let path = CString::new(launch.program.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidConfig("process.args[0] contains a NUL byte".into()))?;
    let errno = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(match errno {
        nix::errno::Errno::ENOENT => Error::ExecNoSuchFile(args[0].clone()),
        nix::errno::Errno::EACCES => Error::ExecPermission(args[0].clone()),
        e => Error::Init { code: 126, msg: format!("exec {:?}: {e}", args[0]) },
    })
}

fn enter_user_namespace(plan: &Plan, ch: &Channel) -> Result<()> {
    if let Some(path) = &plan.join_user {
        namespaces::join(CloneFlags::CLONE_NEWUSER, path)?;
    } else if plan.new_user {
        ch.expect("id maps", |m| matches!(m, Message::IdMapsWritten))?;
    } else {
        return Ok(());
    }
    // Become the namespace's root so the rest of setup runs with its full capabilities.
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx("setgid", "0 in the user namespace")?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx("setuid", "0 in the user namespace")
}

/// A session keyring of the container's own, so it cannot read the host's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).map_err(|_| Error::InvalidId(id.into(), "it contains NUL"))?;
    match crate::sys::join_session_keyring(&name) {
        // Kernels without keys, or user namespaces where the keyring quota is exhausted.
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
fn run_create_hooks(spec: &Spec, ch: &Channel) -> Result<Option<String>> {
    let Some(h) = spec.hooks().as_ref() else {
        return Ok(None);
    };
    let points = [HookPoint::Prestart, HookPoint::CreateRuntime, HookPoint::CreateContainer, HookPoint::StartContainer];
    if points.iter().all(|p| p.of(h).is_empty()) {
        return Ok(None);
    }
    ch.send(&Message::RunHooks)?;
    let Message::HooksDone { state } = ch.expect("hooks done", |m| matches!(m, Message::HooksDone { .. }))? else {
        unreachable!("expect checked the variant")
    };
    hooks::run(HookPoint::CreateContainer, Some(h), &state)?;
    Ok(Some(state))
}

fn become_user(process: &Process, plan: &Plan) -> Result<()> {
    let caps = process.capabilities().clone().unwrap_or_else(no_capabilities);
    capabilities::drop_bounding(&caps)?;
    let may_setgroups = !plan.in_userns() || setgroups_allowed();
    credentials::switch_user(process.user(), may_setgroups)?;
    capabilities::apply(&caps)?;
    credentials::set_umask(process.user());
    if process.no_new_privileges().unwrap_or(false) {
        security::set_no_new_privileges()?;
    }
    Ok(())
}

fn no_capabilities() -> LinuxCapabilities {
    serde_json::from_str("{}").unwrap_or_default()
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(true)
}

/// The cwd must be inside the new root: a cwd inherited through a leaked fd (CVE-2024-21626)
/// makes getcwd fail, which is refused here.
fn enter_cwd(cwd: &Path) -> Result<()> {
    chdir(cwd).ctx("chdir to process.cwd", cwd.display())?;
    match getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::PathEscape { path: cwd.display().to_string() }),
    }
}

fn container_env(cfg: &InitConfig, process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(cfg.extra_env.iter().cloned());
    env
}

/// Every fd above stdio and the preserved ones closes on execve.
fn keep_only_stdio_and_preserved(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        crate::sys::clear_cloexec(fd).ctx("keep preserved fd", fd)?;
    }
    crate::sys::cloexec_from(3 + preserve).ctx("mark close-on-exec", format!("fds from {}", 3 + preserve))
}

/// Blocks until `start` opens the FIFO for reading. The FIFO's path is outside the new root,
/// so it is reopened through the O_PATH fd and the host /proc kept from before pivot_root.
fn wait_for_start(launch: &Launch) -> Result<OwnedFd> {
    let rel = format!("self/fd/{}", launch.fifo.as_raw_fd());
    openat(launch.host_proc.as_fd(), rel.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx("open exec fifo", "for writing")
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::InvalidConfig(format!("{s:?} contains a NUL byte"))))
        .collect()
}
