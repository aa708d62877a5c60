//! The container's cgroup, on whatever layout the host has: pure v1, pure v2, or hybrid (v1
//! controllers plus a cgroup2 mount, where a controller such as hugetlb may sit on the cgroup2
//! side). Each mounted hierarchy gets a directory for the container (a `CgroupDir`); the init
//! joins them itself. Resources go to whichever hierarchy holds their controller: v1.rs and
//! v2.rs each know one file layout, and `apply` picks between them per controller. A resource
//! whose controller the host does not have is an error, never silently dropped.

mod dbus;
pub mod ebpf;
mod freezer;
mod hierarchy;
mod resources;
pub mod stats;
pub mod systemd;
mod v1;
pub mod v2;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use freezer::{freeze, frozen_dir, is_frozen, thaw, thaw_all};
pub use hierarchy::{hierarchies, Hierarchy};
pub use resources::{apply, devices};

use crate::error::{Error, Result};

/// The container's directory in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    pub path: PathBuf,
    /// Where the hierarchy is mounted (its name inside the container's /sys/fs/cgroup).
    pub mountpoint: PathBuf,
    pub controllers: Vec<String>,
    pub unified: bool,
    /// Only directories berth made are removed by `delete`.
    #[serde(default)]
    pub created: bool,
}

impl CgroupDir {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Where `linux.cgroupsPath` leads in each hierarchy: an absolute path is taken from the
/// hierarchy's root, a relative one from berth's own cgroup there (as runc reads it), and no
/// path at all means `/berth/<id>`.
pub fn container_dirs(hierarchies: &[Hierarchy], cgroups_path: Option<&Path>, id: &str) -> Result<Vec<CgroupDir>> {
    let default = PathBuf::from("/berth").join(id);
    let wanted = cgroups_path.unwrap_or(&default);
    if wanted.to_str().is_some_and(|s| s.contains(':') && !s.starts_with('/')) {
        return Err(Error::Unsupported(format!(
            "cgroupsPath {wanted:?} is in systemd's slice:prefix:name form; the systemd cgroup driver is not implemented"
        )));
    }
    if wanted.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(Error::InvalidConfig(format!("cgroupsPath {wanted:?} must not contain \"..\"")));
    }
    Ok(hierarchies
        .iter()
        .map(|h| CgroupDir {
            path: h.path_for(wanted),
            mountpoint: h.mountpoint.clone(),
            controllers: h.controllers.clone(),
            unified: h.unified,
            created: false,
        })
        .collect())
}

/// The container's cgroup under the systemd driver: the unit's directory in the cgroup2
/// hierarchy, which systemd creates (so berth never removes it). v2 only: on a v1 or hybrid
/// host engines use the cgroupfs driver.
pub fn systemd_dirs(unit: &systemd::Unit) -> Result<Vec<CgroupDir>> {
    if !unified_only() {
        return Err(Error::Unsupported(
            "--systemd-cgroup: berth's systemd cgroup driver needs a pure cgroup v2 host (this one mounts v1 hierarchies); use the cgroupfs driver".into(),
        ));
    }
    let root = PathBuf::from("/sys/fs/cgroup");
    Ok(vec![CgroupDir {
        path: root.join(unit.cgroup.strip_prefix("/").unwrap_or(&unit.cgroup)),
        mountpoint: root,
        controllers: Vec::new(),
        unified: true,
        created: false,
    }])
}

/// On a pure cgroup v2 host, every controller is enabled down to the container (runc does the
/// same); elsewhere only what a resource asks for (`apply`). Under the systemd driver the
/// slices above the scope are systemd's: it enables the controllers it knows (cpu, cpuset, io,
/// memory, pids) for the delegated scope itself, and disables on a slice what no unit in it
/// asks for, so berth only adds those systemd does not know (hugetlb, rdma, misc). Writing
/// the others as well fought systemd's own writes, and each disable of a controller in use
/// below makes the kernel wait for the children's controller states to go offline.
pub fn enable_controllers(dirs: &[CgroupDir], systemd: bool) {
    if let [dir] = dirs {
        if dir.unified && unified_only() {
            let leave: &[&str] = if systemd { &["cpu", "cpuset", "io", "memory", "pids"] } else { &[] };
            v2::enable_all(dir, leave);
        }
    }
}

/// This process's cgroup2 directory (from /proc/self/cgroup).
pub fn own_unified_dir() -> Option<PathBuf> {
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = hierarchy::own_cgroup(&membership, true, &[])?;
    Some(Path::new("/sys/fs/cgroup").join(rel.trim().trim_start_matches('/')))
}

