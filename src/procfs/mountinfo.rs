//! Reading /proc/self/mountinfo: the mount table berth consults for cgroup hierarchies, for
//! the parent of the rootfs and for the host mounts `--no-pivot` hides.

use std::path::PathBuf;

use crate::error::{Result, SysContext};

/// One line of mountinfo (proc(5)): the fields berth uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id (field 1): unique while the mount exists.
    pub id: u32,
    /// The directory of the filesystem that is mounted (field 4): "/" for a whole filesystem.
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The superblock's options (field 11), e.g. a v1 cgroup's controllers.
    pub super_options: String,
}

pub fn mounts() -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 5 || right.len() < 3 {
                return None;
            }
            Some(Mount {
                id: left[0].parse().ok()?,
                root: unescape(left[3]),
                mount_point: unescape(left[4]).into(),
                fstype: right[0].to_string(),
                super_options: right[2].to_string(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    31 23 0:27 /sub /a\\040b rw shared:10 master:2 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].mount_point.to_str().unwrap(), m[0].fstype.as_str()), ("/proc", "proc"));
        assert_eq!(m[1].root, "/sub");
        assert_eq!(m[1].mount_point, PathBuf::from("/a b"));
        assert_eq!(m[1].super_options, "rw,nsdelegate");
        assert_eq!((m[0].id, m[1].id), (22, 31));
    }
}
