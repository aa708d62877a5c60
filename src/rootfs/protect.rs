//! Masked paths (hidden behind /dev/null or an empty read-only tmpfs) and read-only paths,
//! which keep the container away from host knobs such as /proc/kcore and /proc/sys.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::fstat;

use super::mount_ops::remount_bind;
use super::path::{fd_path, Root};
use crate::error::{Error, Result, SysContext};

/// The file masks are made of: the container's own /dev/null, as runc uses it (the host's
/// is a devtmpfs whose size and inode count the container's mountinfo would show), else the
/// host's.
pub struct NullDevice(Option<std::os::fd::OwnedFd>);

impl NullDevice {
    pub fn of(root: &Root) -> NullDevice {
        let fd = root.resolve(Path::new("/dev/null")).ok();
        NullDevice(fd.filter(|fd| fstat(fd).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFCHR)))
    }

    fn source(&self) -> String {
        self.0.as_ref().map_or_else(|| "/dev/null".into(), fd_path)
    }
}

pub fn mask(root: &Root, path: &str, null: &NullDevice) -> Result<()> {
    let Some(target) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let is_dir = fstat(&target).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR).ctx("stat", path)?;
    let result = if is_dir {
        mount(Some("tmpfs"), fd_path(&target).as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
    } else {
        mount(Some(null.source().as_str()), fd_path(&target).as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
    };
    result.map_err(|errno| Error::Mount {
        what: "mask".into(),
        target: path.into(),
        fstype: if is_dir { "tmpfs" } else { "bind" }.into(),
        errno,
    })
}

pub fn make_readonly(root: &Root, path: &str) -> Result<()> {
    let Some(target) = resolve_existing(root, path)? else {
        return Ok(());
    };
    mount(
        Some(fd_path(&target).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| Error::Mount { what: path.into(), target: path.into(), fstype: "bind".into(), errno })?;
    let mounted = root.resolve(Path::new(path)).ctx("open", path)?;
    remount_bind(&mounted, MsFlags::MS_RDONLY | MsFlags::MS_REC, path)
}

/// Paths that the container's kernel or image does not have are skipped, as runc does.
fn resolve_existing(root: &Root, path: &str) -> Result<Option<std::os::fd::OwnedFd>> {
    match root.resolve(Path::new(path)) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys("open", path, e)),
    }
}
