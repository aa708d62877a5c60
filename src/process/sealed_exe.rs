//! The runtime's own binary as a container sees it (CVE-2019-5736).
//!
//! Every berth process a container can see has a /proc/<pid>/exe, and that is the host's berth
//! binary. Being non-dumpable keeps it from an ordinary container, but not from one holding
//! CAP_SYS_PTRACE in berth's user namespace: the kernel's ptrace check passes, the container
//! opens the file, and writes the host binary through /proc/self/fd/N once no berth runs it.
//!
//! So a berth process that may become visible to such a container first re-executes itself
//! from a read-only bind mount of its own binary that is attached to no mount namespace
//! (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY)): /proc/<pid>/exe then names
//! a file that can never be opened for writing (EROFS), and once the mount's last fd closes at
//! execve it is detached from everything, so nobody can make it writable again. No copy of the
//! binary is made, and nothing appears in any mount table. Where the kernel lacks those calls
//! (before 5.12) a write-sealed memfd copy of the binary serves instead.
//!
//! A re-exec costs about a millisecond, so it is paid only where the threat exists: see
//! `exposed`. Every other container cannot open the executable of a non-dumpable process.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, AtFlags, FcntlArg, OFlag, SealFlag};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result, SysContext};

/// Set across the re-exec: a process that was re-executed and still is not sealed stops
/// instead of re-executing for ever.
const REEXEC_MARK: &str = "_BERTH_SEALED_EXE";

/// Whether a container can hold CAP_SYS_PTRACE over berth's processes and see them: it shares
/// berth's user namespace (none of its own), and one of `processes` (the init's, an exec'd
/// one's) has CAP_SYS_PTRACE in any of its capability sets, or the container joins a pid
/// namespace that others' processes may already live in.
///
/// Not covered: a container that shares the host's pid namespace sees every host process,
/// every berth invocation for other containers included, and with CAP_SYS_PTRACE it can
/// already ptrace any of them; no runtime can protect the host from it.
pub fn exposed(spec: &Spec, processes: &[&Process]) -> bool {
    if has_own_user_namespace(spec) {
        return false;
    }
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let joins_pid = namespaces.into_iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some());
    joins_pid || processes.iter().any(|p| may_hold_ptrace(p))
}

/// In any of the five sets: a capability in the inheritable set comes back through file
/// capabilities, whatever the bounding set says.
pub fn may_hold_ptrace(process: &Process) -> bool {
    let Some(caps) = process.capabilities() else { return false };
    [caps.bounding(), caps.effective(), caps.permitted(), caps.inheritable(), caps.ambient()]
        .into_iter()
        .flatten()
        .any(|set| set.contains(&Capability::SysPtrace))
}

/// A new user namespace, or one joined by path that is not berth's own.
fn has_own_user_namespace(spec: &Spec) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let Some(user) = namespaces.into_iter().flatten().find(|n| n.typ() == LinuxNamespaceType::User) else {
        return false;
    };
    let Some(path) = user.path() else { return true };
    let id = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (std::os::unix::fs::MetadataExt::dev(&m), std::os::unix::fs::MetadataExt::ino(&m)))
    };
    id(path) != id(std::path::Path::new("/proc/self/ns/user"))
}

/// Where a berth that read its stdin (`exec --process -`) keeps a copy for the berth it may
/// become by re-executing itself: by then stdin has been read.
const STDIN_COPY: &str = "_BERTH_STDIN_COPY_FD";

/// All of stdin, read once across a re-exec: the first berth reads it and keeps a copy in a
/// memfd (left open across execve, its number in $_BERTH_STDIN_COPY_FD); a re-executed berth
/// reads that copy instead. Container processes never get it: they keep only the fds
/// `--preserve-fds` names (process::fds).
pub fn stdin_once() -> std::io::Result<String> {
    use std::io::Write;
    if let Some(fd) = std::env::var(STDIN_COPY).ok().filter(|v| v.parse::<u32>().is_ok()) {
        std::env::remove_var(STDIN_COPY);
        return std::fs::read_to_string(format!("/proc/self/fd/{fd}"));
    }
    let text = std::io::read_to_string(std::io::stdin())?;
    let copy = nix::sys::memfd::memfd_create("berth-stdin", nix::sys::memfd::MFdFlags::empty())?;
    let mut copy = std::fs::File::from(copy);
    copy.write_all(text.as_bytes())?;
    std::env::set_var(STDIN_COPY, std::os::fd::IntoRawFd::into_raw_fd(copy).to_string());
    Ok(text)
}

