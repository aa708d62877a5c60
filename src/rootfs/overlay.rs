//! The container layer: the bundle's rootfs (or an image's layers) as read-only lower layers
//! of an overlay, with a writable upper layer that lives in the container's state directory
//! and goes away with it. The bundle itself is never written.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result, SysContext};

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

    fn options(&self) -> Result<String> {
        let all = self.lower.iter().chain([&self.upper, &self.work]);
        for p in all {
            // overlayfs splits its options on ',' and lowerdir on ':'.
            if p.to_string_lossy().contains([',', ':']) {
                return Err(Error::InvalidConfig(format!("overlay layer path {p:?} contains ',' or ':'")));
            }
        }
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        // volatile: the container layer dies with the container, so the syncs overlayfs does on
        // unmount (a syncfs of the whole upper filesystem) buy nothing.
        Ok(format!(
            "lowerdir={},upperdir={},workdir={},volatile",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        ))
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
