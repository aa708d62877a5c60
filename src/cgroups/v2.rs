//! cgroup v2 files: one unified hierarchy, controllers enabled per level through
//! cgroup.subtree_control, and values in v2's units (runc's conversions from the v1-shaped
//! OCI resources).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::{given, read_file, write_file, CgroupDir};
use crate::error::{Error, Result};

/// Makes `controller` usable in the container's directory: it must be offered at the mount's
/// root, and every level between the root and the container enables it for its children.
pub fn enable(dir: &CgroupDir, controller: &str) -> Result<bool> {
    // The directory's own cgroup.controllers lists what every level above already enables
    // for it (enable_all has usually done it at create): one read instead of the walk.
    let here = read_file(&dir.path, "cgroup.controllers").unwrap_or_default();
    if here.split_whitespace().any(|c| c == controller) {
        return Ok(true);
    }
    let offered = read_file(&dir.mountpoint, "cgroup.controllers").unwrap_or_default();
    if !offered.split_whitespace().any(|c| c == controller) {
        return Ok(false);
    }
    let Ok(rel) = dir.path.strip_prefix(&dir.mountpoint) else { return Ok(false) };
    let mut level = dir.mountpoint.clone();
    for comp in rel.components() {
        let enabled = read_file(&level, "cgroup.subtree_control").unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write_file(&level, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
        level.push(comp);
    }
    Ok(true)
}

/// As runc on a cgroup v2 host: every level from the root down to the container's parent
/// enables, for its children, every controller it has, whether or not the config sets a limit;
/// so memory, cpu, io and pids are counted from the first instant, and a later `update` finds
/// its controller. A level that cannot enable them all at once (a controller in use in a
/// threaded subtree, processes in a non-root level) gets what it can take, one by one.
/// `leave`: controllers someone else manages on these levels (systemd, on its slices).
pub fn enable_all(dir: &CgroupDir, leave: &[&str]) {
    let Ok(rel) = dir.path.strip_prefix(&dir.mountpoint) else { return };
    let mut level = dir.mountpoint.clone();
    for comp in rel.components() {
        let available = read_file(&level, "cgroup.controllers").unwrap_or_default();
        let enabled = read_file(&level, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<String> = available
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c) && !leave.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() && write_file(&level, "cgroup.subtree_control", &missing.join(" ")).is_err() {
            for one in &missing {
                let _ = write_file(&level, "cgroup.subtree_control", one);
            }
        }
        level.push(comp);
    }
}

fn invalid(msg: &str) -> Error {
    Error::InvalidConfig(msg.into())
}

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    if let Some(limit) = given(m.limit()) {
        write_file(dir, "memory.max", &max_or(limit))?;
    }
    if let Some(swap) = m.swap() {
        write_file(dir, "memory.swap.max", &swap_max(m.limit(), swap)?)?;
    }
    if let Some(r) = given(m.reservation()) {
        write_file(dir, "memory.low", &r.to_string())?;
    }
    if m.swappiness().is_some() {
        return Err(invalid("memory.swappiness has no cgroup v2 equivalent"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(invalid("memory.disableOOMKiller has no cgroup v2 equivalent"));
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// OCI's swap is memory+swap (v1's memsw); v2's memory.swap.max is the swap alone.
pub fn swap_max(limit: Option<i64>, swap: i64) -> Result<String> {
    match (limit, swap) {
        (_, s) if s < 0 => Ok("max".into()),
        (Some(l), s) if l >= 0 && s >= l => Ok((s - l).to_string()),
        (Some(l), s) if l >= 0 => Err(invalid(&format!("memory.swap {s} is below memory.limit {l}"))),
        _ => Err(invalid("memory.swap on cgroup v2 needs memory.limit too")),
    }
}

/// runc's mapping of cpu.shares (2..262144) onto cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's mapping of blkio.weight (10..1000) onto io.weight (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = given(c.shares()) {
        write_file(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if given(c.quota()).is_some() || given(c.period()).is_some() {
        let quota = c.quota().filter(|q| *q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
        let period = given(c.period()).unwrap_or(100_000);
        write_file(dir, "cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        return Err(invalid("realtime cpu limits have no cgroup v2 equivalent"));
    }
    Ok(())
}

pub fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = given(b.weight()) {
        write_file(dir, "io.weight", &format!("default {}", blkio_weight_to_io(w)))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write_file(dir, "io.weight", &format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(w)))?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            write_file(dir, "io.max", &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()))?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        write_file(dir, &format!("hugetlb.{}.max", l.page_size()), &l.limit().to_string())?;
    }
    Ok(())
}

/// linux.resources.unified: file name -> value, written as given. Names are plain file names
/// of the container's directory, nothing that could lead elsewhere.
pub fn unified(dir: &Path, values: &HashMap<String, String>) -> Result<()> {
    for (key, value) in values {
        if key.contains('/') || key.starts_with('.') || !dir.join(key).exists() {
            return Err(invalid(&format!(
                "invalid configuration: unified resource {key:?} is not a cgroup v2 interface file here"
            )));
        }
        write_file(dir, key, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10000);
        assert_eq!(swap_max(Some(100), 300).unwrap(), "200");
        assert_eq!(swap_max(Some(100), -1).unwrap(), "max");
        assert!(swap_max(Some(300), 100).is_err());
        assert!(swap_max(None, 100).is_err());
    }

    #[test]
    fn writes_v2_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in
            ["memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "io.weight", "io.max", "pids.max"]
        {
            std::fs::write(d.join(f), "").unwrap();
        }
        let m: LinuxMemory = serde_json::from_str(r#"{"limit": 1000, "swap": 3000, "reservation": 500}"#).unwrap();
        memory(d, &m).unwrap();
        assert_eq!(read_file(d, "memory.max").unwrap(), "1000");
        assert_eq!(read_file(d, "memory.swap.max").unwrap(), "2000");
        assert_eq!(read_file(d, "memory.low").unwrap(), "500");
        let c: LinuxCpu = serde_json::from_str(r#"{"shares": 1024, "quota": 50000, "period": 100000}"#).unwrap();
        cpu(d, &c).unwrap();
        assert_eq!(read_file(d, "cpu.weight").unwrap(), "39");
        assert_eq!(read_file(d, "cpu.max").unwrap(), "50000 100000");
        let b: LinuxBlockIo = serde_json::from_str(
            r#"{"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}"#,
        )
        .unwrap();
        io(d, &b).unwrap();
        assert_eq!(read_file(d, "io.weight").unwrap(), "default 4950");
        assert_eq!(read_file(d, "io.max").unwrap(), "8:0 rbps=1048576");
        let mut u = HashMap::new();
        u.insert("pids.max".to_string(), "10".to_string());
        unified(d, &u).unwrap();
        assert_eq!(read_file(d, "pids.max").unwrap(), "10");
        u.insert("../escape".to_string(), "1".to_string());
        assert!(unified(d, &u).is_err());
    }

    #[test]
    fn enables_controllers_down_to_the_container() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::create_dir_all(root.join("berth/c1")).unwrap();
        for d in [root.to_path_buf(), root.join("berth")] {
            std::fs::write(d.join("cgroup.subtree_control"), "").unwrap();
        }
        let dir = CgroupDir {
            path: root.join("berth/c1"),
            mountpoint: root.into(),
            controllers: vec![],
            unified: true,
            created: true,
        };
        assert!(enable(&dir, "memory").unwrap());
        assert_eq!(read_file(root, "cgroup.subtree_control").unwrap(), "+memory");
        assert_eq!(read_file(&root.join("berth"), "cgroup.subtree_control").unwrap(), "+memory");
        assert!(!enable(&dir, "hugetlb").unwrap());
        // (Regular files stand in for the kernel's: they hold what was written last.)
        std::fs::write(root.join("berth/cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::write(root.join("berth/cgroup.subtree_control"), "").unwrap();
        enable_all(&dir, &[]);
        assert_eq!(read_file(root, "cgroup.subtree_control").unwrap(), "+cpu +pids");
        assert_eq!(read_file(&root.join("berth"), "cgroup.subtree_control").unwrap(), "+cpu +memory +pids");
    }
}
