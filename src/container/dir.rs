//! The container's directory under the runtime root: claimed atomically by mkdir, and locked
//! with flock for every command that changes the container.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, AT_FDCWD};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use nix::NixPath;

use crate::error::{Error, Result};

pub struct ContainerDir {
    pub path: PathBuf,
    lock: Flock<File>,
}

/// Where container `id`'s state lives: `<root>/<id>`.
pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl ContainerDir {
    /// Claims `<root>/<id>`; an existing id is an error and is left untouched.
    pub fn claim(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::create_dir_all(root).map_err(|e| Error::io("create runtime root", root.display(), e))?;
        let path = state_dir(root, id);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(Error::ContainerExists(id.into())),
            Err(e) => return Err(Error::io("create state directory", path.display(), e)),
        }
        let file = File::open(&path).map_err(|e| Error::io("open state directory", path.display(), e))?;
        let lock = lock(file, &path)?;
        Ok(ContainerDir { path, lock })
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = state_dir(root, id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::ContainerNotFound(id.into())),
            Err(e) => return Err(Error::io("open state directory", path.display(), e)),
        };
        let lock = lock(file, &path)?;
        // A concurrent delete may have removed it while we waited for the lock.
        if !path.join(super::state::STATE_FILE).exists() {
            return Err(Error::ContainerNotFound(id.into()));
        }
        Ok(ContainerDir { path, lock })
    }

    pub fn remove(self) -> Result<()> {
        let result = remove_tree(AT_FDCWD, self.path.as_path());
        drop(self.lock);
        match result {
            Err(e) if e != Errno::ENOENT => Err(Error::sys("remove state directory", self.path.display(), e)),
            _ => Ok(()),
        }
    }
}

/// Removes the directory `name` under `parent` with all it holds. Tries rmdir before reading a
/// directory: most of what a container leaves is empty (overlayfs's work/work, an upper layer
/// nothing wrote to), and an rmdir is one syscall where reading a directory costs five. Entries
/// are reached through their parent's fd and never followed: the container layer holds
/// whatever the container wrote, symlinks included.
fn remove_tree<P: ?Sized + NixPath>(parent: impl AsFd, name: &P) -> nix::Result<()> {
    match unlinkat(&parent, name, UnlinkatFlags::RemoveDir) {
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
        done => return done,
    }
    let mut dir = Dir::openat(&parent, name, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    let entries: Vec<(CString, Option<Type>)> = dir
        .iter()
        .filter_map(std::result::Result::ok)
        .filter(|e| ![&b"."[..], b".."].contains(&e.file_name().to_bytes()))
        .map(|e| (e.file_name().to_owned(), e.file_type()))
        .collect();
    for (entry, kind) in &entries {
        let file = match kind {
            Some(Type::Directory) => Err(Errno::EISDIR),
            _ => unlinkat(&dir, entry.as_c_str(), UnlinkatFlags::NoRemoveDir),
        };
        match file {
            Err(Errno::EISDIR) => remove_tree(&dir, entry.as_c_str())?,
            Err(Errno::ENOENT) | Ok(()) => {}
            Err(e) => return Err(e),
        }
    }
    drop(dir);
    unlinkat(&parent, name, UnlinkatFlags::RemoveDir)
}

fn lock(file: File, path: &Path) -> Result<Flock<File>> {
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| Error::sys("lock", path.display(), errno))
}

/// Ids become directory names: nothing that could climb out of the root or hide.
pub fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id == "." || id == ".." {
        "it is a relative path"
    } else if id.contains('/') {
        "it contains '/'"
    } else if id.len() > 1024 {
        "it is longer than 1024 bytes"
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c)) {
        "only letters, digits and _ + - . are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId(id.into(), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remove_takes_everything_and_follows_no_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        let dir = ContainerDir::claim(tmp.path(), "c2").unwrap();
        let upper = dir.path.join("upper");
        fs::create_dir_all(upper.join("a/b/c")).unwrap();
        fs::create_dir_all(dir.path.join("work/work")).unwrap();
        fs::write(upper.join("a/b/file"), "data").unwrap();
        std::os::unix::fs::symlink(&outside, upper.join("a/link")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path.join("work/link")).unwrap();
        fs::write(dir.path.join("state.json"), "{}").unwrap();
        let path = dir.path.clone();
        dir.remove().unwrap();
        assert!(!path.exists());
        assert!(outside.join("keep").exists(), "removal followed a symlink");
    }

    #[test]
    fn claim_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::claim(tmp.path(), "c1").unwrap();
        assert!(matches!(ContainerDir::claim(tmp.path(), "c1"), Err(Error::ContainerExists(_))));
        dir.remove().unwrap();
        assert!(matches!(ContainerDir::open(tmp.path(), "c1"), Err(Error::ContainerNotFound(_))));
    }
}
