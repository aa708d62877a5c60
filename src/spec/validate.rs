//! Checks a config against what the runtime spec requires and what berth can honour.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount, Process, Spec};

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
    check_idmapped_mounts(spec)?;
    check_namespaces(spec)?;
    check_devices(spec)?;
    check_cgroups_path(spec)?;
    check_cpu_sets(spec)?;
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
    if process.cwd().as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid(format!("process.cwd {:?} contains a NUL byte", process.cwd())));
    }
    for var in process.env().iter().flatten() {
        if !var.contains('=') {
            return Err(invalid(format!("process.env entry {var:?} is not KEY=VALUE")));
        }
    }
    check_process_settings(process, "process")
}

/// What a process (the config's, or exec's) hands to execve and asks of the scheduler,
/// checked before anything exists. `path` names it in messages.
pub(super) fn check_process_settings(process: &Process, path: &str) -> Result<()> {
    // execve takes C strings: a NUL would cut an argument short, or fail in the init.
    for (i, arg) in process.args().iter().flatten().enumerate() {
        if arg.contains('\0') {
            return Err(invalid(format!("{path}.args[{i}] {arg:?} contains a NUL byte")));
        }
    }
    for var in process.env().iter().flatten() {
        if var.contains('\0') {
            return Err(invalid(format!("{path}.env entry {var:?} contains a NUL byte")));
        }
    }
    check_rlimits(process, path)?;
    crate::process::sched::check(process, path)
}

