//! Unpacking one layer's tar stream into a directory, safely against hostile archives. Every
//! file is created relative to an fd of its parent directory, opened beneath the layer root
//! with no symlink followed (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so no entry can
//! write outside the layer, whatever the entries before it created. Refused outright: absolute
//! paths and `..`, symlinks whose relative target climbs out of the layer, hard links to
//! anything but an earlier entry, device nodes without root, and entries claiming more bytes
//! than the filesystem has free. The caller unpacks into a scratch directory and removes it on
//! any error, so a refused layer leaves nothing behind.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use crate::error::{Error, Result};

mod whiteout;

pub use whiteout::Whiteouts;
use whiteout::{OPAQUE, WHITEOUT};

#[derive(Default, Debug)]
pub struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
}

/// One entry being written: where (its parent's fd and its name), and its metadata.
struct Target<'a> {
    dir: OwnedFd,
    path: &'a Path,
    name: &'a OsStr,
    owner: (u32, u32),
    mode: Mode,
    mtime: TimeSpec,
}

pub fn unpack(stream: impl Read, root: &Path, whiteouts: Whiteouts, layer: &str) -> Result<Unpacked> {
    let root_fd = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("open layer directory", root.display(), e))?;
    let stats = nix::sys::statvfs::fstatvfs(&root_fd).map_err(|e| Error::sys("statvfs", root.display(), e))?;
    let mut unpacker = Unpacker {
        root: root_fd,
        whiteouts,
        layer,
        privileged: nix::unistd::geteuid().is_root(),
        free: stats.blocks_available() as u64 * stats.fragment_size() as u64,
        written: HashSet::new(),
        done: Unpacked::default(),
    };
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|e| unpacker.broken(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| unpacker.broken(e))?;
        unpacker.entry(&mut entry)?;
    }
    Ok(unpacker.done)
}

struct Unpacker<'a> {
    root: OwnedFd,
    whiteouts: Whiteouts,
    layer: &'a str,
    privileged: bool,
    free: u64,
    /// Paths this layer wrote (an opaque directory keeps them).
    written: HashSet<PathBuf>,
    done: Unpacked,
}