/// Moves this (single-threaded) process into `dir`.
pub fn move_self(dir: &Path) -> Result<()> {
    fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).map_err(|source| Error::Cgroup {
        op: "move berth back",
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates the container's directory in every hierarchy, remembering which ones it made.
pub fn create(dirs: &mut [CgroupDir]) -> Result<()> {
    for dir in dirs {
        let path = &dir.path;
        dir.created = !path.exists();
        fs::create_dir_all(path).map_err(|source| Error::Cgroup { op: "create", path: path.clone(), source })?;
        if dir.has("cpuset") {
            v1::inherit_cpuset(path)?;
        }
    }
    Ok(())
}

/// Moves the calling process into every directory, itself: on v1 by writing "0" to `tasks`.
/// Moving a whole thread group (cgroup.procs, or any move of another process) takes the
/// cgroup_threadgroup_rwsem for writing, which waits out an RCU grace period (10-30 ms on this
/// VM); moving only the calling thread does not, and the init has only the one thread.
/// cgroup2 has no such file for domain cgroups: `spawn` puts the init into those at clone
/// time (CLONE_INTO_CGROUP) where it can, and this writes cgroup.procs otherwise.
/// `born_in_unified`: the process was cloned into the cgroup2 directory already.
pub fn join_self(dirs: &[CgroupDir], born_in_unified: bool) -> Result<()> {
    for dir in dirs.iter().filter(|d| !(d.unified && born_in_unified)) {
        let file = if dir.unified { "cgroup.procs" } else { "tasks" };
        fs::write(dir.path.join(file), b"0").map_err(|source| Error::Cgroup {
            op: "join",
            path: dir.path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Whether /sys/fs/cgroup is one cgroup2 hierarchy (no v1 controllers beside it).
pub fn unified_only() -> bool {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
}

/// The container's cgroup2 directory, opened for CLONE_INTO_CGROUP.
pub fn unified_dir(dirs: &[CgroupDir]) -> Option<std::os::fd::OwnedFd> {
    let dir = dirs.iter().find(|d| d.unified)?;
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
    nix::fcntl::open(&dir.path, flags, nix::sys::stat::Mode::empty()).ok()
}

/// Marks which of the container's directories berth is about to make (those not there yet),
/// without making them: `create` records that first.
pub fn plan(dirs: &mut [CgroupDir]) {
    for dir in dirs {
        dir.created = !dir.path.exists();
    }
}

/// Every pid in any of the container's directories and their sub-cgroups: a process being
/// set up may be in one hierarchy and not yet in the others (born into cgroup2, before it
/// joins the v1 ones).
pub fn all_pids(dirs: &[CgroupDir]) -> Vec<i32> {
    let mut out = Vec::new();
    for dir in dirs {
        let _ = procs_below(&dir.path, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every pid in the container's cgroup and its sub-cgroups (exec --cgroup puts processes
/// there), read from the first hierarchy that answers.
pub fn pids(dirs: &[CgroupDir]) -> Vec<i32> {
    for dir in dirs {
        let mut found = Vec::new();
        if procs_below(&dir.path, &mut found).is_ok() {
            return found;
        }
    }
    Vec::new()
}

fn procs_below(dir: &Path, found: &mut Vec<i32>) -> std::io::Result<()> {
    let text = fs::read_to_string(dir.join("cgroup.procs"))?;
    found.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if !has_sub_cgroups(dir) {
        return Ok(());
    }
    for sub in sub_cgroups(dir) {
        // A sub-cgroup removed meanwhile has no processes left to report.
        let _ = procs_below(&sub, found);
    }
    Ok(())
}

/// A cgroup directory's link count is 2 plus its sub-directories (kernfs keeps it so): one
/// stat instead of reading the directory, on the path every delete takes.
fn has_sub_cgroups(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir).map_or(true, |m| m.nlink() != 2)
}

fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).into_iter().flatten().flatten();
    entries.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
}

/// Removes the directories berth created. The kernel refuses while a task (even a dying one)
/// is still inside, so EBUSY is retried for a while before giving up.
pub fn destroy(dirs: &[CgroupDir]) -> Result<()> {
    destroy_with(dirs, || {})
}

/// `destroy`, calling `busy` each time a directory is refused as still in use (to kill what
/// is left in it).
pub fn destroy_with(dirs: &[CgroupDir], mut busy: impl FnMut()) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in dirs.iter().filter(|d| d.created) {
        remove_tree(&dir.path, deadline, &mut busy)?;
    }
    Ok(())
}

/// A cgroup directory after its sub-cgroups (made for exec --cgroup), deepest first.
fn remove_tree(path: &Path, deadline: Instant, busy: &mut impl FnMut()) -> Result<()> {
    // An init that just exited leaves the cgroup populated for a moment: retry quickly first,
    // then back off.
    let mut pause = Duration::from_micros(100);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                // Sub-cgroups are looked for only when the directory is refused: rare, and
                // reading every directory first would cost each delete.
                let subs = if has_sub_cgroups(path) { sub_cgroups(path) } else { Vec::new() };
                if subs.is_empty() {
                    busy();
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                for sub in subs {
                    remove_tree(&sub, deadline, busy)?;
                }
            }
            Err(source) => return Err(Error::Cgroup { op: "remove", path: path.to_path_buf(), source }),
        }
    }
}

/// The cgroups an `exec --cgroup [controllers:]path` process joins, as runc: per hierarchy, the
/// last argument naming one of its controllers (or naming none) picks a sub-cgroup of the
/// container's, "/" being the container's own. Sub-cgroups are not made on demand: one that
/// does not exist is refused before anything runs.
pub fn sub_dirs(dirs: &[CgroupDir], args: &[String]) -> Result<Vec<CgroupDir>> {
    let mut picked: Vec<CgroupDir> = dirs.to_vec();
    for arg in args {
        let (controllers, path) = match arg.split_once(':') {
            Some((list, path)) => (list.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(), path),
            None => (Vec::new(), arg.as_str()),
        };
        if let Some(unknown) = controllers.iter().find(|c| !dirs.iter().any(|d| d.has(c))) {
            return Err(Error::InvalidArgument(format!("--cgroup {arg}: unknown controller {unknown:?}")));
        }
        let sub = Path::new(path.trim_start_matches('/'));
        if sub.components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)) {
            return Err(Error::InvalidArgument(format!("--cgroup {path}: {path} is not a sub cgroup path")));
        }
        for (dir, own) in picked.iter_mut().zip(dirs) {
            if controllers.is_empty() || controllers.iter().any(|c| own.has(c)) {
                dir.path = own.path.join(sub);
            }
        }
    }
    if let Some(missing) = picked.iter().find(|d| !d.path.is_dir()) {
        // In runc's words, which its tests look for.
        return Err(Error::InvalidArgument(format!(
            "--cgroup: adding pid to {}/cgroup.procs: no such file or directory (exec joins existing sub-cgroups only)",
            missing.path.display()
        )));
    }
    // Only the container's own directories are berth's to remove.
    picked.iter_mut().for_each(|d| d.created = false);
    Ok(picked)
}

/// Engines send 0 for "not set" (docker: `blockIO.weight: 0`, `cpu.shares: 0`), and runc skips
/// such values; writing them fails (blkio.weight's range starts at 10) or removes a default.
pub(crate) fn given<T: Copy + Default + PartialEq>(value: Option<T>) -> Option<T> {
    value.filter(|v| *v != T::default())
}

pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|source| Error::CgroupWrite { file: path, value: value.to_string(), source })
}

