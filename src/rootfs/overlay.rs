//! The container layer: the bundle's rootfs (or an image's layers) as read-only lower layers
//! of an overlay, with a writable upper layer that lives in the container's state directory
//! and goes away with it. The bundle itself is never written.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result, SysContext};
use crate::sys;

#[derive(Clone, Debug)]
pub struct Layers {
    /// Top layer first, as overlayfs lists them.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Layers {
    /// Makes the upper and work directories under `layer_dir`.
    pub fn create(lower: Vec<PathBuf>, layer_dir: &Path) -> Result<Layers> {
        let layers = Layers { lower, upper: layer_dir.join("upper"), work: layer_dir.join("work") };
        for dir in [&layers.upper, &layers.work] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create overlay directory", dir.display(), e))?;
        }
        Ok(layers)
    }

    /// With a user namespace, the container's root must own its writable layer.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<()> {
        for dir in [&self.upper, &self.work] {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| Error::io("chown", dir.display(), e))?;
        }
        Ok(())
    }

    /// overlayfs splits lowerdir on ':' (and mount(2)'s option string on ','), so no layer path
    /// may contain either.
    fn check_paths(&self) -> Result<()> {
        for p in self.lower.iter().chain([&self.upper, &self.work]) {
            if p.to_string_lossy().contains([',', ':']) {
                return Err(Error::InvalidConfig(format!("overlay layer path {p:?} contains ',' or ':'")));
            }
        }
        Ok(())
    }

    fn lowerdir(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        lower.join(":")
    }

    fn options(&self) -> Result<String> {
        self.check_paths()?;
        // volatile: the container layer dies with the container, so the syncs overlayfs does on
        // unmount (a syncfs of the whole upper filesystem) buy nothing.
        Ok(format!(
            "lowerdir={},upperdir={},workdir={},volatile",
            self.lowerdir(),
            self.upper.display(),
            self.work.display()
        ))
    }

    /// The overlay as a detached mount (fsopen/fsmount), for the parent to make while the init
    /// sets itself up: superblock setup is ~0.1 ms of overlayfs probing its work directory,
    /// which this takes off the container's start path. The init attaches it with `attach`.
    pub fn mount_detached(&self) -> Result<OwnedFd> {
        self.check_paths()?;
        let c = |text: String| {
            CString::new(text).map_err(|_| Error::InvalidConfig("overlay layer path contains NUL".into()))
        };
        let lower = c(self.lowerdir())?;
        let upper = c(self.upper.display().to_string())?;
        let work = c(self.work.display().to_string())?;
        // "source" is what mountinfo shows, as mount(2)'s device argument does.
        let strings = [
            (c"source", c"overlay"),
            (c"lowerdir", lower.as_c_str()),
            (c"upperdir", upper.as_c_str()),
            (c"workdir", work.as_c_str()),
        ];
        sys::fsmount_detached(c"overlay", &strings, &[c"volatile"]).ctx("make overlay over", self.upper.display())
    }

    /// Mounts the overlay on the bundle's rootfs directory `rootfs`, inside the container's
    /// mount namespace (a slave of the host's by then): the host and other containers still
    /// see the bundle as it is. No directory of our own to mount on: each one is an mkdir and
    /// an rmdir more per container, ~75 µs where berth's root is on ext4.
    pub fn mount(&self, rootfs: &Path) -> Result<()> {
        let options = self.options()?;
        mount(Some("overlay"), rootfs, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
            .ctx("mount overlay rootfs on", rootfs.display())
    }
}

/// Attaches the overlay the parent made (`Layers::mount_detached`) on `rootfs`, inside the
/// container's mount namespace.
pub fn attach(tree: &OwnedFd, rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let target = nix::fcntl::open(rootfs, flags, Mode::empty()).ctx("open rootfs", rootfs.display())?;
    sys::move_mount_to(tree, &target).ctx("attach overlay rootfs on", rootfs.display())
}