/// Whether this process already runs from a binary that cannot be written: a read-only mount
/// (our own detached bind, or a berth installed on a read-only filesystem) or a write-sealed
/// memfd.
pub fn is_sealed() -> bool {
    let Ok(exe) = nix::fcntl::open("/proc/self/exe", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) else {
        return false;
    };
    if fstatvfs(&exe).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY)) {
        return true;
    }
    fcntl(&exe, FcntlArg::F_GET_SEALS)
        .is_ok_and(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
}

/// Makes sure this process runs from a sealed binary: returns at once when it does, else
/// re-executes it with the same arguments and environment (and never returns on success).
/// Call it before anything of a container exists: the re-executed berth starts over.
pub fn ensure() -> Result<()> {
    if is_sealed() {
        std::env::remove_var(REEXEC_MARK);
        return Ok(());
    }
    if std::env::var_os(REEXEC_MARK).is_some() {
        return Err(Error::Unsupported(
            "berth was re-executed from a sealed copy of itself, but its binary is still writable".into(),
        ));
    }
    let binary = read_only_bind().or_else(|e| {
        crate::logging::debug(&format!("read-only bind of the berth binary refused ({e}): using a sealed copy"));
        sealed_copy()
    })?;
    reexec(&binary).map(|never| match never {})
}

/// A detached, read-only bind mount of /proc/self/exe, as an O_PATH fd of the file itself.
fn read_only_bind() -> Result<OwnedFd> {
    let tree = crate::sys::open_tree_clone(c"/proc/self/exe", false).ctx("open_tree", "/proc/self/exe")?;
    let attrs = crate::sys::MOUNT_ATTR_RDONLY | crate::sys::MOUNT_ATTR_NOSUID | crate::sys::MOUNT_ATTR_NODEV;
    crate::sys::mount_setattr(&tree, attrs, 0, false).ctx("make read-only", "bind of the berth binary")?;
    Ok(tree)
}

/// A copy of the binary in a memfd that nothing can write, grow or shrink.
fn sealed_copy() -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let copy =
        memfd_create("berth", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).ctx("memfd_create", "berth")?;
    let mut from = std::fs::File::open("/proc/self/exe").ctx("open", "/proc/self/exe")?;
    let mut to = std::fs::File::from(copy);
    std::io::copy(&mut from, &mut to).ctx("copy", "the berth binary")?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl(&to, FcntlArg::F_ADD_SEALS(seals)).ctx("seal", "copy of the berth binary")?;
    Ok(to.into())
}

fn reexec(binary: &OwnedFd) -> Result<Infallible> {
    let cstring =
        |s: OsString| CString::new(s.as_bytes()).map_err(|_| Error::InvalidArgument("an argument contains NUL".into()));
    let argv: Vec<CString> = std::env::args_os().map(cstring).collect::<Result<_>>()?;
    let mut envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect::<Result<_>>()?;
    envp.push(cstring(format!("{REEXEC_MARK}=1").into())?);
    let errno = match nix::unistd::execveat(binary.as_fd(), c"", &argv, &envp, AtFlags::AT_EMPTY_PATH) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Error::sys("re-execute from a sealed binary", "berth", errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn exposure_needs_ptrace_in_the_runtimes_user_namespace() {
        let with = |caps: serde_json::Value, namespaces: serde_json::Value| {
            spec(serde_json::json!({
                "ociVersion": "1.0.0", "root": {"path": "rootfs"},
                "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}, "capabilities": caps},
                "linux": {"namespaces": namespaces}
            }))
        };
        let own_pid = serde_json::json!([{"type": "pid"}, {"type": "mount"}]);
        let ptrace = serde_json::json!({"bounding": ["CAP_SYS_PTRACE"]});
        let plain = serde_json::json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]});
        let inheritable = serde_json::json!({"inheritable": ["CAP_SYS_PTRACE"]});
        let s = with(ptrace.clone(), own_pid.clone());
        assert!(exposed(&s, &[s.process().as_ref().unwrap()]));
        let s = with(plain.clone(), own_pid.clone());
        assert!(!exposed(&s, &[s.process().as_ref().unwrap()]));
        let s = with(inheritable, own_pid);
        assert!(exposed(&s, &[s.process().as_ref().unwrap()]));
        let s = with(ptrace, serde_json::json!([{"type": "pid"}, {"type": "mount"}, {"type": "user"}]));
        assert!(!exposed(&s, &[s.process().as_ref().unwrap()]), "a user namespace of its own");
        let s = with(plain, serde_json::json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"}]));
        assert!(exposed(&s, &[s.process().as_ref().unwrap()]), "a joined pid namespace");
    }
}
