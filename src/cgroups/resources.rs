//! linux.resources -> files: each controller's settings go to the v1 hierarchy that holds it,
//! else to the unified hierarchy when the host offers it there (the hybrid case: hugetlb on
//! cgroup2 beside v1 memory, cpu, ...), else the request is refused. The two file layouts are
//! the two implementations of `Layout`; the choice is made per controller at run time.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxRdma, LinuxResources,
};
use serde::Serialize;

use super::{given, v1, v2, CgroupDir};
use crate::error::{Error, Result};

/// How one cgroup version spells each resource in files.
pub trait Layout {
    fn memory(&self, dir: &Path, m: &LinuxMemory) -> Result<()>;
    fn cpu(&self, dir: &Path, c: &LinuxCpu) -> Result<()>;
    fn cpuset(&self, dir: &Path, c: &LinuxCpu) -> Result<()>;
    fn pids(&self, dir: &Path, p: &LinuxPids) -> Result<()>;
    fn block_io(&self, dir: &Path, b: &LinuxBlockIo) -> Result<()>;
    fn hugetlb(&self, dir: &Path, h: &[LinuxHugepageLimit]) -> Result<()>;
    fn devices(&self, dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()>;
    fn rdma(&self, dir: &Path, r: &HashMap<String, LinuxRdma>) -> Result<()>;
}

pub struct V1;
pub struct V2;

impl Layout for V1 {
    fn memory(&self, dir: &Path, m: &LinuxMemory) -> Result<()> {
        v1::memory(dir, m)
    }
    fn cpu(&self, dir: &Path, c: &LinuxCpu) -> Result<()> {
        v1::cpu(dir, c)
    }
    fn cpuset(&self, dir: &Path, c: &LinuxCpu) -> Result<()> {
        v1::cpuset(dir, c)
    }
    fn pids(&self, dir: &Path, p: &LinuxPids) -> Result<()> {
        v1::pids(dir, p)
    }
    fn block_io(&self, dir: &Path, b: &LinuxBlockIo) -> Result<()> {
        v1::blkio(dir, b)
    }
    fn hugetlb(&self, dir: &Path, h: &[LinuxHugepageLimit]) -> Result<()> {
        v1::hugetlb(dir, h)
    }
    fn devices(&self, dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        v1::devices(dir, rules)
    }
    fn rdma(&self, dir: &Path, r: &HashMap<String, LinuxRdma>) -> Result<()> {
        write_rdma(dir, r)
    }
}

impl Layout for V2 {
    fn memory(&self, dir: &Path, m: &LinuxMemory) -> Result<()> {
        v2::memory(dir, m)
    }
    fn cpu(&self, dir: &Path, c: &LinuxCpu) -> Result<()> {
        v2::cpu(dir, c)
    }
    fn cpuset(&self, dir: &Path, c: &LinuxCpu) -> Result<()> {
        v1::cpuset(dir, c)
    }
    fn pids(&self, dir: &Path, p: &LinuxPids) -> Result<()> {
        v1::pids(dir, p)
    }
    fn block_io(&self, dir: &Path, b: &LinuxBlockIo) -> Result<()> {
        v2::io(dir, b)
    }
    fn hugetlb(&self, dir: &Path, h: &[LinuxHugepageLimit]) -> Result<()> {
        v2::hugetlb(dir, h)
    }
    /// v2 has no devices files: the rules (plus runc's default allowed set) become an eBPF
    /// program attached to the container's cgroup.
    fn devices(&self, dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        let mut all = rules.to_vec();
        all.extend(v1::default_allowed_rules());
        super::ebpf::attach(dir, &all)
    }
    fn rdma(&self, dir: &Path, r: &HashMap<String, LinuxRdma>) -> Result<()> {
        write_rdma(dir, r)
    }
}

/// rdma.max lines: "mlx4_0 hca_handle=2 hca_object=2000", the same on v1 and v2.
fn write_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (dev, l) in rdma {
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        super::write_file(dir, "rdma.max", &line)?;
    }
    Ok(())
}

