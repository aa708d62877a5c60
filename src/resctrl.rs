//! linux.intelRdt through the resctrl filesystem (Intel RDT, AMD PQoS): a control group whose
//! schemata partition the L3 cache and memory bandwidth, and a monitoring group that counts
//! the container's cache occupancy and bandwidth.
//!
//! The group is `closID`, or the container's id. It is made (or, when it exists, joined and
//! given the schemata asked for) before the init exists, recorded in the state, and the init
//! and every exec'd process join it themselves, as they join their cgroups, by writing 0 to
//! its `tasks` (resctrl takes 0 as "the writer"), so no pid is translated across namespaces;
//! their children inherit it. `delete` removes the monitoring group and a control group berth
//! made, never one that was there before.
//!
//! A config that asks for resctrl on a host without it, or for a resource the host's resctrl
//! does not offer, is refused at create: the container would otherwise run unpartitioned.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIntelRdt, Spec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// A container's resctrl groups, as the state records them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Group {
    pub dir: PathBuf,
    /// berth made `dir` (and removes it on delete).
    pub created: bool,
    /// The monitoring group under `dir`/mon_groups, always berth's own.
    pub monitor: Option<PathBuf>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidConfig(format!("linux.intelRdt: {msg}"))
}

/// Where resctrl is mounted, if it is.
pub fn mount_point() -> Option<PathBuf> {
    let mounts = crate::procfs::mounts().ok()?;
    mounts.into_iter().find(|m| m.fstype == "resctrl").map(|m| m.mount_point)
}

/// What the section asks for; None when it asks for nothing.
struct Request {
    clos_id: Option<String>,
    schemata: Vec<String>,
    monitor: bool,
}

#[allow(deprecated)] // enableCMT and enableMBM: deprecated by the spec, still honoured.
fn request(rdt: &LinuxIntelRdt) -> Option<Request> {
    let nonempty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    // `schemata` is the whole file; the older fields only when it is not given.
    let mut schemata: Vec<String> =
        rdt.schemata().iter().flatten().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if schemata.is_empty() {
        schemata.extend(nonempty(rdt.l3_cache_schema()));
        schemata.extend(nonempty(rdt.mem_bw_schema()));
    }
    let monitor = [rdt.enable_monitoring(), rdt.enable_cmt(), rdt.enable_mbm()].iter().any(|f| f.unwrap_or(false));
    let clos_id = nonempty(rdt.clos_id());
    (clos_id.is_some() || !schemata.is_empty() || monitor).then_some(Request { clos_id, schemata, monitor })
}

/// Whether the config asks resctrl for anything (most do not: no mount table is read then).
pub fn requested(spec: &Spec) -> bool {
    spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()).and_then(request).is_some()
}

/// Before anything exists, against the resctrl mounted at `root` (None: not mounted).
pub fn check(spec: &Spec, root: Option<&Path>) -> Result<()> {
    let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) else { return Ok(()) };
    let Some(req) = request(rdt) else { return Ok(()) };
    let Some(root) = root else {
        return Err(invalid("this host has no resctrl filesystem mounted (Intel RDT / AMD QoS), so no cache or memory bandwidth allocation or monitoring can be applied".into()));
    };
    if let Some(id) = &req.clos_id {
        if id == "." || id == ".." || id.contains('/') || id == "info" || id == "mon_groups" || id == "mon_data" {
            return Err(invalid(format!("closID {id:?} is not a resctrl group name")));
        }
    }
    if let Some(l3) = rdt.l3_cache_schema().as_deref().filter(|s| !s.trim().is_empty()) {
        if !l3.trim_start().starts_with("L3") {
            return Err(invalid(format!("l3CacheSchema {l3:?} does not start with L3")));
        }
    }
    if let Some(mb) = rdt.mem_bw_schema().as_deref().filter(|s| !s.trim().is_empty()) {
        if !mb.trim_start().starts_with("MB:") {
            return Err(invalid(format!("memBwSchema {mb:?} does not start with MB:")));
        }
    }
    for line in &req.schemata {
        let Some((resource, _)) = line.split_once(':') else {
            return Err(invalid(format!("schemata line {line:?} is not RESOURCE:ID=VALUE;...")));
        };
        if !root.join("info").join(resource.trim()).is_dir() {
            return Err(invalid(format!(
                "this host's resctrl has no {:?} resource (schemata line {line:?})",
                resource.trim()
            )));
        }
    }
    if req.monitor && !root.join("info/L3_MON").is_dir() {
        return Err(invalid("monitoring asked for, but this host's resctrl has no monitoring (info/L3_MON)".into()));
    }
    Ok(())
}

/// In the parent before the init exists: the control group (made, or an existing one
/// joined) with its schemata, and the monitoring group.
pub fn create(spec: &Spec, id: &str, root: Option<&Path>) -> Result<Option<Group>> {
    let Some(req) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()).and_then(request) else {
        return Ok(None);
    };
    let Some(root) = root else { return Err(invalid("this host has no resctrl filesystem mounted".into())) };
    let dir = root.join(req.clos_id.as_deref().unwrap_or(id));
    let created = match std::fs::create_dir(&dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(Error::io("make resctrl group", dir.display(), e)),
    };
    let mut group = Group { dir, created, monitor: None };
    if let Err(e) = fill(&mut group, &req, root, id) {
        destroy(&group);
        return Err(e);
    }
    Ok(Some(group))
}

