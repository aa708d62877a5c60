//! Paths inside the container's root, resolved by the kernel with RESOLVE_IN_ROOT so that no
//! symlink or ".." in the rootfs can lead outside it (CVE-2021-30465 raced a symlink into a
//! mount destination). Mounts then go through /proc/self/fd/N of the resolved fd, never
//! through a path that could be swapped between the check and the use.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Error, Result, SysContext};

pub struct Root {
    fd: OwnedFd,
    pub path: PathBuf,
}

/// The path the kernel follows to the object behind `fd`.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Root {
    /// A root given as an fd, such as a detached mount; `path` names it in errors.
    pub fn adopt(fd: OwnedFd, path: PathBuf) -> Root {
        Root { fd, path }
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx("open rootfs", path.display())?;
        Ok(Root { fd, path: path.to_path_buf() })
    }

    /// Opens `rel` (absolute or not, it is taken inside the root) as an O_PATH fd.
    pub fn resolve(&self, rel: &Path) -> nix::Result<OwnedFd> {
        self.resolve_with(rel, OFlag::O_PATH)
    }

    pub fn resolve_with(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.fd.as_fd(), &relative(rel), how)
    }

    /// What `rel` itself is, its last component not followed: None when it does not exist.
    pub fn lstat(&self, rel: &Path) -> Result<Option<nix::sys::stat::FileStat>> {
        let rel = relative(rel);
        let Some(name) = rel.file_name() else { return Ok(None) };
        let parent = match self.resolve(rel.parent().unwrap_or(Path::new(""))) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::sys("open", self.display(rel.parent().unwrap_or(Path::new(""))), e)),
        };
        match nix::sys::stat::fstatat(&parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::sys("stat", self.display(&rel), e)),
        }
    }

    /// Creates every missing directory of `rel` inside the root and returns the last one.
    pub fn mkdir_all(&self, rel: &Path) -> Result<OwnedFd> {
        self.mkdir_all_following(rel, 0)
    }

    /// A component that is a dangling symlink gets its target created, inside the root, as
    /// the kernel would follow it there; `depth` bounds symlink chains as SYMLOOP_MAX does.
    fn mkdir_all_following(&self, rel: &Path, depth: u32) -> Result<OwnedFd> {
        const MAX_LINKS: u32 = 40;
        let rel = relative(rel);
        let mut done = PathBuf::new();
        let mut parent = self.resolve(Path::new(".")).ctx("open", self.path.display())?;
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let here = done.clone();
            done.push(name);
            let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
            let dir = match self.resolve_with(&done, dir_flags) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Error::sys("mkdir", self.display(&done), e)),
                    }
                    match self.resolve_with(&done, dir_flags) {
                        Err(Errno::ENOENT) if depth < MAX_LINKS => {
                            let target = readlinkat(parent.as_fd(), name).ctx("readlink", self.display(&done))?;
                            self.mkdir_all_following(&here.join(target), depth + 1)?;
                            self.resolve_with(&done, dir_flags).ctx("open", self.display(&done))?
                        }
                        other => other.ctx("open", self.display(&done))?,
                    }
                }
                Err(e) => return Err(Error::sys("open directory", self.display(&done), e)),
            };
            parent = dir;
        }
        Ok(parent)
    }

    /// Creates `rel` as an empty file if it does not exist (a bind-mount target for a file).
    pub fn create_file(&self, rel: &Path) -> Result<OwnedFd> {
        let rel = relative(rel);
        let name = rel.file_name().ok_or_else(|| Error::PathEscape { path: rel.display().to_string() })?;
        let parent = self.mkdir_all(rel.parent().unwrap_or(Path::new("")))?;
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        match openat(parent.as_fd(), name, flags, Mode::from_bits_truncate(0o644)) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys("create", self.display(&rel), e)),
        }
        self.resolve(&rel).ctx("open", self.display(&rel))
    }

    /// For messages: the path as the container will see it.
    pub fn display(&self, rel: &Path) -> String {
        Path::new("/").join(relative(rel)).display().to_string()
    }
}

/// "/a/b" -> "a/b"; "" -> ".".
fn relative(p: &Path) -> PathBuf {
    let rel: PathBuf = p.components().filter(|c| !matches!(c, Component::RootDir)).collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        symlink("/etc", root_dir.join("evil")).unwrap();
        symlink("../../../../tmp", root_dir.join("up")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        // /evil -> /etc is taken as <root>/etc: created there, not on the host.
        root.mkdir_all(Path::new("/evil/sub")).unwrap();
        assert!(root_dir.join("etc/sub").is_dir());
        root.create_file(Path::new("/up/file")).unwrap();
        // A dangling symlink as a destination: its target is created inside the root.
        symlink("/outside/deep", root_dir.join("dangling")).unwrap();
        root.mkdir_all(Path::new("/dangling/mnt")).unwrap();
        assert!(root_dir.join("outside/deep/mnt").is_dir());
        assert!(root_dir.join("tmp/file").is_file());
        let fd = root.resolve(Path::new("/../../evil")).unwrap();
        let target = std::fs::read_link(fd_path(&fd)).unwrap();
        assert_eq!(target, root_dir.canonicalize().unwrap().join("etc"));
    }
}