impl Unpacker<'_> {
    fn refuse(&self, path: &Path, reason: impl std::fmt::Display) -> Error {
        Error::Layer {
            layer: self.layer.to_string(),
            reason: format!("entry {:?}: {reason}", path.display().to_string()),
        }
    }

    fn broken(&self, e: io::Error) -> Error {
        Error::Layer { layer: self.layer.to_string(), reason: format!("not a readable tar stream: {e}") }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let path = clean(&raw).map_err(|reason| self.refuse(Path::new(OsStr::from_bytes(&raw)), reason))?;
        let Some((parent, name)) = split(&path) else {
            return Ok(()); // "./": the layer root itself
        };
        self.done.entries += 1;
        let name_text = name.to_string_lossy();
        if name_text == OPAQUE {
            return self.opaque(&parent);
        }
        if let Some(hidden) = name_text.strip_prefix(WHITEOUT) {
            return self.whiteout(&parent, OsStr::new(hidden));
        }
        let dir = self.open_dir(&parent, true)?;
        let kind = entry.header().entry_type();
        self.clear_way(&dir, &path, name, kind == EntryType::Directory)?;
        // Ancestors too: an opaque marker on one of them must keep this entry.
        self.written.extend(path.ancestors().map(Path::to_path_buf));
        let header = entry.header();
        let target = Target {
            dir,
            path: &path,
            name,
            owner: (header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32),
            mode: Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777),
            mtime: TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0),
        };
        match kind {
            EntryType::Directory => self.directory(&target, entry),
            EntryType::Regular | EntryType::Continuous => self.file(&target, entry),
            EntryType::Symlink => self.symlink(&target, entry),
            EntryType::Link => self.hard_link(&target, entry),
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.node(&target, kind, entry.header()),
            other => Err(self.refuse(&path, format!("unsupported entry type {other:?}"))),
        }
    }

    /// The directory `rel` beneath the layer root, never through a symlink; missing ones are
    /// made (tars need not list every parent).
    fn open_dir(&self, rel: &Path, create: bool) -> Result<OwnedFd> {
        let how = || {
            OpenHow::new().flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).resolve(
                ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            )
        };
        let target = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        match openat2(self.root.as_fd(), target, how()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) if create => {}
            Err(e) => return Err(self.dir_error(rel, e)),
        }
        let mut dir = openat2(self.root.as_fd(), ".", how()).map_err(|e| self.dir_error(rel, e))?;
        for comp in rel.components() {
            match mkdirat(&dir, comp.as_os_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.dir_error(rel, e)),
            }
            dir = openat2(&dir, comp.as_os_str(), how()).map_err(|e| self.dir_error(rel, e))?;
        }
        Ok(dir)
    }

    fn dir_error(&self, rel: &Path, e: Errno) -> Error {
        match e {
            Errno::ELOOP => self.refuse(rel, "its path goes through a symlink"),
            Errno::ENOTDIR => self.refuse(rel, "a parent is not a directory"),
            Errno::EXDEV => self.refuse(rel, "its path leaves the layer"),
            e => self.refuse(rel, format!("open directory: {e}")),
        }
    }

    /// An entry replaces what is there (a later entry of the same path wins, as tar does; in
    /// Apply mode also a lower layer's file), except that directories merge.
    fn clear_way(&mut self, dir: &OwnedFd, path: &Path, name: &OsStr, is_dir: bool) -> Result<()> {
        let existing = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(self.refuse(path, format!("stat: {e}"))),
        };
        let existing_dir = SFlag::from_bits_truncate(existing.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        if existing_dir && is_dir {
            return Ok(());
        }
        self.remove(dir, path, name, existing_dir)
    }

    fn remove(&self, dir: &OwnedFd, path: &Path, name: &OsStr, is_dir: bool) -> Result<()> {
        if is_dir {
            // std's remove_dir_all never follows a symlink below its start, and the start is
            // reached through our own directory fd.
            let through_fd = PathBuf::from(crate::rootfs::path::fd_path(dir)).join(name);
            std::fs::remove_dir_all(&through_fd).map_err(|e| self.refuse(path, format!("remove: {e}")))
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(|e| self.refuse(path, format!("remove: {e}")))
        }
    }

    fn directory<R: Read>(&self, t: &Target, entry: &mut tar::Entry<R>) -> Result<()> {
        match mkdirat(&t.dir, t.name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.refuse(t.path, format!("mkdir: {e}"))),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&t.dir, t.name, flags, Mode::empty()).map_err(|e| self.refuse(t.path, format!("open: {e}")))?;
        self.finish(&fd, t, false, entry)
    }

    fn file<R: Read>(&mut self, t: &Target, entry: &mut tar::Entry<R>) -> Result<()> {
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > self.free.saturating_sub(self.done.bytes) {
            return Err(self.refuse(t.path, format!("it claims {size} bytes, more than the {} bytes free", self.free)));
        }
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&t.dir, t.name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| self.refuse(t.path, format!("create: {e}")))?;
        let mut file = File::from(fd);
        let copied =
            io::copy(&mut entry.take(size), &mut file).map_err(|e| self.refuse(t.path, format!("write: {e}")))?;
        if copied != size {
            return Err(self.refuse(t.path, format!("the stream ends after {copied} of its {size} bytes")));
        }
        self.done.bytes += size;
        self.finish(&OwnedFd::from(file), t, true, entry)
    }

    /// Owner before mode (chown clears set-id bits), then xattrs and (for files) the mtime.
    fn finish<R: Read>(&self, fd: &OwnedFd, t: &Target, mtime: bool, entry: &mut tar::Entry<R>) -> Result<()> {
        if self.privileged {
            fchown(fd, Some(Uid::from_raw(t.owner.0)), Some(Gid::from_raw(t.owner.1)))
                .map_err(|e| self.refuse(t.path, format!("chown: {e}")))?;
        }
        fchmod(fd, t.mode).map_err(|e| self.refuse(t.path, format!("chmod: {e}")))?;
        self.xattrs(fd, t.path, entry)?;
        if mtime {
            futimens(fd, &t.mtime, &t.mtime).map_err(|e| self.refuse(t.path, format!("set mtime: {e}")))?;
        }
        Ok(())
    }

    /// chown of what `t` names, not of what it points to (symlinks, device nodes).
    fn chown_entry(&self, t: &Target) -> Result<()> {
        if !self.privileged {
            return Ok(());
        }
        let (uid, gid) = (Uid::from_raw(t.owner.0), Gid::from_raw(t.owner.1));
        fchownat(&t.dir, t.name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.refuse(t.path, format!("chown: {e}")))
    }

    /// PAX `SCHILY.xattr.*` records: file capabilities and user attributes. overlayfs's own
    /// trusted.overlay.* are berth's to write (a layer could forge whiteouts and redirects with
    /// them), so every other namespace is skipped.
    fn xattrs<R: Read>(&self, fd: &OwnedFd, path: &Path, entry: &mut tar::Entry<R>) -> Result<()> {
        let Ok(Some(extensions)) = entry.pax_extensions() else { return Ok(()) };
        for ext in extensions.flatten() {
            let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else { continue };
            if !(name == b"security.capability" || name.starts_with(b"user.")) {
                continue;
            }
            let Ok(cname) = CString::new(name) else { continue };
            crate::sys::fsetxattr(fd, &cname, ext.value_bytes())
                .map_err(|e| self.refuse(path, format!("set xattr {cname:?}: {e}")))?;
        }
        Ok(())
    }

    fn symlink<R: Read>(&self, t: &Target, entry: &mut tar::Entry<R>) -> Result<()> {
        let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
        let link = Path::new(OsStr::from_bytes(&link));
        if climbs_out(t.path, link) {
            return Err(self.refuse(t.path, format!("symlink to {link:?} points outside the layer")));
        }
        symlinkat(link, &t.dir, t.name).map_err(|e| self.refuse(t.path, format!("symlink: {e}")))?;
        self.chown_entry(t)?;
        utimensat(&t.dir, t.name, &t.mtime, &t.mtime, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| self.refuse(t.path, format!("set mtime: {e}")))
    }

    fn hard_link<R: Read>(&self, t: &Target, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
        let linked = clean(&raw).map_err(|reason| self.refuse(t.path, format!("hard link target: {reason}")))?;
        let Some((linked_dir, linked_name)) = split(&linked) else {
            return Err(self.refuse(t.path, "hard link to the layer root"));
        };
        let from = self.open_dir(&linked_dir, false)?;
        linkat(&from, linked_name, &t.dir, t.name, AtFlags::empty())
            .map_err(|e| self.refuse(t.path, format!("hard link to {linked:?}: {e}")))
    }

    fn node(&self, t: &Target, kind: EntryType, header: &tar::Header) -> Result<()> {
        let sflag = match kind {
            EntryType::Char => SFlag::S_IFCHR,
            EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        if sflag != SFlag::S_IFIFO && !self.privileged {
            return Err(self.refuse(t.path, "device nodes can only be unpacked by root"));
        }
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        mknodat(&t.dir, t.name, sflag, t.mode, nix::sys::stat::makedev(major.into(), minor.into()))
            .map_err(|e| self.refuse(t.path, format!("mknod: {e}")))?;
        self.chown_entry(t)?;
        fchmodat(&t.dir, t.name, t.mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| self.refuse(t.path, format!("chmod: {e}")))
    }
}

