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

/// Inserts `value` unless it is zero or empty: runc's stats types mark most fields
/// `omitempty`, and berth prints what runc prints.
fn put_nonzero(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Number(n) => n.as_u64() == Some(0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.into(), value);
    }
}

/// Every section runc 1.1's `events --stats` prints, in its order (its `types.Stats`): cpu,
/// cpuset, memory, pids, blkio, hugetlb, intel_rdt, network_interfaces. A section whose
/// controller the container lacks is there with nothing in it, as runc prints it.
pub fn stats(dirs: &[CgroupDir]) -> Value {
    let mut data = Map::new();
    data.insert(
        "cpu".into(),
        cpu(dirs).unwrap_or_else(|| json!({ "usage": { "kernel": 0, "user": 0 }, "throttling": {} })),
    );
    data.insert("cpuset".into(), cpuset(dirs));
    data.insert(
        "memory".into(),
        memory(dirs).unwrap_or_else(|| {
            let zero = json!({ "limit": 0, "failcnt": 0 });
            json!({ "usage": zero, "swap": zero, "kernel": zero, "kernelTCP": zero })
        }),
    );
    let mut pids = Map::new();
    if let Some((d, _)) = dir_for(dirs, "pids", "pids.current") {
        put_nonzero(&mut pids, "current", json!(num(d, "pids.current")));
        // No limit ("max") is 0 in runc's stats, and then left out.
        put_nonzero(&mut pids, "limit", json!(num(d, "pids.max").filter(|l| *l != u64::MAX)));
    }
    data.insert("pids".into(), Value::Object(pids));
    data.insert("blkio".into(), blkio(dirs).unwrap_or_else(|| json!({})));
    data.insert("hugetlb".into(), Value::Object(hugetlb(dirs)));
    // resctrl statistics are not read; runc prints the empty section without them.
    data.insert("intel_rdt".into(), json!({}));
    // runc fills this only for interfaces it configured itself (never for OCI bundles).
    data.insert("network_interfaces".into(), Value::Null);
    Value::Object(data)
}

