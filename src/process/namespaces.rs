//! Which namespaces the config asks for, split by how each is entered: created by clone flags,
//! created later by the init (cgroup, after joining its cgroup), created or joined by the parent
//! around the clone (pid and time: they only apply to children), or joined by the init by path.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

use crate::error::{Error, Result, SysContext};

pub struct Plan {
    /// New namespaces made by clone itself.
    pub clone_flags: CloneFlags,
    pub new_user: bool,
    pub join_user: Option<PathBuf>,
    pub new_cgroup: bool,
    pub new_time: bool,
    /// pid and time namespaces to join: entered by the parent so the child is born in them.
    pub parent_joins: Vec<(CloneFlags, PathBuf)>,
    /// Other namespaces joined by the init, after the user namespace.
    pub init_joins: Vec<(CloneFlags, PathBuf)>,
    /// A pid namespace joined by path that the init forks into only after pivot_root, so that
    /// the processes already in it (a pod's other containers) never see a berth process with
    /// the host's root, cwd or mounts; its /proc is mounted with `pidns=` (Linux 6.17) to show
    /// that namespace all the same. None where the kernel lacks that option, or the container
    /// has a user namespace: the parent then joins it before the clone (parent_joins).
    pub late_pid_join: Option<PathBuf>,
    pub time_offsets: Vec<(String, i64, u32)>,
}

fn flag(t: T) -> CloneFlags {
    match t {
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn plan(spec: &Spec) -> Plan {
    let mut plan = Plan {
        clone_flags: CloneFlags::empty(),
        new_user: false,
        join_user: None,
        new_cgroup: false,
        new_time: false,
        parent_joins: Vec::new(),
        init_joins: Vec::new(),
        late_pid_join: None,
        time_offsets: Vec::new(),
    };
    let linux = spec.linux().as_ref();
    let has_user_namespace =
        linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|all| all.iter().any(|ns| ns.typ() == T::User));
    for ns in linux.and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
        let f = flag(ns.typ());
        match (ns.typ(), ns.path().clone()) {
            (T::User, Some(p)) => plan.join_user = Some(p),
            (T::User, None) => {
                plan.new_user = true;
                plan.clone_flags |= f;
            }
            (T::Cgroup, None) => plan.new_cgroup = true,
            (T::Time, None) => plan.new_time = true,
            (T::Pid, Some(p)) if !has_user_namespace && procfs_takes_pidns(&p) => plan.late_pid_join = Some(p),
            (T::Pid | T::Time, Some(p)) => plan.parent_joins.push((f, p)),
            (_, Some(p)) => plan.init_joins.push((f, p)),
            (_, None) => plan.clone_flags |= f,
        }
    }
    for (clock, off) in linux.and_then(|l| l.time_offsets().as_ref()).into_iter().flatten() {
        plan.time_offsets.push((clock.clone(), off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    plan
}

impl Plan {
    pub fn in_userns(&self) -> bool {
        self.new_user || self.join_user.is_some()
    }

    pub fn has_new(&self, f: CloneFlags) -> bool {
        self.clone_flags.contains(f)
    }
}

/// Whether this kernel's procfs takes the `pidns=` mount option (Linux 6.17), asked of a
/// filesystem context that is never mounted.
fn procfs_takes_pidns(path: &std::path::Path) -> bool {
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    crate::sys::fs_takes_string(c"proc", c"pidns", &path)
}

pub fn join(kind: CloneFlags, path: &PathBuf) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io("open namespace", path.display(), e))?;
    setns(file.as_fd(), kind).ctx("join namespace", path.display())
}

/// The parent's pid_for_children and time_for_children, saved so the parent can step back out
/// after cloning the init into the namespaces the container asked for.
pub struct ParentNamespaces {
    saved: Vec<(CloneFlags, File)>,
}

impl ParentNamespaces {
    pub fn enter(plan: &Plan) -> Result<ParentNamespaces> {
        let mut saved = Vec::new();
        for (f, path) in &plan.parent_joins {
            saved.push(save_for_children(*f)?);
            join(*f, path)?;
        }
        if plan.new_time {
            saved.push(save_for_children(time_flag())?);
            unshare(time_flag()).ctx("unshare", "time namespace")?;
            write_time_offsets(&plan.time_offsets)?;
        }
        Ok(ParentNamespaces { saved })
    }

    pub fn restore(self) -> Result<()> {
        for (f, file) in self.saved {
            setns(file.as_fd(), f).ctx("return to namespace", "parent")?;
        }
        Ok(())
    }
}

fn time_flag() -> CloneFlags {
    CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)
}

/// setns on these changes only the namespace the caller's future children are born in.
pub fn for_children_only(f: CloneFlags) -> bool {
    f == CloneFlags::CLONE_NEWPID || f == time_flag()
}

fn save_for_children(f: CloneFlags) -> Result<(CloneFlags, File)> {
    let name = if f == time_flag() { "/proc/self/ns/time_for_children" } else { "/proc/self/ns/pid_for_children" };
    Ok((f, File::open(name).map_err(|e| Error::io("open", name, e))?))
}

/// The namespace files of a running container's init, user namespace first (joining it grants
/// the capabilities the other joins need).
pub fn open_init_namespaces(spec: &Spec, pid: i32) -> Result<Vec<(CloneFlags, File)>> {
    let mut out = Vec::new();
    let kinds = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let mut kinds: Vec<T> = kinds.into_iter().flatten().map(|n| n.typ()).collect();
    kinds.sort_by_key(|t| (*t != T::User, *t == T::Mount));
    for t in kinds {
        let name = match t {
            T::Pid => "pid",
            T::Network => "net",
            T::Mount => "mnt",
            T::Ipc => "ipc",
            T::Uts => "uts",
            T::User => "user",
            T::Cgroup => "cgroup",
            T::Time => "time",
        };
        let path = format!("/proc/{pid}/ns/{name}");
        out.push((flag(t), File::open(&path).map_err(|e| Error::io("open namespace", &path, e))?));
    }
    Ok(out)
}

/// Offsets can only be written before any process lives in the new time namespace.
fn write_time_offsets(offsets: &[(String, i64, u32)]) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let text: String = offsets.iter().map(|(clock, s, ns)| format!("{clock} {s} {ns}\n")).collect();
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| Error::io("write", "/proc/self/timens_offsets", e))
}
