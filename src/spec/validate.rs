//! Checks a config against what the runtime spec requires and what berth can honour.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

/// The runtime-spec major version berth implements; minor versions are additive.
const SUPPORTED_MAJOR: &str = "1";

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidConfig(msg.into())
}

/// Validates the spec and returns the absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    check_version(spec.version())?;
    let rootfs = check_root(spec, bundle)?;
    check_process(spec)?;
    check_mounts(spec)?;
    check_namespaces(spec)?;
    check_hooks(spec)?;
    crate::security::lsm::check(spec)?;
    check_linux_settings(spec)?;
    Ok(rootfs)
}

pub(super) fn check_version(version: &str) -> Result<()> {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or_default();
    let rest_ok = parts.clone().count() == 2
        && parts.all(|p| p.split(['-', '+']).next().is_some_and(|n| n.parse::<u32>().is_ok()));
    if major != SUPPORTED_MAJOR || !rest_ok {
        return Err(invalid(format!("unsupported ociVersion {version:?}: berth implements 1.x.y")));
    }
    Ok(())
}

fn check_root(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| invalid("root is required"))?;
    let rootfs = bundle.join(root.path());
    // The host's own `/` (root.path "../../.." and the like) is no container's root.
    if std::fs::canonicalize(&rootfs).is_ok_and(|p| p == Path::new("/")) {
        return Err(invalid(format!("root.path {:?} is the host's root directory", root.path())));
    }
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => Ok(rootfs),
        Ok(_) => Err(invalid(format!("rootfs {rootfs:?} is not a directory"))),
        Err(_) => Err(invalid(format!("rootfs {rootfs:?} does not exist"))),
    }
}

fn check_process(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref().ok_or_else(|| invalid("process is required"))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(invalid("process.args must name the program to run")),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!("process.cwd {:?} is not an absolute path", process.cwd())));
    }
    for var in process.env().iter().flatten() {
        if !var.contains('=') {
            return Err(invalid(format!("process.env entry {var:?} is not KEY=VALUE")));
        }
    }
    check_process_settings(process, "process")
}

/// What a process (the config's, or exec's) asks of the scheduler, checked before anything
/// exists. `path` names it in messages.
pub(super) fn check_process_settings(process: &Process, path: &str) -> Result<()> {
    crate::process::sched::check(process, path)
}

/// The container-wide kernel settings: personality, NUMA policy, network devices, resctrl.
fn check_linux_settings(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else { return Ok(()) };
    if let Some(p) = linux.personality() {
        crate::process::personality::persona(p)?;
    }
    crate::process::mempolicy::check(linux.memory_policy().as_ref())?;
    crate::netdev::check(spec)?;
    if crate::resctrl::requested(spec) {
        crate::resctrl::check(spec, crate::resctrl::mount_point().as_deref())?;
    }
    Ok(())
}

/// config.md: "If set, timeout MUST be greater than zero."
fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks().as_ref() else { return Ok(()) };
    for point in crate::hooks::HookPoint::ALL {
        for hook in point.of(hooks) {
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                return Err(invalid(format!(
                    "{} hook {:?}: timeout {t} must be greater than zero",
                    point.name(),
                    hook.path()
                )));
            }
        }
    }
    Ok(())
}

fn check_mounts(spec: &Spec) -> Result<()> {
    for mount in spec.mounts().iter().flatten() {
        let dest = mount.destination();
        if !dest.is_absolute() {
            return Err(invalid(format!("mount destination {dest:?} is not an absolute path")));
        }
        check_proc_mount(dest, mount.typ().as_deref().unwrap_or("none"))?;
    }
    Ok(())
}

/// Files under /proc a bundle may cover (lxcfs does, to show the container's own numbers);
/// anything else there would let a bundle hide or fake what the runtime relies on, so it is
/// refused as runc refuses it.
const PROC_OVERMOUNTS: [&str; 9] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
];