fn cpu(dirs: &[CgroupDir]) -> Option<Value> {
    let mut usage = Map::new();
    let mut kernel = None;
    let mut user = None;
    if let Some(acct) = dirs.iter().find(|d| !d.unified && d.has("cpuacct")) {
        let p = &acct.path;
        put_nonzero(&mut usage, "total", json!(num(p, "cpuacct.usage")));
        let percpu: Vec<u64> = read_file(p, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        put_nonzero(&mut usage, "percpu", json!(percpu));
        // "cpu user system" per line, in ns.
        let (mut pk, mut pu) = (Vec::new(), Vec::new());
        for line in read_file(p, "cpuacct.usage_all").unwrap_or_default().lines().skip(1) {
            let f: Vec<u64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            if let [_, u, k] = f[..] {
                pu.push(u);
                pk.push(k);
            }
        }
        put_nonzero(&mut usage, "percpu_kernel", json!(pk));
        put_nonzero(&mut usage, "percpu_user", json!(pu));
        // cpuacct.stat counts USER_HZ ticks (100 per second on Linux); runc reports ns.
        let ticks = keyed(p, "cpuacct.stat");
        kernel = ticks.get("system").map(|t| t * 10_000_000);
        user = ticks.get("user").map(|t| t * 10_000_000);
    }
    let (d, v2) = dir_for(dirs, "cpu", "cpu.stat")?;
    let stat = keyed(d, "cpu.stat");
    if v2 {
        put_nonzero(&mut usage, "total", json!(stat.get("usage_usec").map(|u| u * 1000)));
        kernel = stat.get("system_usec").map(|u| u * 1000);
        user = stat.get("user_usec").map(|u| u * 1000);
    }
    usage.insert("kernel".into(), json!(kernel.unwrap_or(0)));
    usage.insert("user".into(), json!(user.unwrap_or(0)));
    let throttled_time =
        if v2 { stat.get("throttled_usec").map(|u| u * 1000) } else { stat.get("throttled_time").copied() };
    let mut throttling = Map::new();
    put_nonzero(&mut throttling, "periods", json!(stat.get("nr_periods")));
    put_nonzero(&mut throttling, "throttledPeriods", json!(stat.get("nr_throttled")));
    put_nonzero(&mut throttling, "throttledTime", json!(throttled_time));
    let (quota, period) = if v2 {
        let max = read_file(d, "cpu.max").unwrap_or_default();
        let mut parts = max.split_whitespace();
        (parts.next().and_then(|q| q.parse::<i64>().ok()).unwrap_or(-1), parts.next().and_then(|p| p.parse().ok()))
    } else {
        (read_file(d, "cpu.cfs_quota_us").and_then(|q| q.parse().ok()).unwrap_or(-1), num(d, "cpu.cfs_period_us"))
    };
    Some(json!({
        "usage": usage,
        "throttling": throttling,
        // Not in runc's shape: the limits in force, so a caller sees what throttles it.
        "quota": quota,
        "period": period,
    }))
}

/// What the container's memory cgroup uses now (memory.current, v1's memory.usage_in_bytes).
pub fn memory_usage(dirs: &[CgroupDir]) -> Option<u64> {
    let (d, v2) = dir_for(dirs, "memory", "memory.current")?;
    num(d, if v2 { "memory.current" } else { "memory.usage_in_bytes" })
}

fn memory(dirs: &[CgroupDir]) -> Option<Value> {
    let (d, v2) = dir_for(dirs, "memory", "memory.current")?;
    // runc's MemoryData: limit and failcnt always, usage and max when not zero.
    let entry = |usage: Option<u64>, max: Option<u64>, limit: Option<u64>, failcnt: Option<u64>| {
        let mut e = Map::new();
        e.insert("limit".into(), json!(limit.unwrap_or(0)));
        put_nonzero(&mut e, "usage", json!(usage));
        put_nonzero(&mut e, "max", json!(max));
        e.insert("failcnt".into(), json!(failcnt.unwrap_or(0)));
        Value::Object(e)
    };
    let raw = keyed(d, "memory.stat");
    let mut out = Map::new();
    if v2 {
        let events = keyed(d, "memory.events");
        let (usage, limit) = (num(d, "memory.current"), num(d, "memory.max"));
        put_nonzero(&mut out, "cache", json!(raw.get("file")));
        out.insert("usage".into(), entry(usage, num(d, "memory.peak"), limit, events.get("max").copied()));
        // As runc reports it on v2: memory plus swap, as v1's memsw counters were.
        let swap_usage = num(d, "memory.swap.current").map(|s| s + usage.unwrap_or(0));
        let swap_limit = num(d, "memory.swap.max").map(|s| match (s, limit) {
            (u64::MAX, _) | (_, None) | (_, Some(u64::MAX)) => u64::MAX,
            (s, Some(l)) => s.saturating_add(l),
        });
        out.insert("swap".into(), entry(swap_usage, None, swap_limit, None));
        out.insert("kernel".into(), entry(None, None, None, None));
        out.insert("kernelTCP".into(), entry(None, None, None, None));
    } else {
        let file = |f: &str| num(d, f);
        put_nonzero(&mut out, "cache", json!(raw.get("cache")));
        for (key, prefix) in
            [("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")]
        {
            let value = entry(
                file(&format!("{prefix}.usage_in_bytes")),
                file(&format!("{prefix}.max_usage_in_bytes")),
                file(&format!("{prefix}.limit_in_bytes")),
                file(&format!("{prefix}.failcnt")),
            );
            out.insert(key.into(), value);
        }
    }
    put_nonzero(&mut out, "raw", json!(raw));
    Some(Value::Object(out))
}

/// The number of OOM kills in the container so far (for `events`' oom notices).
pub fn oom_kills(dirs: &[CgroupDir]) -> u64 {
    match dir_for(dirs, "memory", "memory.events") {
        Some((d, false)) => keyed(d, "memory.oom_control").get("oom_kill").copied().unwrap_or(0),
        Some((d, true)) => keyed(d, "memory.events").get("oom_kill").copied().unwrap_or(0),
        None => 0,
    }
}

/// runc's cpuset section: the lists when known, then its numeric flags (v1's files; 0 on v2,
/// which has none of them).
fn cpuset(dirs: &[CgroupDir]) -> Value {
    let mut out = Map::new();
    let found = dir_for(dirs, "cpuset", "cpuset.cpus.effective");
    let (cpus, mems) = match found {
        Some((_, true)) => ("cpuset.cpus.effective", "cpuset.mems.effective"),
        _ => ("cpuset.cpus", "cpuset.mems"),
    };
    let d = found.map(|(d, _)| d);
    let list = |f: &str| d.and_then(|d| read_file(d, f)).map(|s| expand_list(&s)).unwrap_or_default();
    let flag = |f: &str| -> Value {
        let v = match found {
            Some((d, false)) => read_file(d, &format!("cpuset.{f}")).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0),
            _ => 0,
        };
        json!(v)
    };
    put_nonzero(&mut out, "cpus", json!(list(cpus)));
    out.insert("cpu_exclusive".into(), flag("cpu_exclusive"));
    put_nonzero(&mut out, "mems", json!(list(mems)));
    for f in [
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
        "sched_relax_domain_level",
    ] {
        out.insert(f.into(), flag(f));
    }
    Value::Object(out)
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
                list.push(blkio_entry(major, minor, op, v));
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
                    list.push(blkio_entry(major, minor, op, value));
                }
            }
        }
    }
    let mut out = Map::new();
    put_nonzero(&mut out, "ioServiceBytesRecursive", json!(bytes));
    put_nonzero(&mut out, "ioServicedRecursive", json!(ios));
    Some(Value::Object(out))
}

