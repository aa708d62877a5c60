//! Container statistics in runc's `events --stats` shape, read from whichever hierarchy holds
//! each controller. Counters a host lacks are simply absent.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{read_file, CgroupDir};

fn dir_for<'a>(dirs: &'a [CgroupDir], v1: &str, v2_file: &str) -> Option<(&'a Path, bool)> {
    if let Some(d) = dirs.iter().find(|d| !d.unified && d.has(v1)) {
        return Some((&d.path, false));
    }
    dirs.iter().find(|d| d.unified && d.path.join(v2_file).exists()).map(|d| (d.path.as_path(), true))
}

fn num(dir: &Path, file: &str) -> Option<u64> {
    read_file(dir, file).and_then(|s| if s == "max" { Some(u64::MAX) } else { s.parse().ok() })
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, ...).
fn keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read_file(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The sections in runc's order (its Stats struct): cpu, cpuset, memory, pids, blkio, hugetlb.
pub fn stats(dirs: &[CgroupDir]) -> Value {
    let mut data = Map::new();
    if let Some(cpu) = cpu(dirs) {
        data.insert("cpu".into(), cpu);
    }
    if let Some(set) = cpuset(dirs) {
        data.insert("cpuset".into(), set);
    }
    if let Some(mem) = memory(dirs) {
        data.insert("memory".into(), mem);
    }
    if let Some((d, _)) = dir_for(dirs, "pids", "pids.current") {
        data.insert("pids".into(), json!({ "current": num(d, "pids.current"), "limit": num(d, "pids.max") }));
    }
    if let Some(b) = blkio(dirs) {
        data.insert("blkio".into(), b);
    }
    let h = hugetlb(dirs);
    if !h.is_empty() {
        data.insert("hugetlb".into(), Value::Object(h));
    }
    Value::Object(data)
}

fn cpu(dirs: &[CgroupDir]) -> Option<Value> {
    let mut usage = Map::new();
    if let Some(acct) = dirs.iter().find(|d| !d.unified && d.has("cpuacct")) {
        let p = &acct.path;
        usage.insert("total".into(), json!(num(p, "cpuacct.usage")));
        let percpu: Vec<u64> = read_file(p, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        usage.insert("percpu".into(), json!(percpu));
        // cpuacct.stat counts USER_HZ ticks (100 per second on Linux); runc reports ns.
        let ticks = keyed(p, "cpuacct.stat");
        usage.insert("kernel".into(), json!(ticks.get("system").map(|t| t * 10_000_000)));
        usage.insert("user".into(), json!(ticks.get("user").map(|t| t * 10_000_000)));
    }
    let (d, v2) = dir_for(dirs, "cpu", "cpu.stat")?;
    let stat = keyed(d, "cpu.stat");
    if v2 {
        usage.insert("total".into(), json!(stat.get("usage_usec").map(|u| u * 1000)));
        usage.insert("kernel".into(), json!(stat.get("system_usec").map(|u| u * 1000)));
        usage.insert("user".into(), json!(stat.get("user_usec").map(|u| u * 1000)));
    }
    let throttled_time =
        if v2 { stat.get("throttled_usec").map(|u| u * 1000) } else { stat.get("throttled_time").copied() };
    let (quota, period) = if v2 {
        let max = read_file(d, "cpu.max").unwrap_or_default();
        let mut parts = max.split_whitespace();
        (parts.next().and_then(|q| q.parse::<i64>().ok()).unwrap_or(-1), parts.next().and_then(|p| p.parse().ok()))
    } else {
        (read_file(d, "cpu.cfs_quota_us").and_then(|q| q.parse().ok()).unwrap_or(-1), num(d, "cpu.cfs_period_us"))
    };
    Some(json!({
        "usage": usage,
        "throttling": {
            "periods": stat.get("nr_periods"),
            "throttledPeriods": stat.get("nr_throttled"),
            "throttledTime": throttled_time,
        },
        // Not in runc's shape: the limits in force, so a caller sees what throttles it.
        "quota": quota,
        "period": period,
    }))
}

fn memory(dirs: &[CgroupDir]) -> Option<Value> {
    let (d, v2) = dir_for(dirs, "memory", "memory.current")?;
    let entry = |usage: &str, max: &str, limit: &str, failcnt: &str| json!({ "usage": num(d, usage), "max": num(d, max), "limit": num(d, limit), "failcnt": num(d, failcnt) });
    let raw = keyed(d, "memory.stat");
    if v2 {
        let events = keyed(d, "memory.events");
        return Some(json!({
            "usage": { "usage": num(d, "memory.current"), "limit": num(d, "memory.max"), "max": num(d, "memory.peak"),
                       "failcnt": events.get("max") },
            "swap": { "usage": num(d, "memory.swap.current"), "limit": num(d, "memory.swap.max") },
            "oomKill": events.get("oom_kill"),
            "cache": raw.get("file"),
            "raw": raw,
        }));
    }
    let oom = keyed(d, "memory.oom_control");
    Some(json!({
        "usage": entry("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt"),
        "swap": entry("memory.memsw.usage_in_bytes", "memory.memsw.max_usage_in_bytes", "memory.memsw.limit_in_bytes", "memory.memsw.failcnt"),
        "kernel": entry("memory.kmem.usage_in_bytes", "memory.kmem.max_usage_in_bytes", "memory.kmem.limit_in_bytes", "memory.kmem.failcnt"),
        "kernelTCP": entry("memory.kmem.tcp.usage_in_bytes", "memory.kmem.tcp.max_usage_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.failcnt"),
        "oomKill": oom.get("oom_kill"),
        "cache": raw.get("cache"),
        "raw": raw,
    }))
}

/// The number of OOM kills in the container so far (for `events`' oom notices).
pub fn oom_kills(dirs: &[CgroupDir]) -> u64 {
    match dir_for(dirs, "memory", "memory.events") {
        Some((d, false)) => keyed(d, "memory.oom_control").get("oom_kill").copied().unwrap_or(0),
        Some((d, true)) => keyed(d, "memory.events").get("oom_kill").copied().unwrap_or(0),
        None => 0,
    }
}

fn cpuset(dirs: &[CgroupDir]) -> Option<Value> {
    let (d, v2) = dir_for(dirs, "cpuset", "cpuset.cpus.effective")?;
    let (cpus, mems) =
        if v2 { ("cpuset.cpus.effective", "cpuset.mems.effective") } else { ("cpuset.cpus", "cpuset.mems") };
    Some(json!({ "cpus": expand_list(&read_file(d, cpus)?), "mems": expand_list(&read_file(d, mems)?) }))
}

/// "0-2,4" -> [0, 1, 2, 4]
pub fn expand_list(s: &str) -> Vec<u32> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse().unwrap_or(0), b.trim().parse().unwrap_or(0));
                (a..=b).collect::<Vec<u32>>()
            }
            None => part.trim().parse().ok().into_iter().collect(),
        })
        .collect()
}

