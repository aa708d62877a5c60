//! The container's directory under the runtime root: claimed atomically by mkdir, and locked
//! with flock for every command that changes the container.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

pub struct ContainerDir {
    pub path: PathBuf,
    lock: Flock<File>,
}

impl ContainerDir {
    /// Claims `<root>/<id>`; an existing id is an error and is left untouched.
    pub fn claim(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::create_dir_all(root).map_err(|e| Error::io("create runtime root", root.display(), e))?;
        let path = root.join(id);
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
        let path = root.join(id);
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
        let result = fs::remove_dir_all(&self.path);
        drop(self.lock);
        match result {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(Error::io("remove state directory", self.path.display(), e))
            }
            _ => Ok(()),
        }
    }
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
    fn claim_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::claim(tmp.path(), "c1").unwrap();
        assert!(matches!(ContainerDir::claim(tmp.path(), "c1"), Err(Error::ContainerExists(_))));
        dir.remove().unwrap();
        assert!(matches!(ContainerDir::open(tmp.path(), "c1"), Err(Error::ContainerNotFound(_))));
    }
}
