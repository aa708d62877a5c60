//! /dev inside the container: the default device nodes every container gets, the config's own,
//! and the standard symlinks. In a user namespace mknod is refused, so the host's nodes are
//! bind-mounted instead (as runc does).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mount_ops::bind;
use super::options;
use super::path::Root;
use crate::error::{Error, Result, SysContext};

pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn default_devices() -> Vec<Device> {
    // In runc's order: bind mounts of them (in a user namespace) then list the same.
    [("null", 1, 3), ("random", 1, 8), ("full", 1, 7), ("tty", 5, 0), ("zero", 1, 5), ("urandom", 1, 9)]
        .into_iter()
        .map(|(name, major, minor)| Device {
            path: Path::new("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect()
}

pub fn from_config(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidConfig(format!(
                "device {:?} has type \"a\", which only device cgroup rules may use",
                d.path()
            )))
        }
    };
    if !d.path().is_absolute() {
        return Err(Error::InvalidConfig(format!("device path {:?} is not absolute", d.path())));
    }
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

pub fn create(root: &Root, dev: &Device, in_userns: bool) -> Result<()> {
    if in_userns {
        return bind(root, &dev.path, &dev.path, &options::parse(&["bind".into()]));
    }
    let rel = &dev.path;
    let name = rel.file_name().ok_or_else(|| Error::InvalidConfig(format!("device path {rel:?} has no name")))?;
    // An O_PATH directory fd is enough for the *at calls below.
    let dirfd = root.mkdir_all(rel.parent().unwrap_or(Path::new("/")))?;
    let mode = Mode::from_bits_truncate(dev.mode);
    let devno = makedev(dev.major, dev.minor);
    match mknodat(dirfd.as_fd(), name, dev.kind, mode, devno) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Replace whatever the image shipped at that name with the node the config asks for.
            unlinkat(dirfd.as_fd(), name, UnlinkatFlags::NoRemoveDir).ctx("remove", root.display(rel))?;
            mknodat(dirfd.as_fd(), name, dev.kind, mode, devno).ctx("mknod", root.display(rel))?;
        }
        Err(e) => return Err(Error::sys("mknod", root.display(rel), e)),
    }
    fchownat(
        dirfd.as_fd(),
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx("chown", root.display(rel))
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx, as every Linux userland expects them.
pub fn create_symlinks(root: &Root, has_devpts: bool) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if has_devpts {
        links.push(("pts/ptmx", "ptmx"));
    }
    let dev = root
        .resolve_with(Path::new("/dev"), nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY)
        .ctx("open", "/dev")?;
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) => {}
            Err(Errno::EEXIST) if name == "ptmx" => {
                unlinkat(dev.as_fd(), name, UnlinkatFlags::NoRemoveDir).ctx("remove", "/dev/ptmx")?;
                nix::unistd::symlinkat(target, dev.as_fd(), name).ctx("symlink", "/dev/ptmx")?;
            }
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys("symlink", format!("/dev/{name}"), e)),
        }
    }
    Ok(())
}