fn check_proc_mount(dest: &Path, fstype: &str) -> Result<()> {
    let normal: PathBuf = dest.components().collect();
    if normal == Path::new("/proc") {
        return match fstype {
            "proc" => Ok(()),
            other => Err(invalid(format!("/proc may only be mounted as proc, not {other:?}"))),
        };
    }
    if normal.starts_with("/proc") && !PROC_OVERMOUNTS.iter().any(|p| normal == Path::new(p)) {
        return Err(invalid(format!(
            "mount destination {dest:?} is under /proc and not one of the files that may be covered"
        )));
    }
    Ok(())
}

fn check_namespaces(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for ns in namespaces.into_iter().flatten() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(format!("namespace {:?} is listed twice", ns.typ())));
        }
        if let Some(path) = ns.path() {
            if !path.exists() {
                return Err(invalid(format!("namespace path {path:?} does not exist")));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        return Err(invalid("a mount namespace is required to set up the rootfs"));
    }
    let maps = linux
        .map(|l| l.uid_mappings().iter().flatten().count() + l.gid_mappings().iter().flatten().count())
        .unwrap_or(0);
    if maps > 0 && !has(LinuxNamespaceType::User) {
        return Err(invalid("uidMappings/gidMappings need a user namespace"));
    }
    // A new user namespace without a map has no root to become: say so, rather than the
    // setgid EINVAL the init would meet.
    let new_user = namespaces.into_iter().flatten().any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_user {
        let empty = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| m.is_none_or(|m| m.is_empty());
        if empty(linux.and_then(|l| l.uid_mappings().as_ref())) || empty(linux.and_then(|l| l.gid_mappings().as_ref()))
        {
            return Err(invalid("a new user namespace needs uidMappings and gidMappings (none are given)"));
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid("hostname needs a new UTS namespace"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid("domainname needs a new UTS namespace"));
    }
    if linux.and_then(|l| l.time_offsets().as_ref()).is_some_and(|o| !o.is_empty()) && !has(LinuxNamespaceType::Time) {
        return Err(invalid("timeOffsets need a time namespace"));
    }
    for key in linux.and_then(|l| l.sysctl().as_ref()).into_iter().flatten().map(|(k, _)| k) {
        check_sysctl(key, &has)?;
    }
    Ok(())
}

/// Only sysctls that live in a namespace the container owns may be set; anything else would
/// change the host (runc applies the same rule).
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    const IPC: [&str; 6] =
        ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax"];
    let ok = if IPC.contains(&key)
        || key == "kernel.shmmni"
        || key == "kernel.shm_rmid_forced"
        || key.starts_with("fs.mqueue.")
    {
        has(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        has(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        has(LinuxNamespaceType::Uts)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("sysctl {key:?} is not in a separate kernel namespace of the container")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("1.0.0").is_ok());
        assert!(check_version("1.2.1").is_ok());
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("1.0").is_err());
        assert!(check_version("").is_err());
    }

    #[test]
    fn proc_overmounts() {
        assert!(check_proc_mount(Path::new("/proc"), "proc").is_ok());
        assert!(check_proc_mount(Path::new("/proc"), "tmpfs").is_err());
        assert!(check_proc_mount(Path::new("/proc/meminfo"), "bind").is_ok());
        assert!(check_proc_mount(Path::new("/proc/self/exe"), "bind").is_err());
        assert!(check_proc_mount(Path::new("/proc/sys/kernel"), "tmpfs").is_err());
        assert!(check_proc_mount(Path::new("/procfoo"), "tmpfs").is_ok());
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let only_net = |t: LinuxNamespaceType| t == LinuxNamespaceType::Network;
        assert!(check_sysctl("net.ipv4.ip_forward", &only_net).is_ok());
        assert!(check_sysctl("kernel.shmmax", &only_net).is_err());
        assert!(check_sysctl("vm.swappiness", &|_| true).is_err());
    }
}

/// `--no-pivot` with a private root: the container, chrooted inside a copy of the host's mount
/// tree, would keep every host mount it copied busy, and unmounting on the host would no
/// longer reach it (runc refuses it too, runc#1602).
pub fn check_no_pivot(spec: &Spec) -> Result<()> {
    let propagation = spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()).unwrap_or("");
    if matches!(propagation, "private" | "rprivate") {
        return Err(invalid(format!(
            "rootfsPropagation {propagation:?} is not safe without pivot_root (--no-pivot): the container would pin the host's mounts"
        )));
    }
    Ok(())
}
