//! A `cgroup` mount inside the container. On a v2 host it is one cgroup2 mount; on v1 and
//! hybrid hosts it is a tmpfs holding one directory per hierarchy, as runc lays it out, each the
//! container's own cgroup (a fresh cgroupfs mount inside the cgroup namespace, else a bind).

use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::MsFlags;

use super::mount_ops::{bind, fs_mount, remount_bind};
use super::options::{self, MountOptions};
use super::path::Root;
use crate::cgroups::CgroupDir;
use crate::error::{Error, Result, SysContext};

/// `new_cgroupns`: the container has its own cgroup namespace, so each hierarchy is a fresh
/// cgroupfs mount rooted at its cgroup; without one it is a bind of the host's directory.
pub fn mount_cgroupfs(
    root: &Root,
    dest: &Path,
    opts: &MountOptions,
    cgroups: &[CgroupDir],
    new_cgroupns: bool,
) -> Result<()> {
    let fs_flags = opts.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME | MsFlags::MS_RDONLY);
    if let [only] = cgroups {
        if only.unified {
            return mount_one(root, dest, &only.path, "cgroup2", None, fs_flags, new_cgroupns);
        }
    }
    let tmpfs =
        MountOptions { flags: fs_flags - MsFlags::MS_RDONLY, data: vec!["mode=755".into()], ..Default::default() };
    let target = root.mkdir_all(dest)?;
    fs_mount("tmpfs", &target, "tmpfs", &tmpfs, root.display(dest))?;
    for h in cgroups {
        let path = &h.path;
        let name = h.mountpoint.file_name().map(|n| n.to_owned()).unwrap_or_else(|| "unified".into());
        let sub = dest.join(&name);
        if h.unified {
            mount_one(root, &sub, path, "cgroup2", None, fs_flags, new_cgroupns)?;
        } else {
            let data = h.controllers.join(",");
            mount_one(root, &sub, path, "cgroup", Some(&data), fs_flags, new_cgroupns)?;
            link_comounted(root, dest, &name.to_string_lossy(), &h.controllers)?;
        }
    }
    if fs_flags.contains(MsFlags::MS_RDONLY) {
        let tmpfs_root = root.resolve(dest).ctx("open", root.display(dest))?;
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs.flags;
        nix::mount::mount(None::<&str>, super::path::fd_path(&tmpfs_root).as_str(), None::<&str>, flags, None::<&str>)
            .ctx("remount read-only", root.display(dest))?;
    }
    Ok(())
}

fn mount_one(
    root: &Root,
    dest: &Path,
    host_path: &Path,
    fstype: &str,
    data: Option<&str>,
    flags: MsFlags,
    new_cgroupns: bool,
) -> Result<()> {
    if new_cgroupns {
        let target = root.mkdir_all(dest)?;
        let opts =
            MountOptions { flags, data: data.map(|d| vec![d.to_string()]).unwrap_or_default(), ..Default::default() };
        return fs_mount(fstype, &target, fstype, &opts, root.display(dest));
    }
    bind(root, host_path, dest, &options::parse(&["bind".into()]))?;
    if !flags.is_empty() {
        let mounted = root.resolve(dest).ctx("open", root.display(dest))?;
        remount_bind(&mounted, flags, &root.display(dest))?;
    }
    Ok(())
}

/// "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
fn link_comounted(root: &Root, dest: &Path, name: &str, controllers: &[String]) -> Result<()> {
    if controllers.len() < 2 {
        return Ok(());
    }
    let dir = root.resolve(dest).ctx("open", root.display(dest))?;
    let base = super::path::fd_path(&dir);
    for c in controllers.iter().filter(|c| !c.starts_with("name=")) {
        let link = Path::new(&base).join(c);
        symlink(name, &link).map_err(|e| Error::io("symlink", root.display(&dest.join(c)), e))?;
    }
    Ok(())
}
