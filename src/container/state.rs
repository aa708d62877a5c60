//! state.json: what `create` records about a container, and the OCI state shape derived from it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the init was born: a pid alone may be recycled.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub cgroups: Vec<crate::cgroups::CgroupDir>,
    /// linux.intelRdt: the resctrl groups the container's processes join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resctrl: Option<crate::resctrl::Group>,
    /// --systemd-cgroup: the transient unit systemd holds the container's cgroup in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// An exec gave a process CAP_SYS_PTRACE that the container's own processes cannot hold:
    /// every later exec runs from a sealed berth (process::sealed_exe).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ptrace_execs: bool,
    /// A container in the runtime's mount namespace: the mounts that were at or below its
    /// rootfs before create (rootfs::mounts_below); delete unmounts the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts_before: Option<Vec<u32>>,
    /// Set while `create` runs: the state is its record of what it is about to make (the
    /// cgroups before they exist, the init as soon as it does), so that `delete` can take
    /// apart whatever a create that died left. The final state has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating: Option<Creator>,
}

/// The process running `create`: its pid and start time (a pid alone may be reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Creator {
    pub pid: i32,
    pub start_time: u64,
}

impl Creator {
    /// Whether the creator still runs: then the container is its to finish or undo.
    pub fn is_alive(&self) -> bool {
        crate::procfs::is_alive(self.pid, self.start_time)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

impl State {
    pub fn read(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let text = fs::read(&path).map_err(|e| Error::io("read state", path.display(), e))?;
        serde_json::from_slice(&text).map_err(|e| Error::State { id: dir.display().to_string(), reason: e.to_string() })
    }

    /// Written to a temporary name of this writer's and renamed, so a reader never sees half
    /// a file, and the state directory fsynced: the container's final state.
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_to(dir, true)
    }

    /// `write` without the fsync, for create's records of what it is about to make: they
    /// guard against the death of berth, which a rename survives; a crash of the machine ends
    /// the container too (and /run is a tmpfs). Each fsync costs a journal commit where the
    /// root is on a disk: about 3 ms here.
    pub fn write_record(&self, dir: &Path) -> Result<()> {
        self.write_to(dir, false)
    }

    fn write_to(&self, dir: &Path, durable: bool) -> Result<()> {
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_vec(self).map_err(|e| Error::State { id: self.id.clone(), reason: e.to_string() })?;
        crate::atomic_file::write(&path, &text, durable).map_err(|e| Error::io("write state", path.display(), e))
    }

    /// What `state` and `list` show of a state directory a `create` made but has not yet
    /// recorded anything in (or died before it did): an id, being created.
    pub fn unrecorded(id: &str) -> State {
        State {
            oci_version: crate::OCI_VERSION.to_string(),
            id: id.to_string(),
            pid: 0,
            pid_start_time: 0,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroups: Vec::new(),
            resctrl: None,
            hooks: None,
            ptrace_execs: false,
            systemd_unit: None,
            creating: Some(Creator { pid: 0, start_time: 0 }),
            mounts_before: None,
        }
    }

    /// Sets `ptrace_execs`, under the container's lock.
    pub fn mark_ptrace_exec(root: &Path, id: &str) -> Result<()> {
        let dir = super::ContainerDir::open(root, id)?;
        let mut state = State::read(&dir.path)?;
        state.ptrace_execs = true;
        state.write(&dir.path)
    }

    /// The state as runtime-spec and runc print it (`berth state`, hooks' stdin), with runc's
    /// keys in runc's order: annotations (sorted) only when there are some, before owner.
    pub fn oci(&self, status: Status) -> Value {
        let pid = if status == Status::Stopped { 0 } else { self.pid };
        let mut state = json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        });
        if let Some(object) = state.as_object_mut() {
            if !self.annotations.is_empty() {
                let sorted: std::collections::BTreeMap<_, _> = self.annotations.iter().collect();
                object.insert("annotations".into(), json!(sorted));
            }
            object.insert("owner".into(), json!(self.owner));
        }
        state
    }
}
