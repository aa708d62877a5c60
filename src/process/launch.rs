//! The last steps every container process takes, the init and an exec'd one alike: limits,
//! identity, cwd, finding the program, closing the runtime's fds, and execve.

use std::ffi::CString;
use std::path::Path;

use nix::unistd::{chdir, getcwd};
use oci_spec::runtime::{LinuxCapabilities, Process};

use super::exec_path;
use crate::error::{Error, Result, SysContext};
use crate::security::seccomp::{self, Compiled};
use crate::security::{self, capabilities, credentials, rlimits};
use std::os::fd::OwnedFd;

/// A program ready for execve.
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    arg0: String,
    /// Filters that go in last, right before execve (the no_new_privileges case).
    late_seccomp: Option<Compiled>,
    /// The NOTIFY listener, when a filter with NOTIFY rules is already loaded.
    pub seccomp_listener: Option<OwnedFd>,
}

/// Everything after the process is in its namespaces and root. Errors here are the ones `run`
/// maps to 126/127, and they are found before the caller reports "ready".
///
/// Seccomp goes in as late as it can: without no_new_privileges the kernel demands
/// CAP_SYS_ADMIN to load a filter, so it is loaded before the capabilities are dropped; with
/// it, right before execve — unless it has NOTIFY rules, whose listener the parent must
/// receive before "ready".
pub fn prepare(
    process: &Process,
    in_userns: bool,
    extra_env: &[String],
    preserve_fds: u32,
    seccomp: Option<&Compiled>,
) -> Result<Program> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let mut seccomp_listener = None;
    let mut late_seccomp = None;
    match seccomp {
        Some(filters) if !nnp => seccomp_listener = seccomp::load(filters)?,
        Some(filters) => late_seccomp = Some(filters.clone()),
        None => {}
    }
    become_user(process, in_userns)?;
    if let Some(filters) = late_seccomp.take_if(|f| f.has_notify()) {
        seccomp_listener = seccomp::load(&filters)?;
    }
    enter_cwd(process.cwd())?;
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args.first().cloned().ok_or_else(|| Error::InvalidConfig("process.args is empty".into()))?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    let path = exec_path::find(&arg0, &env)?;
    keep_only_stdio_and_preserved(preserve_fds)?;
    Ok(Program {
        path: CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::InvalidConfig("process.args[0] contains a NUL byte".into()))?,
        argv: cstrings(args)?,
        envp: cstrings(&env)?,
        arg0,
        late_seccomp,
        seccomp_listener,
    })
}

/// Replaces the process; returns only the error (mapped to 127/126 for `run`).
pub fn exec(program: &Program) -> Error {
    if let Some(filters) = &program.late_seccomp {
        if let Err(e) = seccomp::load(filters) {
            return e;
        }
    }
    let errno = match nix::unistd::execve(&program.path, &program.argv, &program.envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    match errno {
        nix::errno::Errno::ENOENT => Error::ExecNoSuchFile(program.arg0.clone()),
        nix::errno::Errno::EACCES => Error::ExecPermission(program.arg0.clone()),
        e => Error::Init { code: 126, msg: format!("exec {:?}: {e}", program.arg0) },
    }
}

fn become_user(process: &Process, in_userns: bool) -> Result<()> {
    let caps = process.capabilities().clone().unwrap_or_else(no_capabilities);
    capabilities::drop_bounding(&caps)?;
    let may_setgroups = !in_userns || setgroups_allowed();
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

/// Every fd above stdio and the preserved ones closes on execve.
fn keep_only_stdio_and_preserved(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        crate::sys::clear_cloexec(fd).ctx("keep preserved fd", fd)?;
    }
    crate::sys::cloexec_from(3 + preserve).ctx("mark close-on-exec", format!("fds from {}", 3 + preserve))
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::InvalidConfig(format!("{s:?} contains a NUL byte"))))
        .collect()
}
