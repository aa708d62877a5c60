//! The container's filesystem view, built inside its new mount namespace before pivot_root:
//! propagation, the rootfs bind, the config's mounts, /dev, masked and read-only paths.

mod cgroupfs;
mod devices;
mod mount_ops;
mod mounts;
mod options;
pub mod overlay;
pub mod path;
mod pivot;
mod protect;

use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

pub use mounts::{clone_bind_source, MountContext};
pub use options::NAMES as MOUNT_OPTION_NAMES;
use path::Root;

use crate::error::{Error, Result, SysContext};

/// The first step in the new mount namespace: `/` made a slave (or what rootfsPropagation
/// asks), so nothing mounted from here on reaches the host. Separate from `prepare` so the
/// init does it while the parent is still making the overlay.
pub fn isolate(spec: &Spec, rootfs: &Path) -> Result<()> {
    let mut propagation = root_propagation(wanted_propagation(spec))?;
    // Nothing can be bound from under an unbindable mount (the rootfs onto itself, the masks,
    // bind sources): unbindable is given to the container's / only after pivot_root (enter).
    // Shared must be set now, while the mounts are still the host's peers.
    if propagation.contains(MsFlags::MS_UNBINDABLE) {
        propagation = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    }
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>).ctx("set propagation of", "/")?;
    // Unless the whole tree just became a slave or private, the mount holding the rootfs may
    // still be shared (engines mount it, and on systemd hosts every mount is shared): mounts
    // made under it would then appear on the host, and pivot_root refuses a new root whose
    // parent is shared. It is made private first, as runc does.
    let recursive_slave_or_private =
        propagation.contains(MsFlags::MS_REC) && propagation.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE);
    if !recursive_slave_or_private {
        make_rootfs_mount_private(rootfs)?;
    }
    Ok(())
}

/// Everything after `isolate` up to (not including) pivot_root.
/// Returns the rootfs handle (opened on the mounted root) for the steps that follow.
pub fn prepare(spec: &Spec, rootfs: &Path, ctx: &MountContext) -> Result<Root> {
    // pivot_root needs the new root to be a mount point: the overlay is one, a plain rootfs
    // is bound onto itself.
    match (ctx.overlay, ctx.overlay_tree) {
        (Some(_), Some(tree)) => overlay::attach(tree, rootfs)?,
        (Some(layers), None) => layers.mount(rootfs)?,
        (None, _) => mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .ctx("bind rootfs onto itself", rootfs.display())?,
    }
    let root = Root::open(rootfs)?;
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let read_only_later = mounts::read_only_later(mounts);
    for (i, m) in mounts.iter().enumerate() {
        mounts::mount_entry(&root, m, ctx, i, read_only_later == Some(i))?;
    }
    let linux = spec.linux().as_ref();
    let dev_is_bound = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev") && m.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
    });
    let mut devs = Vec::new();
    if !dev_is_bound {
        devs = devices::default_devices();
    }
    for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        let dev = devices::from_config(d)?;
        devs.retain(|x| x.path != dev.path);
        devs.push(dev);
    }
    for dev in &devs {
        devices::create(&root, dev, ctx.in_userns)?;
    }
    if !dev_is_bound {
        let has_devpts = mounts.iter().any(|m| m.destination() == Path::new("/dev/pts"));
        devices::create_symlinks(&root, has_devpts)?;
    }
    Ok(root)
}

/// A read-only /dev is made read-only last, after prepare filled it and the console was
/// bound onto /dev/console (mounts::read_only_later).
pub fn seal_dev(spec: &Spec, root: &Root) -> Result<()> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    match mounts::read_only_later(mounts) {
        Some(i) => mounts::make_read_only(root, &mounts[i]),
        None => Ok(()),
    }
}

/// Masked and read-only paths; after sysctls (which write through /proc/sys) and before
/// pivot_root, so the host's /proc/self/fd is still there to mount through.
/// Read-only paths first, then masks, in runc's order: the mount table reads the same.
pub fn protect(spec: &Spec, root: &Root) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        protect::make_readonly(root, p)?;
    }
    let masked = linux.and_then(|l| l.masked_paths().as_ref()).filter(|m| !m.is_empty());
    if let Some(masked) = masked {
        let null = protect::NullDevice::of(root);
        for p in masked {
            protect::mask(root, p, &null)?;
        }
    }
    Ok(())
}