/// config.md: "If `rlimits` contains duplicated entries with same `type`, the runtime MUST
/// generate an error"; and a soft limit above its hard one is one setrlimit(2) refuses.
fn check_rlimits(process: &Process, path: &str) -> Result<()> {
    let mut seen = Vec::new();
    for r in process.rlimits().iter().flatten() {
        if seen.contains(&r.typ()) {
            return Err(invalid(format!("{path}.rlimits: {} is listed twice", r.typ())));
        }
        if r.soft() > r.hard() {
            return Err(invalid(format!(
                "{path}.rlimits {}: soft limit {} is above the hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            )));
        }
        seen.push(r.typ());
    }
    Ok(())
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

/// config.md: a hook's path "MUST be absolute", and "If set, timeout MUST be greater than
/// zero."
fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks().as_ref() else { return Ok(()) };
    for point in crate::hooks::HookPoint::ALL {
        for hook in point.of(hooks) {
            if !hook.path().is_absolute() {
                return Err(invalid(format!("{} hook {:?}: path must be absolute", point.name(), hook.path())));
            }
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

/// A bind mount: by its type, or by a bind or rbind option (runc reads it so).
pub fn is_bind(mount: &Mount) -> bool {
    mount.typ().as_deref() == Some("bind") || mount.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
}

fn check_mounts(spec: &Spec) -> Result<()> {
    for mount in spec.mounts().iter().flatten() {
        let dest = mount.destination();
        if !dest.is_absolute() {
            return Err(invalid(format!("mount destination {dest:?} is not an absolute path")));
        }
        for (what, path) in [("destination", Some(dest.as_path())), ("source", mount.source().as_deref())] {
            if path.is_some_and(|p| p.as_os_str().as_encoded_bytes().contains(&0)) {
                return Err(invalid(format!("mount {what} {path:?} contains NUL")));
            }
        }
        let bind = is_bind(mount);
        if bind && mount.source().is_none() {
            return Err(invalid(format!("bind mount on {dest:?} has no source")));
        }
        let fstype = if bind { "bind" } else { mount.typ().as_deref().unwrap_or("none") };
        check_proc_mount(dest, fstype, mount.source().as_deref())?;
    }
    if let Some(linux) = spec.linux().as_ref() {
        crate::rootfs::root_propagation(linux.rootfs_propagation().as_deref())?;
    }
    Ok(())
}

/// An idmapped mount (its own mappings, or the idmap/ridmap option) is a bind mount with a
/// mapping to show ownership through: its own, else the container's.
fn check_idmapped_mounts(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for m in spec.mounts().iter().flatten() {
        let option = m.options().iter().flatten().any(|o| o == "idmap" || o == "ridmap");
        let (uid, gid) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
        if !option && uid.is_none() && gid.is_none() {
            continue;
        }
        if !is_bind(m) {
            return Err(invalid(format!("idmapped mount on {:?} must be a bind mount", m.destination())));
        }
        let uid = uid.or_else(|| linux.and_then(|l| l.uid_mappings().as_deref())).unwrap_or_default();
        let gid = gid.or_else(|| linux.and_then(|l| l.gid_mappings().as_deref())).unwrap_or_default();
        if uid.is_empty() || gid.is_empty() || uid.iter().chain(gid).any(|m| m.size() == 0) {
            return Err(invalid(format!(
                "idmapped mount on {:?} needs non-empty uidMappings and gidMappings (its own or the container's)",
                m.destination()
            )));
        }
    }
    Ok(())
}

/// linux.devices are files to make: "a" is a wildcard for cgroup rules, not a file type.
/// linux.resources.devices are cgroup rules: a, b or c, and access made of r, w and m.
fn check_devices(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else { return Ok(()) };
    for d in linux.devices().iter().flatten() {
        if d.typ() == LinuxDeviceType::A {
            return Err(invalid(format!(
                "device {:?} has type \"a\", which only device cgroup rules may use",
                d.path()
            )));
        }
        if !d.path().is_absolute() {
            return Err(invalid(format!("device path {:?} is not absolute", d.path())));
        }
        if d.path().file_name().is_none() {
            return Err(invalid(format!("device path {:?} has no name", d.path())));
        }
    }
    let rules = linux.resources().as_ref().and_then(|r| r.devices().as_ref());
    for rule in rules.into_iter().flatten() {
        check_device_rule(rule)?;
    }
    Ok(())
}

/// One device cgroup rule (config's, or `update`'s): what both cgroup versions can express.
pub fn check_device_rule(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> Result<()> {
    match rule.typ() {
        None | Some(LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C) => {}
        Some(other) => return Err(invalid(format!("device rule type {:?} is not a, b or c", other.as_str()))),
    }
    if let Some(bad) = rule.access().as_deref().unwrap_or("rwm").chars().find(|c| !"rwm".contains(*c)) {
        return Err(invalid(format!("device rule access {bad:?} is not r, w or m")));
    }
    Ok(())
}

/// linux.resources.cpu.cpus and .mems: lists of numbers and ranges ("0-3,6"); which of them
/// exist is the kernel's to say.
fn check_cpu_sets(spec: &Spec) -> Result<()> {
    let cpu = spec.linux().as_ref().and_then(|l| l.resources().as_ref()).and_then(|r| r.cpu().as_ref());
    let lists = [("cpus", cpu.and_then(|c| c.cpus().as_deref())), ("mems", cpu.and_then(|c| c.mems().as_deref()))];
    for (key, list) in lists {
        let Some(list) = list else { continue };
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let n = |s: &str| s.trim().parse::<u32>().ok();
            let ok = match part.split_once('-') {
                Some((lo, hi)) => n(lo).zip(n(hi)).is_some_and(|(lo, hi)| lo <= hi),
                None => n(part).is_some(),
            };
            if !ok {
                return Err(invalid(format!(
                    "linux.resources.cpu.{key} {list:?}: {part:?} is not a number or a range"
                )));
            }
        }
    }
    Ok(())
}

/// linux.cgroupsPath: a path below a hierarchy (or systemd's slice:prefix:name), never one
/// that climbs out of it.
fn check_cgroups_path(spec: &Spec) -> Result<()> {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    if let Some(path) = path.filter(|p| p.components().any(|c| matches!(c, std::path::Component::ParentDir))) {
        return Err(invalid(format!("cgroupsPath {path:?} must not contain \"..\"")));
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

fn check_proc_mount(dest: &Path, fstype: &str, source: Option<&Path>) -> Result<()> {
    let normal: PathBuf = dest.components().collect();
    if normal == Path::new("/proc") {
        return match (fstype, source) {
            ("proc", _) => Ok(()),
            // A bind of a procfs (an engine's own /proc, a pid namespace's) is a procfs still.
            ("bind", Some(source)) if is_procfs(source) => Ok(()),
            ("bind", source) => Err(invalid(format!(
                "/proc may only be mounted as proc or as a bind of a procfs, and {source:?} is not a procfs"
            ))),
            (other, _) => Err(invalid(format!("/proc may only be mounted as proc, not {other:?}"))),
        };
    }
    if normal.starts_with("/proc") && !PROC_OVERMOUNTS.iter().any(|p| normal == Path::new(p)) {
        return Err(invalid(format!(
            "mount destination {dest:?} is under /proc and not one of the files that may be covered"
        )));
    }
    Ok(())
}

fn is_procfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
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
        // The container's mounts are then made in the runtime's namespace (see
        // shares_runtime_mount_namespace): nothing may change how the host's mounts propagate,
        // and a user namespace could not mount there at all.
        if has(LinuxNamespaceType::User) {
            return Err(invalid(
                "a user namespace needs a mount namespace of its own (without one the rootfs would be set up in the runtime's, where the user namespace may not mount)",
            ));
        }
        if linux.and_then(|l| l.rootfs_propagation().as_ref()).is_some() {
            return Err(invalid(
                "rootfsPropagation needs a mount namespace of its own (without one it would change the host's mounts)",
            ));
        }
    }
    let maps = linux
        .map(|l| l.uid_mappings().iter().flatten().count() + l.gid_mappings().iter().flatten().count())
        .unwrap_or(0);
    if maps > 0 && !has(LinuxNamespaceType::User) {
        return Err(invalid("uidMappings/gidMappings need a user namespace"));
    }
    if let Some(linux) = linux {
        check_id_mappings("linux.uidMappings", linux.uid_mappings().as_deref().unwrap_or_default())?;
        check_id_mappings("linux.gidMappings", linux.gid_mappings().as_deref().unwrap_or_default())?;
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
    for (what, name) in [("hostname", spec.hostname()), ("domainname", spec.domainname())] {
        if name.as_deref().is_some_and(|n| n.contains('\0')) {
            return Err(invalid(format!("{what} {name:?} contains a NUL byte")));
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
    check_time_offsets(spec)?;
    for key in linux.and_then(|l| l.sysctl().as_ref()).into_iter().flatten().map(|(k, _)| k) {
        check_sysctl(key, &has)?;
    }
    Ok(())
}

/// What user_namespaces(7) lets a map hold: ranges of at least one id, within 32 bits, none
/// overlapping another on either side.
fn check_id_mappings(what: &str, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<()> {
    let range = |start: u32, size: u32| (u64::from(start), u64::from(start) + u64::from(size));
    let shown = |m: &oci_spec::runtime::LinuxIdMapping| format!("{} {} {}", m.container_id(), m.host_id(), m.size());
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(invalid(format!("{what}[{i}] {:?}: size 0 maps nothing", shown(m))));
        }
        let (inside, outside) = (range(m.container_id(), m.size()), range(m.host_id(), m.size()));
        if inside.1 > 1 << 32 || outside.1 > 1 << 32 {
            return Err(invalid(format!("{what}[{i}] {:?}: the range runs past the last id (4294967295)", shown(m))));
        }
        for (j, earlier) in maps[..i].iter().enumerate() {
            let overlaps = |a: (u64, u64), b: (u64, u64)| a.0 < b.1 && b.0 < a.1;
            if overlaps(inside, range(earlier.container_id(), earlier.size()))
                || overlaps(outside, range(earlier.host_id(), earlier.size()))
            {
                return Err(invalid(format!("{what}[{i}] {:?} overlaps {what}[{j}] {:?}", shown(m), shown(earlier))));
            }
        }
    }
    Ok(())
}

/// config-linux.md: the clocks a time namespace offsets are monotonic and boottime; the
/// nanoseconds are a fraction of a second. (Each becomes a line of /proc/self/timens_offsets.)
fn check_time_offsets(spec: &Spec) -> Result<()> {
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref());
    for (clock, offset) in offsets.into_iter().flatten() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(invalid(format!("timeOffsets: clock {clock:?} is not monotonic or boottime")));
        }
        if let Some(ns) = offset.nanosecs().filter(|ns| *ns >= 1_000_000_000) {
            return Err(invalid(format!("timeOffsets.{clock}: nanosecs {ns} is not below 1000000000")));
        }
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
        assert!(check_proc_mount(Path::new("/proc"), "proc", None).is_ok());
        assert!(check_proc_mount(Path::new("/proc"), "tmpfs", None).is_err());
        assert!(check_proc_mount(Path::new("/proc"), "bind", Some(Path::new("/proc"))).is_ok());
        assert!(check_proc_mount(Path::new("/proc"), "bind", Some(Path::new("/"))).is_err());
        assert!(check_proc_mount(Path::new("/proc/meminfo"), "bind", None).is_ok());
        assert!(check_proc_mount(Path::new("/proc/self/exe"), "bind", None).is_err());
        assert!(check_proc_mount(Path::new("/proc/sys/kernel"), "tmpfs", None).is_err());
        assert!(check_proc_mount(Path::new("/procfoo"), "tmpfs", None).is_ok());
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let only_net = |t: LinuxNamespaceType| t == LinuxNamespaceType::Network;
        assert!(check_sysctl("net.ipv4.ip_forward", &only_net).is_ok());
        assert!(check_sysctl("kernel.shmmax", &only_net).is_err());
        assert!(check_sysctl("vm.swappiness", &|_| true).is_err());
    }

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = crate::spec::default_spec(false, 0, 0);
        if let (Some(b), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            b.extend(extra.clone());
        }
        serde_json::from_value(base).expect("a config")
    }

    #[test]
    fn cpu_sets_are_numbers_and_ranges() {
        let cpus = |list: &str| spec(serde_json::json!({"linux": {"resources": {"cpu": {"cpus": list}}}}));
        for good in ["", "0", "0-3,6", " 1 , 2-2 "] {
            assert!(check_cpu_sets(&cpus(good)).is_ok(), "{good:?}");
        }
        for bad in ["x", "3-1", "0-", "1;2", "-1"] {
            assert!(check_cpu_sets(&cpus(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn devices_and_device_rules() {
        let dev = |t: &str, path: &str| {
            spec(serde_json::json!({"linux": {"devices": [{"path": path, "type": t, "major": 1, "minor": 3}]}}))
        };
        assert!(check_devices(&dev("c", "/dev/null2")).is_ok());
        assert!(check_devices(&dev("a", "/dev/all")).is_err());
        assert!(check_devices(&dev("c", "dev/null2")).is_err());
        assert!(check_devices(&dev("c", "/")).is_err());
        let rule = |t: &str, access: &str| {
            spec(
                serde_json::json!({"linux": {"resources": {"devices": [{"allow": true, "type": t, "access": access}]}}}),
            )
        };
        assert!(check_devices(&rule("a", "rwm")).is_ok());
        assert!(check_devices(&rule("c", "rx")).is_err());
        assert!(check_devices(&rule("p", "r")).is_err());
    }

    #[test]
    fn idmapped_mounts_are_binds_with_mappings() {
        let mounts = |m: serde_json::Value| spec(serde_json::json!({"mounts": [m]}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let ok = mounts(serde_json::json!({"destination": "/m", "source": "/tmp", "type": "bind",
            "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map}));
        assert!(check_idmapped_mounts(&ok).is_ok());
        let tmpfs =
            mounts(serde_json::json!({"destination": "/m", "source": "tmpfs", "type": "tmpfs", "options": ["idmap"]}));
        assert!(check_idmapped_mounts(&tmpfs).is_err());
        let unmapped =
            mounts(serde_json::json!({"destination": "/m", "source": "/tmp", "type": "bind", "options": ["idmap"]}));
        assert!(check_idmapped_mounts(&unmapped).is_err());
    }
}