pub fn apply(dirs: &[CgroupDir], r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory().as_ref().filter(requested) {
        let (dir, layout) = route(dirs, "memory limits", "memory", "memory")?;
        layout.memory(dir, m)?;
    }
    if let Some(c) = r.cpu().as_ref() {
        let cpu_set = given(c.shares()).is_some()
            || given(c.quota()).is_some()
            || given(c.period()).is_some()
            || c.burst().is_some()
            || given(c.realtime_runtime()).is_some()
            || given(c.realtime_period()).is_some()
            || c.idle().is_some();
        if cpu_set {
            let (dir, layout) = route(dirs, "cpu limits", "cpu", "cpu")?;
            layout.cpu(dir, c)?;
        }
        if c.cpus().is_some() || c.mems().is_some() {
            let (dir, layout) = route(dirs, "cpuset", "cpuset", "cpuset")?;
            layout.cpuset(dir, c)?;
        }
    }
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        let (dir, layout) = route(dirs, "pids limit", "pids", "pids")?;
        layout.pids(dir, p)?;
    }
    if let Some(b) = r.block_io().as_ref().filter(requested) {
        let (dir, layout) = route(dirs, "block IO limits", "blkio", "io")?;
        layout.block_io(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        let (dir, layout) = route(dirs, "hugepage limits", "hugetlb", "hugetlb")?;
        layout.hugetlb(dir, h)?;
    }
    if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        devices(dirs, rules)?;
    }
    if let Some(n) = r.network().as_ref() {
        if n.class_id().is_some() {
            let (dir, _) = route(dirs, "network classID", "net_cls", "")?;
            v1::net_cls(dir, n)?;
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            let (dir, _) = route(dirs, "network priorities", "net_prio", "")?;
            v1::net_prio(dir, n)?;
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        let (dir, layout) = route(dirs, "rdma limits", "rdma", "rdma")?;
        layout.rdma(dir, rdma)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let dir = dirs.iter().find(|d| d.unified).ok_or_else(|| {
            Error::InvalidConfig("linux.resources.unified needs cgroup v2, and this host has no cgroup2 mount".into())
        })?;
        v2::unified(&dir.path, u)?;
    }
    Ok(())
}

/// The device rules, from deny-all: the config's `rules` and then the default set. `create`
/// applies them whether the config has any or not (without rules a container must not open
/// every host device, as runc's do not).
pub fn devices(dirs: &[CgroupDir], rules: &[LinuxDeviceCgroup]) -> Result<()> {
    // Device filters need no controller on v2, only the cgroup itself.
    let (dir, layout) = route(dirs, "device rules", "devices", "").or_else(|_| {
        dirs.iter()
            .find(|d| d.unified)
            .map(|d| (d.path.as_path(), &V2 as &dyn Layout))
            .ok_or(Error::ControllerMissing { resource: "device rules", controller: "devices" })
    })?;
    layout.devices(dir, rules)
}

/// Whether a resource section sets anything: engines send empty objects, and zeros and
/// `false` for what they leave alone (docker's `"blockIO": {"weight": 0}`).
fn requested<T: Serialize>(section: &T) -> bool {
    fn set(v: &serde_json::Value) -> bool {
        use serde_json::Value;
        match v {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => o.values().any(set),
            _ => true,
        }
    }
    serde_json::to_value(section).is_ok_and(|v| set(&v))
}

/// The directory and layout that hold `v1_name` (or, on cgroup2, `v2_name`; "" when v2 has
/// no such controller).
fn route<'a>(
    dirs: &'a [CgroupDir],
    resource: &'static str,
    v1_name: &'static str,
    v2_name: &'static str,
) -> Result<(&'a Path, &'static dyn Layout)> {
    if let Some(d) = dirs.iter().find(|d| !d.unified && d.has(v1_name)) {
        return Ok((&d.path, &V1));
    }
    if !v2_name.is_empty() {
        if let Some(d) = dirs.iter().find(|d| d.unified) {
            if v2::enable(d, v2_name)? {
                return Ok((&d.path, &V2));
            }
        }
    }
    Err(Error::ControllerMissing { resource, controller: v1_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_engines_send_are_not_requests() {
        let docker: LinuxResources =
            serde_json::from_str(r#"{"blockIO":{"weight":0},"cpu":{"shares":0},"memory":{},"pids":{"limit":0}}"#)
                .unwrap();
        assert!(!requested(docker.block_io().as_ref().unwrap()));
        assert!(!requested(docker.memory().as_ref().unwrap()));
        assert_eq!(given(docker.cpu().as_ref().unwrap().shares()), None);
        // No controller is needed for what was not asked for.
        apply(&[], &docker).unwrap();
        let real: LinuxResources = serde_json::from_str(r#"{"blockIO":{"weight":500}}"#).unwrap();
        assert!(requested(real.block_io().as_ref().unwrap()));
        assert!(apply(&[], &real).is_err());
    }
}