/// Makes the rootfs `/`. In the runtime's own mount namespace (`shares_mounts`) the rootfs is
/// only chrooted into: a pivot_root or a move there would change the host's root.
pub fn enter(rootfs: &Path, no_pivot: bool, shares_mounts: bool) -> Result<()> {
    if shares_mounts {
        pivot::chroot_into(rootfs)?;
    } else if no_pivot {
        pivot::move_root(rootfs)?;
    } else {
        pivot::pivot(rootfs)?;
    }
    Ok(())
}

/// root.readonly and rootfsPropagation, applied to the new `/` (through /proc/self, so by a
/// process the container's /proc shows).
pub fn finish_root(spec: &Spec) -> Result<()> {
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        let slash = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx("open", "/")?;
        mount_ops::remount_bind(&slash, MsFlags::MS_RDONLY, "/")?;
    }
    if let Some(wanted) = wanted_propagation(spec) {
        let flags = root_propagation(Some(wanted))?;
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).ctx("set propagation of", "/")?;
    }
    Ok(())
}

/// linux.rootfsPropagation, if the config sets it.
fn wanted_propagation(spec: &Spec) -> Option<&str> {
    spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref())
}

/// The propagation `/` gets (linux.rootfsPropagation, rslave when the config says nothing):
/// one propagation word, nothing else.
pub fn root_propagation(wanted: Option<&str>) -> Result<MsFlags> {
    let wanted = wanted.unwrap_or("rslave");
    let opts = options::parse(&[wanted.to_string()]);
    match opts.propagation.as_slice() {
        [flag] if opts.data.is_empty() && opts.flags.is_empty() => Ok(*flag),
        _ => Err(Error::InvalidConfig(format!("rootfsPropagation {wanted:?} is not a propagation mode"))),
    }
}

/// The mount the rootfs lives on (the rootfs itself, when engines mounted it there) is made
/// private: only that one mount, not the tree below it.
fn make_rootfs_mount_private(rootfs: &Path) -> Result<()> {
    let mountpoint = crate::procfs::mounts()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| rootfs.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .unwrap_or_else(|| "/".into());
    mount(None::<&str>, &mountpoint, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
        .ctx("make private", mountpoint.display())
}

/// For a container in the runtime's mount namespace: the ids of the mounts at or below the
/// rootfs before it is set up (an engine's own rootfs mount among them), so that what the
/// container added can be told apart and removed (`unmount_added`).
pub fn mounts_below(rootfs: &Path) -> Result<Vec<u32>> {
    Ok(crate::procfs::mounts()?.into_iter().filter(|m| m.mount_point.starts_with(rootfs)).map(|m| m.id).collect())
}

/// Unmounts what was mounted at or below the rootfs since `before` was taken: the rootfs bound
/// onto itself and everything the container mounted under it. A lazy unmount of the outermost
/// takes its submounts with it; the loop ends when nothing new is left (bounded, in case a
/// mount cannot be removed).
pub fn unmount_added(rootfs: &Path, before: &[u32]) -> Result<()> {
    for _ in 0..64 {
        let added = crate::procfs::mounts()?
            .into_iter()
            .filter(|m| m.mount_point.starts_with(rootfs) && !before.contains(&m.id))
            .min_by_key(|m| (m.mount_point.as_os_str().len(), std::cmp::Reverse(m.id)));
        let Some(mount) = added else { return Ok(()) };
        match nix::mount::umount2(&mount.mount_point, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("unmount", mount.mount_point.display(), e)),
        }
    }
    Err(Error::sys("unmount what the container mounted below", rootfs.display(), nix::errno::Errno::EBUSY))
}

/// The config lists no mount namespace: the container shares the runtime's (config-linux.md:
/// "the container inherits the runtime namespace of that type"), so its mounts are made there,
/// under the rootfs, it is chrooted rather than pivoted, and delete unmounts them.
pub fn shares_runtime_mount_namespace(spec: &Spec) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    !namespaces.into_iter().flatten().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_propagation_is_one_propagation_word() {
        assert_eq!(root_propagation(None).ok(), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert_eq!(root_propagation(Some("private")).ok(), Some(MsFlags::MS_PRIVATE));
        for bad in ["sideways", "ro", "bind", "private,ro", ""] {
            assert!(root_propagation(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
