//! Which cgroup hierarchies this host mounts, read from /proc/self/mountinfo and matched with
//! /proc/self/cgroup to learn where berth itself sits in each.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// Controllers bound to it (v1: from the mount options; v2: empty here).
    pub controllers: Vec<String>,
    pub unified: bool,
    /// berth's own cgroup in this hierarchy, relative to the mount.
    pub own_path: PathBuf,
}

impl Hierarchy {
    pub fn path_for(&self, cgroup: &Path) -> PathBuf {
        let rel = if cgroup.is_absolute() { cgroup.to_path_buf() } else { self.own_path.join(cgroup) };
        self.mountpoint.join(rel.strip_prefix("/").unwrap_or(&rel))
    }
}

pub fn hierarchies() -> Result<Vec<Hierarchy>> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let membership = fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::io("read", "/proc/self/cgroup", e))?;
    let subsystems = fs::read_to_string("/proc/cgroups").unwrap_or_default();
    Ok(parse(&mountinfo, &membership, &subsystems))
}

fn parse(mountinfo: &str, membership: &str, subsystems: &str) -> Vec<Hierarchy> {
    let known: Vec<&str> =
        subsystems.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_whitespace().next()).collect();
    let mut found: Vec<Hierarchy> = Vec::new();
    for m in crate::procfs::parse_mountinfo(mountinfo) {
        let (mount_root, options) = (m.root.as_str(), m.super_options.as_str());
        let (unified, controllers) = match m.fstype.as_str() {
            "cgroup2" => (true, Vec::new()),
            "cgroup" => {
                let ctrls: Vec<String> = options
                    .split(',')
                    .filter(|o| o.starts_with("name=") || known.contains(o))
                    .map(String::from)
                    .collect();
                if ctrls.is_empty() {
                    continue;
                }
                (false, ctrls)
            }
            _ => continue,
        };
        if found.iter().any(|h| h.unified == unified && h.controllers == controllers) {
            continue;
        }
        let own = own_cgroup(membership, unified, &controllers).unwrap_or_else(|| "/".into());
        let own_path = Path::new(&own)
            .strip_prefix(mount_root)
            .map(|p| Path::new("/").join(p))
            .unwrap_or_else(|_| PathBuf::from(&own));
        found.push(Hierarchy { mountpoint: m.mount_point, controllers, unified, own_path });
    }
    found
}

pub(super) fn own_cgroup(membership: &str, unified: bool, controllers: &[String]) -> Option<String> {
    membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if unified {
            id == "0" && ctrls.is_empty()
        } else {
            let mut mine: Vec<&str> = ctrls.split(',').collect();
            let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
            mine.sort_unstable();
            want.sort_unstable();
            mine == want
        };
        matches.then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/systemd rw shared:14 - cgroup cgroup rw,xattr,name=systemd
";
    const CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n";
    const SUBSYS: &str =
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\ncpuacct\t2\t1\t1\nmemory\t4\t1\t1\n";

    #[test]
    fn parses_hybrid_layout() {
        let h = parse(MOUNTINFO, CGROUP, SUBSYS);
        assert_eq!(h.len(), 4);
        assert!(h[0].unified);
        assert_eq!(h[1].controllers, ["memory"]);
        assert_eq!(h[1].own_path, PathBuf::from("/process_api/abc"));
        assert_eq!(h[2].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[3].controllers, ["name=systemd"]);
    }
}