/// A tar path made relative: "./a/b" and "a//b/" are "a/b"; absolute paths and ".." refused.
fn clean(raw: &[u8]) -> std::result::Result<PathBuf, &'static str> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("path contains \"..\""),
        }
    }
    Ok(out)
}

fn split(path: &Path) -> Option<(PathBuf, &OsStr)> {
    let name = path.file_name()?;
    Some((path.parent().map(Path::to_path_buf).unwrap_or_default(), name))
}

/// Whether a relative symlink target, followed from the link's own directory, climbs above
/// the layer root. Absolute targets are resolved in the container's root, where they land
/// inside it.
fn climbs_out(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = link.components().count() as i64 - 1;
    for comp in target.components() {
        match comp {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean(b"./a//b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean(b"./").unwrap(), PathBuf::new());
        assert!(clean(b"/etc/passwd").is_err());
        assert!(clean(b"a/../../b").is_err());
    }

    #[test]
    fn symlinks_that_climb_out_are_caught() {
        assert!(!climbs_out(Path::new("bin/sh"), Path::new("busybox")));
        assert!(!climbs_out(Path::new("usr/bin/x"), Path::new("../../bin/busybox")));
        assert!(climbs_out(Path::new("usr/bin/x"), Path::new("../../../etc/shadow")));
        assert!(climbs_out(Path::new("x"), Path::new("a/../../y")));
        assert!(!climbs_out(Path::new("etc/localtime"), Path::new("/usr/share/zoneinfo/UTC")));
    }
}