fn fill(group: &mut Group, req: &Request, root: &Path, id: &str) -> Result<()> {
    if !req.schemata.is_empty() {
        let file = group.dir.join("schemata");
        // One write, as the file is meant to be written: the kernel checks every line.
        if let Err(e) = std::fs::write(&file, req.schemata.join("\n") + "\n") {
            let why = std::fs::read_to_string(root.join("info/last_cmd_status")).unwrap_or_default();
            return Err(invalid(format!(
                "write schemata {:?} to {}: {e} ({})",
                req.schemata,
                file.display(),
                why.trim()
            )));
        }
    }
    if req.monitor {
        let mon = group.dir.join("mon_groups").join(id);
        std::fs::create_dir(&mon).ctx("make resctrl monitoring group", mon.display())?;
        group.monitor = Some(mon);
    }
    Ok(())
}

/// In the container process (the init, an exec'd process), before its namespaces hide
/// resctrl: into the control group, then the monitoring group under it.
pub fn join_self(group: Option<&Group>) -> Result<()> {
    let Some(group) = group else { return Ok(()) };
    for dir in std::iter::once(&group.dir).chain(group.monitor.as_ref()) {
        let tasks = dir.join("tasks");
        std::fs::write(&tasks, "0").ctx("join resctrl group", tasks.display())?;
    }
    Ok(())
}

/// Removes the monitoring group, and the control group if berth made it. Tasks still in
/// them go back to the parent group (the kernel's rule for rmdir); failures are logged.
pub fn destroy(group: &Group) {
    let dirs = group.monitor.iter().chain(std::iter::once(&group.dir).filter(|_| group.created));
    for dir in dirs {
        if let Err(e) = std::fs::remove_dir(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                crate::logging::warn(&format!("remove resctrl group {}: {e}", dir.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rdt: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({"ociVersion": "1.3.0", "linux": {"intelRdt": rdt}})).unwrap()
    }

    /// A directory shaped like a resctrl mount with L3 allocation and monitoring, no MB.
    fn fake_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for d in ["info/L3", "info/L3_MON"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        root
    }

    #[test]
    fn a_host_without_resctrl_refuses() {
        let e = check(&spec(serde_json::json!({"closID": "gold"})), None).unwrap_err().to_string();
        assert!(e.contains("linux.intelRdt") && e.contains("no resctrl"), "{e}");
        // Asking for nothing is fine anywhere.
        check(&spec(serde_json::json!({"enableMonitoring": false})), None).unwrap();
    }

    #[test]
    fn resources_the_host_lacks_are_refused() {
        let root = fake_root();
        let r = Some(root.path());
        check(&spec(serde_json::json!({"l3CacheSchema": "L3:0=ff"})), r).unwrap();
        let e = check(&spec(serde_json::json!({"memBwSchema": "MB:0=50"})), r).unwrap_err().to_string();
        assert!(e.contains("\"MB\""), "{e}");
        let e = check(&spec(serde_json::json!({"memBwSchema": "L3:0=50"})), r).unwrap_err().to_string();
        assert!(e.contains("memBwSchema"), "{e}");
        let e = check(&spec(serde_json::json!({"closID": "../x"})), r).unwrap_err().to_string();
        assert!(e.contains("closID"), "{e}");
        std::fs::remove_dir(root.path().join("info/L3_MON")).unwrap();
        let e = check(&spec(serde_json::json!({"enableMonitoring": true})), r).unwrap_err().to_string();
        assert!(e.contains("monitoring"), "{e}");
    }

    #[test]
    fn groups_are_made_filled_and_removed() {
        let root = fake_root();
        let s = spec(serde_json::json!({"schemata": ["L3:0=f", "L3:1=f"], "enableMonitoring": true}));
        std::fs::create_dir_all(root.path().join("c1/mon_groups")).unwrap();
        // The group exists (as resctrl makes mon_groups with it): joined, not owned.
        let g = create(&s, "c1", Some(root.path())).unwrap().unwrap();
        assert!(!g.created);
        assert_eq!(std::fs::read_to_string(g.dir.join("schemata")).unwrap(), "L3:0=f\nL3:1=f\n");
        assert_eq!(g.monitor.as_deref(), Some(root.path().join("c1/mon_groups/c1").as_path()));
        destroy(&g);
        assert!(!root.path().join("c1/mon_groups/c1").exists());
        assert!(root.path().join("c1").exists(), "a group berth did not make was removed");
        let s = spec(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=3"}));
        let g = create(&s, "c2", Some(root.path())).unwrap().unwrap();
        assert!(g.created && g.monitor.is_none());
        assert_eq!(std::fs::read_to_string(root.path().join("gold/schemata")).unwrap(), "L3:0=3\n");
        std::fs::remove_file(root.path().join("gold/schemata")).unwrap();
        destroy(&g);
        assert!(!root.path().join("gold").exists());
    }
}
