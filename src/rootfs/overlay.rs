//! The container layer: the bundle's rootfs (or an image's layers) as read-only lower layers
//! of an overlay, with a writable upper layer that lives in the container's state directory
//! and goes away with it. The bundle itself is never written.

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::path::Root;
use crate::error::{Error, Result, SysContext};
use crate::sys;

#[derive(Clone, Debug)]
pub struct Layers {
    /// Top layer first, as overlayfs lists them.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The host uid and gid of the container's root when it has a user namespace: it must own
    /// its writable layer.
    pub owner: Option<(u32, u32)>,
}

impl Layers {
    /// The layer's directories, `upper` and `work` in the container's state directory; they
    /// are made by `make_dirs`.
    pub fn new(lower: Vec<PathBuf>, state_dir: &Path, owner: Option<(u32, u32)>) -> Layers {
        Layers { lower, upper: state_dir.join("upper"), work: state_dir.join("work"), owner }
    }

    /// Called by the parent right after the clone, while the init starts up.
    pub fn make_dirs(&self) -> Result<()> {
        for dir in [&self.upper, &self.work] {
            std::fs::create_dir(dir).map_err(|e| Error::io("create overlay directory", dir.display(), e))?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .map_err(|e| Error::io("chown", dir.display(), e))?;
            }
        }
        Ok(())
    }

    /// volatile: the container layer dies with the container, so the syncs overlayfs does on
    /// unmount and on the container's fsyncs (of the whole upper filesystem) buy nothing. On
    /// a tmpfs those syncs cost nothing either, while volatile leaves three more entries
    /// (work/incompat/volatile/dirty) for delete to remove: there it is left off.
    fn volatile(&self) -> bool {
        nix::sys::statfs::statfs(&self.upper).map_or(true, |fs| fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC)
    }

    /// overlayfs splits lowerdir on ':' (and mount(2)'s option string on ','): no layer path
    /// may contain either, nor NUL. Checked by create before anything exists.
    pub fn check_paths(&self) -> Result<()> {
        for p in self.lower.iter().chain([&self.upper, &self.work]) {
            if p.to_string_lossy().contains([',', ':']) {
                return Err(Error::InvalidConfig(format!("overlay layer path {p:?} contains ',' or ':'")));
            }
            if p.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(Error::InvalidConfig("overlay layer path contains NUL".into()));
            }
        }
        Ok(())
    }

    /// lowerdir, upperdir and workdir as overlayfs takes them, and whether the layer is
    /// volatile: what both ways of mounting it say. overlayfs splits lowerdir on ':' (and
    /// mount(2)'s option string on ','), so no layer path may contain either.
    fn settings(&self) -> Result<([(&'static CStr, String); 3], bool)> {
        self.check_paths()?;
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        let dirs = [
            (c"lowerdir", lower.join(":")),
            (c"upperdir", self.upper.display().to_string()),
            (c"workdir", self.work.display().to_string()),
        ];
        Ok((dirs, self.volatile()))
    }

    /// The overlay as a detached mount (fsopen/fsmount), for the parent to make while the init
    /// sets itself up: superblock setup is ~0.1 ms of overlayfs probing its work directory,
    /// which this takes off the container's start path. The init attaches it with `attach`.
    pub fn mount_detached(&self) -> Result<OwnedFd> {
        let (dirs, volatile) = self.settings()?;
        let values = dirs
            .iter()
            .map(|(_, v)| CString::new(v.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::InvalidConfig("overlay layer path contains NUL".into()))?;
        // "source" is what mountinfo shows, as mount(2)'s device argument does.
        let mut strings = vec![(c"source", c"overlay")];
        strings.extend(dirs.iter().zip(&values).map(|((key, _), value)| (*key, value.as_c_str())));
        let flags: &[&CStr] = if volatile { &[c"volatile"] } else { &[] };
        sys::fsmount_detached(c"overlay", &strings, flags).ctx("make overlay over", self.upper.display())
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

    /// `settings` as mount(2)'s option string.
    fn options(&self) -> Result<String> {
        let (dirs, volatile) = self.settings()?;
        let mut options: Vec<String> =
            dirs.iter().map(|(key, value)| format!("{}={value}", key.to_string_lossy())).collect();
        if volatile {
            options.push("volatile".into());
        }
        Ok(options.join(","))
    }
}

/// Looks up, in the overlay the parent made, what the init will look up in it: the mount
/// points, the working directory and the program. The parent only waits for the init by then,
/// while a new overlay's first lookup of each name goes through every layer and builds an
/// overlay inode; the init then finds them in the dentry cache (~30 µs less before the exec).
/// Lookups only: O_PATH, resolved inside the overlay, nothing opened, read or written.
pub fn warm(tree: &Root, spec: &oci_spec::runtime::Spec) {
    let look = |path: &Path| tree.resolve(path).is_ok();
    for m in spec.mounts().iter().flatten() {
        look(m.destination());
    }
    let Some(process) = spec.process() else { return };
    look(process.cwd());
    if let Some(arg0) = process.args().as_ref().and_then(|a| a.first()) {
        let env = process.env().as_deref().unwrap_or_default();
        crate::exec_path::candidates(arg0, env).iter().find(|p| look(p));
    }
}

/// Attaches the overlay the parent made (`Layers::mount_detached`) on `rootfs`, inside the
/// container's mount namespace.
pub fn attach(tree: &OwnedFd, rootfs: &Path) -> Result<()> {
    let target = Root::open(rootfs)?;
    sys::move_mount_to(tree, target.fd()).ctx("attach overlay rootfs on", rootfs.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_only_where_syncs_cost_something() {
        // /dev/shm is a tmpfs on every Linux distribution berth targets.
        let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
        let layers = Layers::new(vec![PathBuf::from("/lower")], tmp.path(), None);
        layers.make_dirs().unwrap();
        assert!(!layers.options().unwrap().contains("volatile"), "{}", layers.options().unwrap());
        let bad = Layers::new(vec![PathBuf::from("/a:b")], tmp.path(), None);
        assert!(bad.options().is_err() && bad.mount_detached().is_err());
    }
}
