//! The container's directory under the runtime root: claimed atomically by mkdir, and locked
//! for every command that changes the container.
//!
//! The lock is a POSIX record lock (fcntl F_SETLK) on `<dir>/lock`, not flock on the
//! directory: a flock belongs to the open file, which the container init shares from the
//! moment it is cloned (it is a clone of berth and never execs berth, so close-on-exec does
//! not help), and an init that is frozen, or orphaned before it closed its inherited fds,
//! would hold the lock for ever. A record lock belongs to the process that took it: no child
//! holds it, and it goes away the instant its holder dies, however it dies. Waits for it are
//! bounded, and a timeout names the process that holds it.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, AT_FDCWD};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use nix::NixPath;

use crate::error::{Error, Result};

/// The file the container's lock is taken on.
pub const LOCK_FILE: &str = "lock";

/// How long a command waits for another to release a container: longer than any operation
/// that holds it takes (start waits for the startContainer hooks), short enough that an
/// engine hears of a stuck holder.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A state directory with no lock file is one whose `create` is between its mkdir and its
/// next syscall, or died there: after this long without one, nobody is coming.
const LOCK_FILE_GRACE: Duration = Duration::from_secs(1);

pub struct ContainerDir {
    pub path: PathBuf,
    /// Holds the lock while open; None for a directory whose creator died before making it.
    lock: Option<File>,
}

/// A new container id: 12 random hex digits, as docker's short ids.
pub fn generated_id() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(crate::image::hex(&bytes))
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
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| Error::io("create lock", lock_path.display(), e))?;
        lock(&file, &lock_path, id, LOCK_TIMEOUT)?;
        Ok(ContainerDir { path, lock: Some(file) })
    }

    /// Opens and locks an existing container's directory, which must hold a state.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        let dir = Self::open_any(root, id)?;
        // A create that died before it recorded anything, or one still at its first steps.
        if !dir.path.join(super::state::STATE_FILE).exists() {
            return Err(Error::ContainerNotFound(id.into()));
        }
        Ok(dir)
    }

    /// Opens and locks `<root>/<id>` whatever it holds: `delete` takes apart what a `create`
    /// that died left, down to a directory with nothing in it.
    pub fn open_any(root: &Path, id: &str) -> Result<ContainerDir> {
        Self::open_any_within(root, id, LOCK_TIMEOUT)
    }

    /// `open_any`, waiting at most `timeout` for the lock (zero: only trying once).
    pub fn open_any_within(root: &Path, id: &str, timeout: Duration) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = state_dir(root, id);
        let lock_path = path.join(LOCK_FILE);
        let since = Instant::now();
        let file = loop {
            let open = |create| {
                OpenOptions::new().read(true).write(true).create(create).custom_flags(libc::O_CLOEXEC).open(&lock_path)
            };
            // A container an older berth made (it locked the directory) has a state and no
            // lock file: it gets one. A create makes its lock file before any state.
            match open(false).or_else(|e| match e.kind() {
                ErrorKind::NotFound if path.join(super::state::STATE_FILE).exists() => open(true),
                _ => Err(e),
            }) {
                Ok(f) => break Some(f),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("open lock", lock_path.display(), e)),
            }
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::ContainerNotFound(id.into())),
                Err(e) => return Err(Error::io("open state directory", path.display(), e)),
                Ok(m) if !m.is_dir() => return Err(Error::ContainerNotFound(id.into())),
                Ok(_) if since.elapsed() >= LOCK_FILE_GRACE => break None,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        if let Some(file) = &file {
            lock(file, &lock_path, id, timeout)?;
            // A delete that held the lock before us has removed the directory.
            if file.metadata().is_ok_and(|m| m.nlink() == 0) {
                return Err(Error::ContainerNotFound(id.into()));
            }
        }
        Ok(ContainerDir { path, lock: file })
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

/// The whole file, for writing: exclusive.
fn whole_file() -> libc::flock {
    libc::flock { l_type: libc::F_WRLCK as i16, l_whence: libc::SEEK_SET as i16, l_start: 0, l_len: 0, l_pid: 0 }
}

/// Takes the container's lock, waiting at most LOCK_TIMEOUT: polled, with a growing pause,
/// as F_SETLKW has no timeout (and an alarm would disturb whatever else waits).
fn lock(file: &File, path: &Path, id: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match fcntl(file, FcntlArg::F_SETLK(&whole_file())) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("lock", path.display(), e)),
        }
        if Instant::now() >= deadline {
            let by = holder(file).map(|h| format!(" by {h}")).unwrap_or_default();
            if timeout.is_zero() {
                return Err(Error::Busy(format!(
                    "container {id:?} is being created{by}; try again when that has finished"
                )));
            }
            return Err(Error::Busy(format!(
                "container {id:?} is locked{by}: gave up waiting for its lock {} after {}s",
                path.display(),
                timeout.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Who holds the lock: "process PID (COMMAND LINE)".
fn holder(file: &File) -> Option<String> {
    let mut query = whole_file();
    fcntl(file, FcntlArg::F_GETLK(&mut query)).ok()?;
    if query.l_type == libc::F_UNLCK as i16 {
        return None;
    }
    Some(format!("process {} ({})", query.l_pid, crate::procfs::cmdline(query.l_pid)))
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

    #[test]
    fn a_lock_held_elsewhere_is_refused_in_time_naming_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::claim(tmp.path(), "c3").unwrap();
        fs::write(dir.path.join(super::super::state::STATE_FILE), "{}").unwrap();
        // Record locks are per process: the contender must be another one.
        match crate::sys::clone_fork(nix::sched::CloneFlags::empty()).unwrap() {
            None => {
                let started = Instant::now();
                let ok = match ContainerDir::open_any_within(tmp.path(), "c3", Duration::from_millis(300)) {
                    Err(Error::Busy(msg)) => msg.contains(&format!("process {}", nix::unistd::getppid())),
                    _ => false,
                };
                let bounded = started.elapsed() < Duration::from_secs(3);
                crate::sys::exit_now(if ok && bounded { 0 } else { 1 });
            }
            Some(child) => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        drop(dir);
    }

    #[test]
    fn a_directory_without_lock_file_is_taken_after_a_grace() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("c4")).unwrap();
        let dir = ContainerDir::open_any(tmp.path(), "c4").unwrap();
        assert!(dir.lock.is_none());
        dir.remove().unwrap();
        assert!(!tmp.path().join("c4").exists());
    }
}
