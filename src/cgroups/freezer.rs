//! pause/resume: the v1 freezer (freezer.state) where the host mounts it, else cgroup v2's
//! cgroup.freeze. Freezing is asynchronous; it is done only when the kernel says FROZEN.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::CgroupDir;
use crate::error::{Error, Result};

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

fn find(dirs: &[CgroupDir]) -> Result<Freezer<'_>> {
    if let Some(d) = dirs.iter().find(|d| !d.unified && d.has("freezer")) {
        return Ok(Freezer::V1(&d.path));
    }
    if let Some(d) = dirs.iter().find(|d| d.unified && d.path.join("cgroup.freeze").exists()) {
        return Ok(Freezer::V2(&d.path));
    }
    Err(Error::Unsupported("no freezer: neither a v1 freezer hierarchy nor cgroup v2 is mounted".into()))
}

fn write(path: &Path, file: &str, value: &str) -> Result<()> {
    fs::write(path.join(file), value).map_err(|source| Error::Cgroup { op: "write freezer", path: path.into(), source })
}

pub fn freeze(dirs: &[CgroupDir]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    match find(dirs)? {
        Freezer::V1(p) => loop {
            // v1 can stay FREEZING while a task sleeps uninterruptibly; asking again retries.
            write(p, "freezer.state", "FROZEN")?;
            if fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN") {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = write(p, "freezer.state", "THAWED");
                return Err(Error::Unsupported(format!("freezing {}: still not frozen after 10s", p.display())));
            }
            std::thread::sleep(Duration::from_millis(1));
        },
        Freezer::V2(p) => {
            write(p, "cgroup.freeze", "1")?;
            while !fs::read_to_string(p.join("cgroup.events")).is_ok_and(|s| s.lines().any(|l| l == "frozen 1")) {
                if Instant::now() > deadline {
                    let _ = write(p, "cgroup.freeze", "0");
                    return Err(Error::Unsupported(format!("freezing {}: still not frozen after 10s", p.display())));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
    }
}

pub fn thaw(dirs: &[CgroupDir]) -> Result<()> {
    match find(dirs)? {
        Freezer::V1(p) => write(p, "freezer.state", "THAWED"),
        Freezer::V2(p) => write(p, "cgroup.freeze", "0"),
    }
}

pub fn is_frozen(dirs: &[CgroupDir]) -> bool {
    match find(dirs) {
        Ok(Freezer::V1(p)) => fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED"),
        Ok(Freezer::V2(p)) => fs::read_to_string(p.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
        Err(_) => false,
    }
}

/// The first of the container's directories that is frozen, or freezing, by any freezer: the
/// v1 freezer's state (a child of a frozen cgroup says FROZEN too), and on cgroup2 the
/// effective `frozen` of cgroup.events (set by the cgroup's own cgroup.freeze or a parent's).
/// On a hybrid host both count: the init is born into the cgroup2 directory.
pub fn frozen_dir(dirs: &[CgroupDir]) -> Option<&Path> {
    dirs.iter()
        .find(|d| {
            if d.unified {
                fs::read_to_string(d.path.join("cgroup.events")).is_ok_and(|s| s.lines().any(|l| l == "frozen 1"))
            } else {
                d.has("freezer") && fs::read_to_string(d.path.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            }
        })
        .map(|d| d.path.as_path())
}

/// Thaws every freezer the container's directories are in (v1 and cgroup2 alike): a frozen
/// task cannot act on SIGKILL. Best effort: only what is there is written.
pub fn thaw_all(dirs: &[CgroupDir]) {
    for d in dirs {
        if d.unified {
            let _ = fs::write(d.path.join("cgroup.freeze"), "0");
        } else if d.has("freezer") {
            let _ = fs::write(d.path.join("freezer.state"), "THAWED");
        }
    }
}