fn blkio(dirs: &[CgroupDir]) -> Option<Value> {
    let (d, v2) = dir_for(dirs, "blkio", "io.stat")?;
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    if v2 {
        for line in read_file(d, "io.stat").unwrap_or_default().lines() {
            let mut parts = line.split_whitespace();
            let Some((major, minor)) = parts.next().and_then(|dev| dev.split_once(':')) else { continue };
            for kv in parts {
                let Some((k, v)) = kv.split_once('=') else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut bytes, "Read"),
                    "wbytes" => (&mut bytes, "Write"),
                    "rios" => (&mut ios, "Read"),
                    "wios" => (&mut ios, "Write"),
                    _ => continue,
                };
                list.push(json!({ "major": major.parse::<u64>().ok(), "minor": minor.parse::<u64>().ok(), "op": op, "value": v.parse::<u64>().ok() }));
            }
        }
    } else {
        for (file, list) in [
            ("blkio.throttle.io_service_bytes_recursive", &mut bytes),
            ("blkio.throttle.io_serviced_recursive", &mut ios),
        ] {
            for line in read_file(d, file).unwrap_or_default().lines() {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let [dev, op, value] = parts[..] {
                    let Some((major, minor)) = dev.split_once(':') else { continue };
                    list.push(json!({ "major": major.parse::<u64>().ok(), "minor": minor.parse::<u64>().ok(), "op": op, "value": value.parse::<u64>().ok() }));
                }
            }
        }
    }
    Some(json!({ "ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios }))
}

fn hugetlb(dirs: &[CgroupDir]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some((d, v2)) = dir_for(dirs, "hugetlb", "hugetlb.2MB.current") else { return out };
    let Ok(entries) = std::fs::read_dir(d) else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let suffix = if v2 { ".current" } else { ".usage_in_bytes" };
        let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) else { continue };
        if size.contains('.') {
            continue;
        }
        let value = if v2 {
            json!({ "usage": num(d, &name), "max": num(d, &format!("hugetlb.{size}.max")),
                    "failcnt": keyed(d, &format!("hugetlb.{size}.events")).get("max") })
        } else {
            json!({ "usage": num(d, &name), "max": num(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    "failcnt": num(d, &format!("hugetlb.{size}.failcnt")) })
        };
        out.insert(size.to_string(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(expand_list("0-2,4"), [0, 1, 2, 4]);
        assert_eq!(expand_list("1"), [1]);
        assert!(expand_list("").is_empty());
    }

    #[test]
    fn v2_stats_from_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        std::fs::write(d.join("memory.events"), "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n").unwrap();
        std::fs::write(d.join("pids.current"), "3\n").unwrap();
        std::fs::write(d.join("pids.max"), "10\n").unwrap();
        let dirs =
            [CgroupDir { path: d.into(), mountpoint: d.into(), controllers: vec![], unified: true, created: true }];
        let s = stats(&dirs);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["failcnt"], 2);
        assert_eq!(s["pids"]["current"], 3);
        assert_eq!(s["pids"]["limit"], 10);
        assert_eq!(oom_kills(&dirs), 1);
    }
}
