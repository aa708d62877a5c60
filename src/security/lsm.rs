//! Linux security modules: process.apparmorProfile, process.selinuxLabel and
//! linux.mountLabel.
//!
//! A profile or label takes effect at the process's execve: it is written to the task's
//! /proc/self/attr/.../exec right before the seccomp filter goes in (after it, the write
//! could be denied). A config that asks for a module the host does not run is refused at
//! `create`: docker's profile silently not applied would be a container running unconfined.

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result, SysContext};

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Before anything exists: every module the config asks for is there.
pub fn check(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref();
    if let Some(profile) = process.and_then(|p| p.apparmor_profile().as_deref()).filter(|p| !p.is_empty()) {
        if !apparmor_enabled() {
            return Err(Error::InvalidConfig(format!(
                "process.apparmorProfile {profile:?} is set, but AppArmor is not enabled on this host"
            )));
        }
    }
    let label = process.and_then(|p| p.selinux_label().as_deref()).filter(|l| !l.is_empty());
    let mount_label = spec.linux().as_ref().and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty());
    if let Some(label) = label.or(mount_label) {
        if !selinux_enabled() {
            return Err(Error::InvalidConfig(format!(
                "SELinux label {label:?} is set, but SELinux is not enabled on this host"
            )));
        }
    }
    Ok(())
}

/// The profile and label the process's execve puts it under. Inside the container, after
/// pivot_root: /proc is the container's own, mounted on an ordinary directory (never through
/// a symlink: rootfs::mounts checks).
pub fn set_exec_labels(process: &Process) -> Result<()> {
    if let Some(profile) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        // Kernels with stacked LSMs have an AppArmor directory of their own.
        let file = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(file, format!("exec {profile}")).ctx("apply AppArmor profile", profile)?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        std::fs::write("/proc/self/attr/exec", label).ctx("apply SELinux label", label)?;
    }
    Ok(())
}

/// linux.mountLabel as the context= option of the filesystems that take one (as runc gives
/// it: tmpfs, mqueue, devpts), unless the mount names a context itself.
pub fn label_mount(fstype: &str, data: &mut Vec<String>, mount_label: Option<&str>) {
    let Some(label) = mount_label.filter(|l| !l.is_empty()) else { return };
    if matches!(fstype, "tmpfs" | "mqueue" | "devpts") && !data.iter().any(|d| d.starts_with("context=")) {
        data.push(format!("context=\"{label}\""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_goes_to_the_filesystems_that_take_it() {
        let l = Some("system_u:object_r:container_file_t:s0");
        let mut data = vec!["size=64k".to_string()];
        label_mount("tmpfs", &mut data, l);
        assert_eq!(data, ["size=64k", "context=\"system_u:object_r:container_file_t:s0\""]);
        let mut data = vec![];
        label_mount("proc", &mut data, l);
        label_mount("tmpfs", &mut data, None);
        assert!(data.is_empty());
        let mut data = vec!["context=\"x\"".to_string()];
        label_mount("devpts", &mut data, l);
        assert_eq!(data.len(), 1);
    }
}