pub(crate) fn read_file(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hier(mount: &str, own: &str) -> Hierarchy {
        Hierarchy { mountpoint: mount.into(), controllers: vec!["memory".into()], unified: false, own_path: own.into() }
    }

    fn paths(dirs: &[CgroupDir]) -> Vec<PathBuf> {
        dirs.iter().map(|d| d.path.clone()).collect()
    }

    #[test]
    fn paths_follow_runc_rules() {
        let h = [hier("/sys/fs/cgroup/memory", "/process_api/x")];
        let p = container_dirs(&h, None, "c1").unwrap();
        assert_eq!(paths(&p), [PathBuf::from("/sys/fs/cgroup/memory/berth/c1")]);
        let p = container_dirs(&h, Some(Path::new("/a/b")), "c1").unwrap();
        assert_eq!(paths(&p), [PathBuf::from("/sys/fs/cgroup/memory/a/b")]);
        let p = container_dirs(&h, Some(Path::new("rel")), "c1").unwrap();
        assert_eq!(paths(&p), [PathBuf::from("/sys/fs/cgroup/memory/process_api/x/rel")]);
        assert!(container_dirs(&h, Some(Path::new("/a/../b")), "c1").is_err());
        assert!(container_dirs(&h, Some(Path::new("system.slice:berth:c1")), "c1").is_err());
    }

    #[test]
    fn only_created_directories_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("existing");
        fs::create_dir(&existing).unwrap();
        let dir = |p: &Path| CgroupDir {
            path: p.to_path_buf(),
            mountpoint: tmp.path().into(),
            controllers: vec![],
            unified: false,
            created: false,
        };
        let mut dirs = vec![dir(&existing), dir(&tmp.path().join("new"))];
        create(&mut dirs).unwrap();
        assert_eq!(dirs.iter().map(|d| d.created).collect::<Vec<_>>(), [false, true]);
        destroy(&dirs).unwrap();
        assert!(existing.exists());
        assert!(!tmp.path().join("new").exists());
    }
}
