//! Where a layer's deletions are translated (image-spec layer.md): `.wh.NAME` deletes NAME from
//! the layers below, `.wh..wh..opq` makes its directory opaque. For the layer cache they become
//! what overlayfs reads in a lower layer; for a flat rootfs they are applied at once.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mknodat, Mode, SFlag};

use super::Unpacker;
use crate::error::Result;

/// The marker of a deleted entry: `.wh.NAME` deletes NAME.
pub(super) const WHITEOUT: &str = ".wh.";
/// The marker of an opaque directory: nothing of the layers below shows through it.
pub(super) const OPAQUE: &str = ".wh..wh..opq";

/// How a layer's deletions are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// As overlayfs reads them in a lower layer: `.wh.NAME` becomes a 0/0 character device
    /// NAME, `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory.
    Overlay,
    /// Applied to the layers below, for a flat rootfs: NAME is removed, an opaque directory
    /// loses everything this layer did not put in it.
    Apply,
}

impl Unpacker<'_> {
    pub(super) fn whiteout(&mut self, parent: &Path, hidden: &OsStr) -> Result<()> {
        let path = parent.join(hidden);
        if hidden.is_empty() || hidden == ".." || hidden == "." {
            return Err(self.refuse(&path, "whiteout of nothing"));
        }
        let dir = self.open_dir(parent, true)?;
        match self.whiteouts {
            Whiteouts::Overlay => {
                if !self.privileged {
                    return Err(self.refuse(&path, "overlay whiteouts (0/0 character devices) need root"));
                }
                self.clear_way(&dir, &path, hidden, false)?;
                mknodat(&dir, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| self.refuse(&path, format!("whiteout: {e}")))
            }
            Whiteouts::Apply => self.clear_way(&dir, &path, hidden, false),
        }
    }

    pub(super) fn opaque(&mut self, parent: &Path) -> Result<()> {
        let dir = self.open_dir(parent, true)?;
        match self.whiteouts {
            Whiteouts::Overlay => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                let fd =
                    openat(&dir, ".", flags, Mode::empty()).map_err(|e| self.refuse(parent, format!("open: {e}")))?;
                crate::sys::fsetxattr(&fd, c"trusted.overlay.opaque", b"y")
                    .map_err(|e| self.refuse(parent, format!("mark opaque: {e}")))
            }
            Whiteouts::Apply => {
                let listing = PathBuf::from(crate::rootfs::path::fd_path(&dir));
                let children = std::fs::read_dir(&listing).map_err(|e| self.refuse(parent, format!("list: {e}")))?;
                for child in children.flatten() {
                    let name = child.file_name();
                    let path = parent.join(&name);
                    if !self.written.contains(&path) {
                        let is_dir = child.file_type().is_ok_and(|t| t.is_dir());
                        self.remove(&dir, &path, &name, is_dir)?;
                    }
                }
                Ok(())
            }
        }
    }
}