/// runc's blkio entry: every field left out when zero.
fn blkio_entry(major: &str, minor: &str, op: &str, value: &str) -> Value {
    let mut e = Map::new();
    put_nonzero(&mut e, "major", json!(major.parse::<u64>().ok()));
    put_nonzero(&mut e, "minor", json!(minor.parse::<u64>().ok()));
    e.insert("op".into(), json!(op));
    put_nonzero(&mut e, "value", json!(value.parse::<u64>().ok()));
    Value::Object(e)
}

/// Per page size (sorted, as Go prints a map): usage and, on v1, the peak usage, both left out
/// when zero, and the failure count.
fn hugetlb(dirs: &[CgroupDir]) -> Map<String, Value> {
    let mut sizes = BTreeMap::new();
    if let Some((d, v2)) = dir_for(dirs, "hugetlb", "hugetlb.2MB.current") {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let suffix = if v2 { ".current" } else { ".usage_in_bytes" };
            let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) else { continue };
            if size.contains('.') {
                continue;
            }
            let mut value = Map::new();
            put_nonzero(&mut value, "usage", json!(num(d, &name)));
            let failcnt = if v2 {
                keyed(d, &format!("hugetlb.{size}.events")).get("max").copied()
            } else {
                put_nonzero(&mut value, "max", json!(num(d, &format!("hugetlb.{size}.max_usage_in_bytes"))));
                num(d, &format!("hugetlb.{size}.failcnt"))
            };
            value.insert("failcnt".into(), json!(failcnt.unwrap_or(0)));
            sizes.insert(size.to_string(), Value::Object(value));
        }
    }
    sizes.into_iter().collect()
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
        // Every section runc prints, in its order, whatever the container has.
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]);
        assert_eq!(s["memory"]["kernel"], json!({"limit": 0, "failcnt": 0}));
        assert_eq!(s["cpuset"]["sched_load_balance"], 0);
        let none = stats(&[]);
        assert_eq!(none["pids"], json!({}));
        assert_eq!(none["cpu"]["usage"], json!({"kernel": 0, "user": 0}));
    }
}
