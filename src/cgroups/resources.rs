//! linux.resources -> files: each controller's settings go to the v1 hierarchy that holds it,
//! else to the unified hierarchy when the host offers it there (the hybrid case: hugetlb on
//! cgroup2 beside v1 memory, cpu, ...), else the request is refused.

use std::path::Path;

use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use super::{v1, v2, CgroupDir};
use crate::error::{Error, Result};

pub fn apply(dirs: &[CgroupDir], r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory().as_ref().filter(|m| requested(m)) {
        route(dirs, "memory", "memory", "memory", |d| v1::memory(d, m), |d| v2::memory(d, m))?;
    }
    if let Some(c) = r.cpu().as_ref() {
        let cpu_set = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.realtime_runtime().is_some()
            || c.realtime_period().is_some()
            || c.idle().is_some();
        if cpu_set {
            route(dirs, "cpu limits", "cpu", "cpu", |d| v1::cpu(d, c), |d| v2::cpu(d, c))?;
        }
        if c.cpus().is_some() || c.mems().is_some() {
            route(dirs, "cpuset", "cpuset", "cpuset", |d| v1::cpuset(d, c), |d| v1::cpuset(d, c))?;
        }
    }
    if let Some(p) = r.pids().as_ref() {
        route(dirs, "pids limit", "pids", "pids", |d| v1::pids(d, p), |d| v1::pids(d, p))?;
    }
    if let Some(b) = r.block_io().as_ref().filter(|b| requested(b)) {
        route(dirs, "block IO limits", "blkio", "io", |d| v1::blkio(d, b), |d| v2::io(d, b))?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        route(dirs, "hugepage limits", "hugetlb", "hugetlb", |d| v1::hugetlb(d, h), |d| v2::hugetlb(d, h))?;
    }
    if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        apply_devices(dirs, rules)?;
    }
    if let Some(n) = r.network().as_ref() {
        if n.class_id().is_some() {
            route(dirs, "network classID", "net_cls", "", |d| v1::net_cls(d, n), |_| Ok(()))?;
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            route(dirs, "network priorities", "net_prio", "", |d| v1::net_prio(d, n), |_| Ok(()))?;
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        let lines: Vec<String> = rdma
            .iter()
            .map(|(dev, l)| {
                let mut s = dev.clone();
                if let Some(h) = l.hca_handles() {
                    s.push_str(&format!(" hca_handle={h}"));
                }
                if let Some(o) = l.hca_objects() {
                    s.push_str(&format!(" hca_object={o}"));
                }
                s
            })
            .collect();
        let write = |d: &Path| lines.iter().try_for_each(|l| super::write_file(d, "rdma.max", l));
        route(dirs, "rdma limits", "rdma", "rdma", write, write)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let dir = dirs.iter().find(|d| d.unified).ok_or_else(|| {
            Error::InvalidConfig("linux.resources.unified needs cgroup v2, and this host has no cgroup2 mount".into())
        })?;
        v2::unified(&dir.path, u)?;
    }
    Ok(())
}

/// Whether a resource section sets anything (engines send empty objects).
fn requested<T: Serialize>(section: &T) -> bool {
    serde_json::to_value(section).is_ok_and(|v| v.as_object().is_none_or(|o| !o.is_empty()))
}

fn route(
    dirs: &[CgroupDir],
    resource: &'static str,
    v1_name: &'static str,
    v2_name: &'static str,
    on_v1: impl Fn(&Path) -> Result<()>,
    on_v2: impl Fn(&Path) -> Result<()>,
) -> Result<()> {
    if let Some(d) = dirs.iter().find(|d| !d.unified && d.has(v1_name)) {
        return on_v1(&d.path);
    }
    if !v2_name.is_empty() {
        if let Some(d) = dirs.iter().find(|d| d.unified) {
            if v2::enable(d, v2_name)? {
                return on_v2(&d.path);
            }
        }
    }
    Err(Error::ControllerMissing { resource, controller: v1_name })
}

/// v1 has a devices controller; on v2 the same rules (plus runc's default allowed set) become
/// an eBPF program attached to the container's cgroup.
fn apply_devices(dirs: &[CgroupDir], rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    if let Some(d) = dirs.iter().find(|d| !d.unified && d.has("devices")) {
        return v1::devices(&d.path, rules);
    }
    let d = dirs
        .iter()
        .find(|d| d.unified)
        .ok_or(Error::ControllerMissing { resource: "device rules", controller: "devices" })?;
    let mut all = rules.to_vec();
    all.extend(v1::default_allowed_rules());
    super::ebpf::attach(&d.path, &all)
}
