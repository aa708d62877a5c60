//! The mount calls every kind of mount is made of: a fresh filesystem, a bind, a remount of a
//! bind's flags, then propagation and recursive attributes. mounts.rs (the config's mounts),
//! cgroupfs.rs, devices.rs and protect.rs build on them.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::options::MountOptions;
use super::path::{fd_path, Root};
use crate::error::{Error, Result, SysContext};

/// A fresh filesystem mount on the already-resolved `target`.
pub fn fs_mount(source: &str, target: &OwnedFd, fstype: &str, opts: &MountOptions, shown: String) -> Result<()> {
    let flags = opts.flags - MsFlags::MS_REMOUNT;
    mount(Some(source), fd_path(target).as_str(), Some(fstype), flags, opts.data_string().as_deref())
        .map_err(|errno| Error::Mount { what: source.into(), target: shown, fstype: fstype.into(), errno })
}

/// Bind-mounts a host path onto `dest` inside the root, then applies the remaining flags with
/// a remount (the kernel ignores them on the bind call itself).
pub fn bind(root: &Root, source: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let meta = std::fs::metadata(source).map_err(|e| Error::io("bind mount source", source.display(), e))?;
    let target = if meta.is_dir() { root.mkdir_all(dest)? } else { root.create_file(dest)? };
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(Some(source), fd_path(&target).as_str(), None::<&str>, flags, None::<&str>).map_err(|errno| {
        Error::Mount { what: source.display().to_string(), target: root.display(dest), fstype: "bind".into(), errno }
    })?;
    if !opts.remount_flags().is_empty() {
        let mounted = root.resolve(dest).ctx("open", root.display(dest))?;
        remount_bind(&mounted, opts.remount_flags(), &root.display(dest))?;
    }
    finish(root, dest, opts)
}

/// Changes a bind mount's flags. Flags the kernel locked on the source mount (nosuid, nodev,
/// noexec, atime in a user namespace) must be repeated or the remount fails with EPERM.
pub fn remount_bind(target: &OwnedFd, flags: MsFlags, shown: &str) -> Result<()> {
    let path = fd_path(target);
    let locked = statvfs(path.as_str()).map(|s| locked_flags(s.flags())).unwrap_or(MsFlags::empty());
    let all = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked;
    mount(None::<&str>, path.as_str(), None::<&str>, all, None::<&str>).map_err(|errno| Error::Mount {
        what: "remount".into(),
        target: shown.into(),
        fstype: "bind".into(),
        errno,
    })
}

fn locked_flags(f: FsFlags) -> MsFlags {
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs.iter().filter(|(st, _)| f.contains(*st)).fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms)
}

/// Propagation changes and recursive attributes, applied to the mount now on `dest`.
pub(super) fn finish(root: &Root, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let mounted = root.resolve(dest).ctx("open", root.display(dest))?;
    for flag in &opts.propagation {
        mount(None::<&str>, fd_path(&mounted).as_str(), None::<&str>, *flag, None::<&str>)
            .ctx("set propagation of", root.display(dest))?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let tree = root
            .resolve_with(dest, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY)
            .ctx("open", root.display(dest))?;
        crate::sys::mount_setattr(&tree, opts.rec_set, opts.rec_clr, true)
            .ctx("set recursive mount attributes on", root.display(dest))?;
    }
    Ok(())
}
