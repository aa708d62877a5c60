//! The last steps every container process takes, the init and an exec'd one alike: CPUs,
//! scheduling and I/O priority, limits, working directory, identity, finding the program,
//! NUMA policy and personality, and at the very end the seccomp filter and execve.
//!
//! The filter goes in last: whatever a profile denies or hands to a NOTIFY listener must not
//! be something berth still has to do (a profile without close_range, a NOTIFY rule on
//! getcwd, used to fail or hang `create`). After it is loaded only three things happen: the
//! NOTIFY listener, if any, is handed over at once (so the agent can answer whatever comes
//! next; the call that hands it over is one a profile may not notify, see seccomp::compile),
//! CAP_SYS_ADMIN is dropped where it was held only to load the filter, and execve.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{chdir, getcwd};
use oci_spec::runtime::{Linux, LinuxCapabilities, Process};

use super::{mempolicy, personality, sched};
use crate::error::{Error, Result};
use crate::exec_path;
use crate::security::seccomp::{self, Compiled};
use crate::security::{self, capabilities, credentials, lsm, rlimits};

/// A program ready for execve.
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    arg0: String,
    seccomp: Option<Compiled>,
    /// CAP_SYS_ADMIN is held only to load the filter (a process without no_new_privileges
    /// needs it to) and dropped right after.
    release_sys_admin: bool,
}

/// Everything before the filter: the errors `run` maps to 126/127 and every refusal of the
/// kernel are found here, before the caller reports "ready". `linux` is the container's
/// section (its personality and NUMA policy hold for every process); `exec`: an exec'd
/// process, not the init.
pub fn prepare(
    process: &Process,
    linux: Option<&Linux>,
    exec: bool,
    in_userns: bool,
    extra_env: &[String],
    preserve_fds: u32,
    seccomp: Option<&Compiled>,
) -> Result<Program> {
    // First, while root with every capability: a real-time policy, a negative nice and the
    // real-time I/O class need CAP_SYS_NICE. execve keeps all of it.
    sched::apply(process, exec)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    // As root, before no_new_privileges: a profile transition is a privileged change.
    lsm::set_exec_labels(process)?;
    let caps = process.capabilities().clone().unwrap_or_else(no_capabilities);
    capabilities::drop_bounding(&caps)?;
    // As root first: a cwd only root can enter (a volume owned by the runtime's user) works,
    // as in runc; a cwd only the container's user can enter is tried again as that user.
    let entered = enter_cwd(process.cwd(), true)?;
    let may_setgroups = !in_userns || setgroups_allowed();
    credentials::switch_user(process.user(), may_setgroups)?;
    if !entered {
        enter_cwd(process.cwd(), false)?;
    }
    check_cwd_inside_root(process.cwd())?;
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args.first().cloned().ok_or_else(|| Error::InvalidConfig("process.args is empty".into()))?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    // As the container's user, so PATH is searched with its permissions, as execvp would.
    let path = exec_path::find(&arg0, &env)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let release_sys_admin = seccomp.is_some() && !nnp && !capabilities::grants_sys_admin(&caps);
    capabilities::apply(&caps, release_sys_admin)?;
    credentials::set_umask(process.user());
    if nnp {
        security::set_no_new_privileges()?;
    }
    super::fds::keep_for_exec(preserve_fds)?;
    // Last, so berth's own work above runs under neither; execve keeps both.
    mempolicy::apply(linux.and_then(|l| l.memory_policy().as_ref()))?;
    personality::apply(linux.and_then(|l| l.personality().as_ref()))?;
    Ok(Program {
        path: CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::InvalidConfig("process.args[0] contains a NUL byte".into()))?,
        argv: cstrings(args)?,
        envp: cstrings(&env)?,
        arg0,
        seccomp: seccomp.cloned(),
        release_sys_admin,
    })
}

impl Program {
    /// Loads the seccomp filter (and gives back the CAP_SYS_ADMIN held for it); returns the
    /// NOTIFY listener when the filter has one, to be handed over before anything else.
    pub fn enter_seccomp(&self) -> Result<Option<OwnedFd>> {
        let listener = match &self.seccomp {
            Some(filters) => seccomp::load(filters)?,
            None => None,
        };
        if self.release_sys_admin {
            capabilities::release_sys_admin()?;
        }
        Ok(listener)
    }

    /// Replaces the process; returns only the error (mapped to 127/126 for `run`).
    pub fn exec(&self) -> Error {
        let errno = match nix::unistd::execve(&self.path, &self.argv, &self.envp) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        match errno {
            Errno::ENOENT => Error::ExecNoSuchFile(self.arg0.clone()),
            Errno::EACCES => Error::ExecPermission(self.arg0.clone()),
            errno => Error::ExecFailed { arg0: self.arg0.clone(), errno },
        }
    }
}

/// HOME for a process whose env has none, as runc gives it: the user's directory in the
/// container's /etc/passwd, else `/`. The file is the container's: read only if it is a
/// regular file (a FIFO would block create), and only so much of it.
fn home_of(uid: u32) -> String {
    use std::io::Read;
    let open =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open("/etc/passwd");
    let mut text = String::new();
    if let Some(file) = open.ok().filter(|f| f.metadata().is_ok_and(|m| m.is_file())) {
        let _ = file.take(1 << 20).read_to_string(&mut text);
    }
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| "/".into())
}

fn no_capabilities() -> LinuxCapabilities {
    serde_json::from_str("{}").unwrap_or_default()
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(true)
}

/// chdir to process.cwd; Ok(false) when `first_try` and the directory is not ours to enter
/// yet (the switch to the container's user may change that).
fn enter_cwd(cwd: &Path, first_try: bool) -> Result<bool> {
    match chdir(cwd) {
        Ok(()) => Ok(true),
        Err(Errno::EACCES | Errno::EPERM) if first_try => Ok(false),
        Err(e) => Err(Error::sys("chdir to process.cwd", cwd.display(), e)),
    }
}

/// The cwd must be inside the new root: a cwd inherited through a leaked fd (CVE-2024-21626)
/// makes getcwd fail, which is refused here.
fn check_cwd_inside_root(cwd: &Path) -> Result<()> {
    match getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::PathEscape { path: cwd.display().to_string() }),
    }
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::InvalidConfig(format!("{s:?} contains a NUL byte"))))
        .collect()
}
