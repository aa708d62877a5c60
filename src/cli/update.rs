use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// LinuxResources JSON from a file, or "-" for stdin (as containerd sends it)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (ignored by recent kernels)
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long, alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (e.g. 0-1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (0 or less: no limit)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let resources = match &a.resources {
        Some(path) => read_resources(path)?,
        None => from_flags(a)?,
    };
    berth::container::update(&g.root(), &a.id, &resources)?;
    Ok(0)
}

fn fail(message: String) -> Failure {
    Failure { message, code: 1 }
}

fn read_resources(path: &PathBuf) -> Result<LinuxResources, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| fail(format!("read resources from stdin: {e}")))?
    } else {
        std::fs::read_to_string(path).map_err(|e| fail(format!("read resources {}: {e}", path.display())))?
    };
    serde_json::from_str(&text).map_err(|e| fail(format!("parse resources {}: {e}", path.display())))
}

fn from_flags(a: &Args) -> Result<LinuxResources, Failure> {
    let mut memory = Map::new();
    for (key, value) in [
        ("limit", &a.memory),
        ("swap", &a.memory_swap),
        ("reservation", &a.memory_reservation),
        ("kernel", &a.kernel_memory),
        ("kernelTCP", &a.kernel_memory_tcp),
    ] {
        if let Some(v) = value {
            memory.insert(key.into(), json!(parse_size(v)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |key: &str, v: Value| {
        if !v.is_null() {
            cpu.insert(key.into(), v);
        }
    };
    put("shares", json!(a.cpu_shares));
    put("quota", json!(a.cpu_quota));
    put("period", json!(a.cpu_period));
    put("realtimePeriod", json!(a.cpu_rt_period));
    put("realtimeRuntime", json!(a.cpu_rt_runtime));
    put("cpus", json!(a.cpuset_cpus));
    put("mems", json!(a.cpuset_mems));
    let mut r = Map::new();
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(limit) = a.pids_limit {
        r.insert("pids".into(), json!({ "limit": limit }));
    }
    if let Some(w) = a.blkio_weight {
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    if r.is_empty() {
        return Err(fail("update: nothing to change (give --resources or a limit flag)".into()));
    }
    serde_json::from_value(Value::Object(r)).map_err(|e| fail(format!("update: {e}")))
}

/// "512", "100k", "64M", "1g", "2GiB", "-1" (as runc's flags read sizes).
fn parse_size(s: &str) -> Result<i64, Failure> {
    let bad = || fail(format!("{s:?} is not a size (e.g. 512, 100k, 64m, 1g, -1)"));
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult: i64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").ok(), Some(512));
        assert_eq!(parse_size("100k").ok(), Some(102400));
        assert_eq!(parse_size("64M").ok(), Some(64 << 20));
        assert_eq!(parse_size("1GiB").ok(), Some(1 << 30));
        assert_eq!(parse_size("-1").ok(), Some(-1));
        assert!(parse_size("lots").is_err());
    }
}
