//! The container's cgroup, on whatever layout the host has: pure v1, pure v2, or hybrid (v1
//! controllers plus a cgroup2 mount, where a controller such as hugetlb may sit on the cgroup2
//! side). Each mounted hierarchy gets the container's directory; the init joins them itself.

mod freezer;
mod hierarchy;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use freezer::{freeze, is_frozen, thaw};
pub use hierarchy::{hierarchies, Hierarchy};

use crate::error::{Error, Result};

/// Where `linux.cgroupsPath` leads in each hierarchy: an absolute path is taken from the
/// hierarchy's root, a relative one from berth's own cgroup there (as runc reads it), and no
/// path at all means `/berth/<id>`.
pub fn container_paths(hierarchies: &[Hierarchy], cgroups_path: Option<&Path>, id: &str) -> Result<Vec<PathBuf>> {
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
    Ok(hierarchies.iter().map(|h| h.path_for(wanted)).collect())
}

/// Creates the container's directory in every hierarchy.
pub fn create(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        fs::create_dir_all(path).map_err(|source| Error::Cgroup { op: "create", path: path.clone(), source })?;
        if is_cpuset_v1(path) {
            inherit_cpuset(path)?;
        }
    }
    Ok(())
}

/// Moves the calling process into every path. Writing "0" lets the process move itself, which
/// spares the parent the RCU grace period a cross-process migration waits for on v1.
pub fn join_self(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        let procs = path.join("cgroup.procs");
        fs::write(&procs, b"0").map_err(|source| Error::Cgroup { op: "join", path: path.clone(), source })?;
    }
    Ok(())
}

/// Every pid in the container's cgroup (read from the first hierarchy that answers).
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    for path in paths {
        if let Ok(text) = fs::read_to_string(path.join("cgroup.procs")) {
            return text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

/// Removes the container's directories. The kernel refuses while a task (even a dying one) is
/// still inside, so EBUSY is retried for a while before giving up.
pub fn destroy(paths: &[PathBuf]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for path in paths {
        loop {
            match fs::remove_dir(path) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => return Err(Error::Cgroup { op: "remove", path: path.clone(), source }),
            }
        }
    }
    Ok(())
}

fn is_cpuset_v1(path: &Path) -> bool {
    path.join("cpuset.cpus").exists() && !path.join("cgroup.controllers").exists()
}

/// A new v1 cpuset starts with empty cpus and mems, and no task can join it until they are
/// filled: copy them down from the nearest ancestor that has them.
fn inherit_cpuset(path: &Path) -> Result<()> {
    let mut chain = vec![path.to_path_buf()];
    let mut cur = path.parent();
    while let Some(dir) = cur {
        if !dir.join("cpuset.cpus").exists() {
            break;
        }
        chain.push(dir.to_path_buf());
        cur = dir.parent();
    }
    for pair in chain.windows(2).rev() {
        let (child, parent) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_to_string(child.join(file)).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = fs::read_to_string(parent.join(file)).map_err(|source| Error::Cgroup {
                    op: "read cpuset",
                    path: parent.clone(),
                    source,
                })?;
                fs::write(child.join(file), theirs.trim()).map_err(|source| Error::Cgroup {
                    op: "write cpuset",
                    path: child.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hier(mount: &str, own: &str) -> Hierarchy {
        Hierarchy { mountpoint: mount.into(), controllers: vec!["memory".into()], unified: false, own_path: own.into() }
    }

    #[test]
    fn paths_follow_runc_rules() {
        let h = [hier("/sys/fs/cgroup/memory", "/process_api/x")];
        let p = container_paths(&h, None, "c1").unwrap();
        assert_eq!(p, [PathBuf::from("/sys/fs/cgroup/memory/berth/c1")]);
        let p = container_paths(&h, Some(Path::new("/a/b")), "c1").unwrap();
        assert_eq!(p, [PathBuf::from("/sys/fs/cgroup/memory/a/b")]);
        let p = container_paths(&h, Some(Path::new("rel")), "c1").unwrap();
        assert_eq!(p, [PathBuf::from("/sys/fs/cgroup/memory/process_api/x/rel")]);
        assert!(container_paths(&h, Some(Path::new("/a/../b")), "c1").is_err());
        assert!(container_paths(&h, Some(Path::new("system.slice:berth:c1")), "c1").is_err());
    }

    #[test]
    fn cpuset_is_copied_down() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.join("cpuset.mems"), "0\n").unwrap();
        let leaf = root.join("a/b");
        fs::create_dir_all(&leaf).unwrap();
        for d in [root.join("a"), leaf.clone()] {
            fs::write(d.join("cpuset.cpus"), "").unwrap();
            fs::write(d.join("cpuset.mems"), "").unwrap();
        }
        inherit_cpuset(&leaf).unwrap();
        assert_eq!(fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(), "0-1");
        assert_eq!(fs::read_to_string(root.join("a/cpuset.mems")).unwrap(), "0");
    }
}
