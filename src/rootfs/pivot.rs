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
    chdir(rootfs).ctx("chdir", rootfs.display())?;
    mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx("move rootfs to /", rootfs.display())?;
    chroot(".").ctx("chroot", rootfs.display())?;
    chdir("/").ctx("chdir", "/")
}
