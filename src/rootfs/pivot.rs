//! Making the rootfs the container's `/`.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::{Result, SysContext};

/// pivot_root(".", ".") stacks the old root on top of the new one; unmounting it (after making
/// it a slave so the unmount does not propagate to the host) leaves only the rootfs.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old_root =
        open("/", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx("open", "/")?;
    let new_root = open(rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx("open", rootfs.display())?;
    fchdir(&new_root).ctx("chdir", rootfs.display())?;
    pivot_root(".", ".").ctx("pivot_root", rootfs.display())?;
    fchdir(&old_root).ctx("chdir", "old root")?;
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .ctx("make old root rslave", "/")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("unmount old root", "/")?;
    chdir("/").ctx("chdir", "/")
}

/// `--no-pivot`: for roots pivot_root cannot handle (e.g. a ramfs initrd). The old root stays
/// reachable to a process that can escape a chroot, which is why it is not the default.
pub fn move_root(rootfs: &Path) -> Result<()> {
    hide_host_proc_and_sys(rootfs)?;
    chdir(rootfs).ctx("chdir", rootfs.display())?;
    mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx("move rootfs to /", rootfs.display())?;
    chroot(".").ctx("chroot", rootfs.display())?;
    chdir("/").ctx("chdir", "/")
}

/// A container in the runtime's mount namespace: chroot only, mounts left where they are.
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx("chdir", rootfs.display())?;
    chroot(".").ctx("chroot", rootfs.display())?;
    chdir("/").ctx("chdir", "/")
}

/// Without pivot_root the host's mounts stay in the container's mount namespace, below its
/// root. The kernel lets a user namespace mount a fresh procfs or sysfs when a fully visible
/// one is already mounted in the mount namespace, and the host's are: a container could mount
/// an unmasked /proc of its own. So every procfs and sysfs outside the rootfs is unmounted
/// first, or covered with an empty tmpfs where it cannot be.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    let mut points: Vec<std::path::PathBuf> = crate::procfs::mounts()?
        .into_iter()
        .filter(|m| matches!(m.fstype.as_str(), "proc" | "sysfs") && !m.mount_point.starts_with(rootfs))
        .map(|m| m.mount_point)
        .collect();
    // Deepest first, so a covering tmpfs never hides a mount still to be handled.
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    for point in &points {
        match umount2(point, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => {
                mount(Some("tmpfs"), point, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
                    .ctx("cover host mount", point.display())?;
            }
            Err(e) => return Err(crate::error::Error::sys("unmount host mount", point.display(), e)),
        }
    }
    Ok(())
}
