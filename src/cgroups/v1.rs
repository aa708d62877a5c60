//! cgroup v1 files: one hierarchy per controller (or a few co-mounted), limits in the
//! controller's own file names.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxPids,
};

use super::{given, read_file, write_file};
use crate::error::{Error, Result};

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    match (given(m.limit()), given(m.swap())) {
        (Some(limit), Some(swap)) => memory_and_swap(dir, limit, swap)?,
        // No limit at all also lifts memory+swap, as runc does (`update --memory -1`): an
        // unlimited memory.limit_in_bytes above a memsw limit is EINVAL.
        (Some(-1), None) if dir.join("memory.memsw.limit_in_bytes").exists() => memory_and_swap(dir, -1, -1)?,
        (Some(limit), None) => write_file(dir, "memory.limit_in_bytes", &limit.to_string())?,
        (None, Some(swap)) => write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = given(m.reservation()) {
        write_file(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(k) = given(m.kernel()) {
        // Kernel memory limits are gone from recent kernels (writes fail with EOPNOTSUPP), and
        // runc ignores them too; say so at --debug rather than failing every engine's config.
        if let Err(e) = write_file(dir, "memory.kmem.limit_in_bytes", &k.to_string()) {
            crate::logging::debug(&format!("memory.kernel ignored: {e}"));
        }
    }
    if let Some(k) = given(m.kernel_tcp()) {
        write_file(dir, "memory.kmem.tcp.limit_in_bytes", &k.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        write_file(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(dir, "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        write_file(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

/// memory.limit may never exceed memsw.limit: when both grow, memsw must go first.
fn memory_and_swap(dir: &Path, limit: i64, swap: i64) -> Result<()> {
    let first = write_file(dir, "memory.limit_in_bytes", &limit.to_string());
    if first.is_err() {
        write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
        return write_file(dir, "memory.limit_in_bytes", &limit.to_string());
    }
    write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = given(c.shares()) {
        write_file(dir, "cpu.shares", &s.to_string())?;
    }
    cfs_period_and_quota(dir, given(c.period()), given(c.quota()))?;
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = given(c.realtime_period()) {
        write_file(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = given(c.realtime_runtime()) {
        write_file(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// The kernel checks a new period against the quota in force and a new quota against the
/// period (and both against the parent's bandwidth), so one order can fail where the other
/// works: period first, and on EINVAL quota first, as runc retries.
fn cfs_period_and_quota(dir: &Path, period: Option<u64>, quota: Option<i64>) -> Result<()> {
    let write_period = || period.map_or(Ok(()), |p| write_file(dir, "cpu.cfs_period_us", &p.to_string()));
    let write_quota = || quota.map_or(Ok(()), |q| write_file(dir, "cpu.cfs_quota_us", &q.to_string()));
    match write_period().and_then(|()| write_quota()) {
        Err(Error::CgroupWrite { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
            write_quota().and_then(|()| write_period())
        }
        other => other,
    }
}

/// cpuset.cpus and cpuset.mems: the same file names on v1 and v2.
pub fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus() {
        write_file(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        write_file(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// pids.max: the same file on v1 and v2; zero or negative means no limit.
pub fn pids(dir: &Path, p: &LinuxPids) -> Result<()> {
    let limit = p.limit();
    write_file(dir, "pids.max", &if limit > 0 { limit.to_string() } else { "max".into() })
}

pub fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = given(b.weight()) {
        write_file(dir, weight_file(dir), &w.to_string())?;
    }
    if let Some(w) = given(b.leaf_weight()) {
        write_file(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write_file(dir, weight_device_file(dir), &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(w) = d.leaf_weight() {
            write_file(dir, "blkio.leaf_weight_device", &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
    }
    let throttles = [
        ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write_file(dir, file, &format!("{}:{} {}", t.major(), t.minor(), t.rate()))?;
        }
    }
    Ok(())
}

/// Per-device weights likewise: blkio.weight_device went with CFQ.
fn weight_device_file(dir: &Path) -> &'static str {
    if dir.join("blkio.weight_device").exists() {
        "blkio.weight_device"
    } else {
        "blkio.bfq.weight_device"
    }
}

/// With the BFQ scheduler the weight lives in blkio.bfq.weight.
fn weight_file(dir: &Path) -> &'static str {
    if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    }
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        write_file(dir, &format!("hugetlb.{}.limit_in_bytes", l.page_size()), &l.limit().to_string())?;
    }
    Ok(())
}

/// Devices every container may use whatever its rules say (runc's list): mknod of anything,
/// the standard character devices, ptys, and the tun device. Not the host's console (5:1).
const DEFAULT_ALLOWED: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// From nothing: the container starts with no device allowed (a cgroup starts with all of
/// them), then the config's rules, then the default set, as runc builds them.
pub fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    write_file(dir, "devices.deny", "a")?;
    for rule in rules {
        let file = if rule.allow() { "devices.allow" } else { "devices.deny" };
        write_file(dir, file, &device_rule(rule))?;
    }
    for rule in DEFAULT_ALLOWED {
        write_file(dir, "devices.allow", rule)?;
    }
    Ok(())
}

/// The default allowed set as OCI rules, for the v2 device filter.
pub fn default_allowed_rules() -> Vec<LinuxDeviceCgroup> {
    DEFAULT_ALLOWED.iter().filter_map(|r| parse_rule(r)).collect()
}

/// "c 1:3 rwm" -> an allow rule.
fn parse_rule(s: &str) -> Option<LinuxDeviceCgroup> {
    let mut parts = s.split_whitespace();
    let kind = parts.next()?;
    let (major, minor) = parts.next()?.split_once(':')?;
    let access = parts.next()?;
    let num =
        |n: &str| if n == "*" { serde_json::Value::Null } else { n.parse::<i64>().map(Into::into).unwrap_or_default() };
    serde_json::from_value(serde_json::json!({
        "allow": true, "type": kind, "major": num(major), "minor": num(minor), "access": access
    }))
    .ok()
}

/// "c 1:3 rwm"; a rule without type, numbers or access covers all ("a" for everything).
pub fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let kind = rule.typ().map(|t| t.as_str().to_string()).unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    // Only r, w and m mean anything to the kernel; runc drops other letters ("rwa" is "rw").
    let access: String = rule.access().as_deref().unwrap_or("rwm").chars().filter(|c| "rwm".contains(*c)).collect();
    let access = if access.is_empty() { "rwm".to_string() } else { access };
    if kind == "a" && rule.major().is_none() && rule.minor().is_none() {
        return "a".into();
    }
    format!("{kind} {}:{} {access}", num(rule.major()), num(rule.minor()))
}

pub fn net_cls(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    match n.class_id() {
        Some(id) => write_file(dir, "net_cls.classid", &id.to_string()),
        None => Ok(()),
    }
}

pub fn net_prio(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        write_file(dir, "net_prio.ifpriomap", &format!("{} {}", p.name(), p.priority()))?;
    }
    Ok(())
}

/// A new v1 cpuset starts with empty cpus and mems, and no task can join it until they are
/// filled: copy them down from the nearest ancestor that has them.
pub fn inherit_cpuset(path: &Path) -> Result<()> {
    if !path.join("cpuset.cpus").exists() || path.join("cgroup.controllers").exists() {
        return Ok(());
    }
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
            if read_file(child, file).unwrap_or_default().is_empty() {
                let theirs = fs::read_to_string(parent.join(file)).map_err(|source| Error::Cgroup {
                    op: "read cpuset",
                    path: parent.clone(),
                    source,
                })?;
                write_file(child, file, theirs.trim())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn device_rules_read_like_the_kernel_wants() {
        let r: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow": false, "access": "rwm"}"#).unwrap();
        assert_eq!(device_rule(&r), "a");
        let r: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}"#).unwrap();
        assert_eq!(device_rule(&r), "c 1:3 rw");
        let r: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow": true, "type": "c", "major": 136}"#).unwrap();
        assert_eq!(device_rule(&r), "c 136:* rwm");
        let r: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}"#).unwrap();
        assert_eq!(device_rule(&r), "c 1:11 rw");
    }

    #[test]
    fn default_rules_round_trip() {
        let rules = default_allowed_rules();
        assert_eq!(rules.len(), DEFAULT_ALLOWED.len());
        let back: Vec<String> = rules.iter().map(device_rule).collect();
        assert_eq!(back, DEFAULT_ALLOWED);
    }

    #[test]
    fn memory_files_are_written() {
        let tmp = tempfile::tempdir().unwrap();
        let m: LinuxMemory = serde_json::from_str(
            r#"{"limit": 1048576, "swap": 2097152, "reservation": 524288, "swappiness": 10, "disableOOMKiller": true}"#,
        )
        .unwrap();
        for f in [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
        ] {
            fs::write(tmp.path().join(f), "").unwrap();
        }
        memory(tmp.path(), &m).unwrap();
        assert_eq!(read_file(tmp.path(), "memory.limit_in_bytes").unwrap(), "1048576");
        assert_eq!(read_file(tmp.path(), "memory.memsw.limit_in_bytes").unwrap(), "2097152");
        assert_eq!(read_file(tmp.path(), "memory.soft_limit_in_bytes").unwrap(), "524288");
        assert_eq!(read_file(tmp.path(), "memory.oom_control").unwrap(), "1");
    }
}
