//! Live resource operations on a container's cgroup: update, ps, stats and events.

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::lifecycle::load;
use super::state::Status;
use super::ContainerDir;
use crate::cgroups::{self, stats};
use crate::error::{Error, Result};

/// Changes a running (or created, or paused) container's limits in place.
pub fn update(root: &Path, id: &str, resources: &LinuxResources) -> Result<()> {
    let _lock = ContainerDir::open(root, id)?;
    let c = load(root, id)?;
    if c.status() == Status::Stopped {
        return Err(Error::ContainerNotRunning);
    }
    check_before_update(&c.state.cgroups, resources)?;
    // systemd first, as runc does: it rewrites the files of the limits it knows, and the
    // files then get the rest.
    if let Some(unit) = &c.state.systemd_unit {
        cgroups::systemd::set_properties(unit, resources)?;
    }
    cgroups::apply(&c.state.cgroups, resources)
}

/// memory.checkBeforeUpdate: refuse a limit below what the container already uses, instead of
/// letting the kernel reclaim or OOM-kill to reach it.
fn check_before_update(dirs: &[cgroups::CgroupDir], r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory().as_ref() else { return Ok(()) };
    let (Some(true), Some(limit)) = (m.check_before_update(), m.limit()) else { return Ok(()) };
    let usage = stats::memory_usage(dirs).unwrap_or(0);
    if limit >= 0 && (limit as u64) < usage {
        return Err(Error::MemoryBelowUsage { limit, usage });
    }
    Ok(())
}

/// The host pids of every process in the container: none once it has stopped, as runc lists
/// them (its last processes may still be leaving the cgroup).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = load(root, id)?;
    if c.status() == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(cgroups::pids(&c.state.cgroups))
}

/// `ps`: the host's `ps ARGS` (default -ef), its header and the lines whose PID column is one
/// of the container's processes.
pub fn ps(root: &Path, id: &str, args: &[String]) -> Result<Vec<String>> {
    let pids = pids(root, id)?;
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let failed = |why: String| Error::InvalidArgument(format!("ps {}: {why}", args.join(" ")));
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::InvalidArgument(format!("run ps {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column =
        header.split_whitespace().position(|c| c == "PID").ok_or_else(|| failed("output has no PID column".into()))?;
    let mut table = vec![header.to_string()];
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            table.push(line.to_string());
        }
    }
    Ok(table)
}

/// One stats event, as `events --stats` prints it.
pub fn stats_event(root: &Path, id: &str) -> Result<Value> {
    let c = load(root, id)?;
    if c.status() == Status::Stopped {
        return Err(Error::ContainerNotRunning);
    }
    Ok(json!({ "type": "stats", "id": id, "data": stats::stats(&c.state.cgroups) }))
}

/// Emits a stats event every `interval`, and an oom event as soon as the container's OOM-kill
/// count grows (checked ten times per interval, at least every 100 ms), until the container
/// stops.
pub fn events(root: &Path, id: &str, interval: Duration, emit: &mut dyn FnMut(Value)) -> Result<()> {
    let c = load(root, id)?;
    let tick = (interval / 10).clamp(Duration::from_millis(10), Duration::from_millis(100));
    let mut ooms = stats::oom_kills(&c.state.cgroups);
    let mut next_stats = std::time::Instant::now();
    loop {
        // Status first: an OOM kill that also ends the init must still be reported.
        let stopped = c.status() == Status::Stopped;
        let now_ooms = stats::oom_kills(&c.state.cgroups);
        if now_ooms > ooms {
            emit(json!({ "type": "oom", "id": id }));
            ooms = now_ooms;
        }
        if stopped {
            break;
        }
        if std::time::Instant::now() >= next_stats {
            emit(json!({ "type": "stats", "id": id, "data": stats::stats(&c.state.cgroups) }));
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
    Ok(())
}
