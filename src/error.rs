//! One error type for the library. Every variant names what was being done and to what, so the
//! line the user sees reads like `mount "proc" on "/proc": EPERM: Operation not permitted`.

use std::path::PathBuf;

use nix::errno::Errno;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("container with id {0:?} already exists")]
    ContainerExists(String),
    #[error("container {0:?} does not exist")]
    ContainerNotFound(String),
    #[error("container not running")]
    ContainerNotRunning,
    #[error("container not paused")]
    ContainerNotPaused,
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    #[error("cannot exec in a paused container (use --ignore-paused)")]
    ExecPaused,
    #[error("cannot delete container {id:?} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("cannot start container {id:?}: container is {status}, not created")]
    NotCreated { id: String, status: String },

    #[error("config: {0}")]
    InvalidConfig(String),
    /// A command-line argument berth cannot use (not the bundle's fault).
    #[error("{0}")]
    InvalidArgument(String),
    #[error("read config {path:?}: {source}")]
    ReadConfig { path: PathBuf, source: std::io::Error },
    #[error("parse config {path:?}: {source}")]
    ParseConfig { path: PathBuf, source: serde_json::Error },

    #[error("{op} {target:?}: {errno}")]
    Sys { op: &'static str, target: String, errno: Errno },
    #[error("{op} {target:?}: {source}")]
    Io { op: &'static str, target: String, source: std::io::Error },

    #[error("mount {what:?} on {target:?} (type {fstype:?}): {errno}")]
    Mount { what: String, target: String, fstype: String, errno: Errno },
    #[error("path {path:?} escapes the root filesystem")]
    PathEscape { path: String },

    #[error("{op}: {reason}")]
    Capabilities { op: &'static str, reason: String },

    #[error("write {value:?} to {file:?}: {source}")]
    CgroupWrite { file: PathBuf, value: String, source: std::io::Error },
    #[error("{resource} requested, but this host has no {controller} controller for the container")]
    ControllerMissing { resource: &'static str, controller: &'static str },
    #[error("cgroup {path:?}: {op}: {source}")]
    Cgroup { op: &'static str, path: PathBuf, source: std::io::Error },

    #[error("error running hook ({hook}) {path:?}: {reason}")]
    Hook { hook: &'static str, path: PathBuf, reason: String },

    #[error("exec: {0:?}: executable file not found in $PATH")]
    ExecNotFound(String),
    #[error("exec: {0:?}: no such file or directory")]
    ExecNoSuchFile(String),
    #[error("exec: {0:?}: permission denied")]
    ExecPermission(String),

    #[error("image {image:?}: {reason}")]
    Image { image: String, reason: String },
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },

    /// The container's init (or exec'd process) reported its own failure: its message, and
    /// the exit code `run` gives for it.
    #[error("{msg}")]
    Init { code: i32, msg: String },
    /// berth and its init (or `start`) disagree on what comes next on a channel between them.
    #[error("{channel}: {what}")]
    Protocol { channel: &'static str, what: String },
    /// A message for the sync channel could not be encoded.
    #[error("sync channel: encode message: {source}")]
    Encode { source: serde_json::Error },
    /// A process berth was waiting on is gone: `who` exited `when`.
    #[error("{who} exited {when}")]
    Exited { who: String, when: String },
    /// newuidmap or newgidmap refused the mapping.
    #[error("{helper} {args}: {reason}")]
    IdHelper { helper: &'static str, args: String, reason: String },
    /// execve of the container's program failed other than ENOENT or EACCES.
    #[error("exec {arg0:?}: {errno}")]
    ExecFailed { arg0: String, errno: Errno },
    /// The kernel refused process.scheduler; `hint` says what it likely lacks.
    #[error("sched_setattr \"process.scheduler {policy}\": {errno}{hint}")]
    Scheduler { policy: String, errno: Errno, hint: &'static str },
    /// memory.checkBeforeUpdate: the new limit is below what the container uses now.
    #[error("memory limit {limit} is below the current usage {usage}")]
    MemoryBelowUsage { limit: i64, usage: u64 },
    /// A /proc file berth needs about a process could not be read.
    #[error("cannot read {0}")]
    ProcRead(String),
    #[error("{0}")]
    Unsupported(String),
    /// Something another process holds, or a wait that ran out: says what and for how long.
    #[error("{0}")]
    Busy(String),
    /// The systemd cgroup driver: systemd's answer or the D-Bus transport failed.
    #[error("systemd: {0}")]
    Systemd(String),
    #[error("state of {id:?}: {reason}")]
    State { id: String, reason: String },
}

impl Error {
    pub fn sys(op: &'static str, target: impl std::fmt::Display, errno: Errno) -> Self {
        Error::Sys { op, target: target.to_string(), errno }
    }

    pub fn io(op: &'static str, target: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { op, target: target.to_string(), source }
    }

    /// Refused for lack of privilege (the rootless cases that fall back).
    pub fn is_permission(&self) -> bool {
        let io =
            |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS));
        match self {
            Error::Cgroup { source, .. } | Error::CgroupWrite { source, .. } | Error::Io { source, .. } => io(source),
            Error::Sys { errno, .. } => matches!(errno, nix::errno::Errno::EACCES | nix::errno::Errno::EPERM),
            _ => false,
        }
    }

    /// The exit code `run` reports when this error stopped the container before its process
    /// ran: 127 and 126 as shells use them, 125 for the runtime's own failures.
    pub fn run_exit_code(&self) -> i32 {
        match self {
            Error::ExecNotFound(_) | Error::ExecNoSuchFile(_) => 127,
            Error::ExecPermission(_) | Error::ExecFailed { .. } => 126,
            Error::Init { code, .. } => *code,
            _ => 125,
        }
    }
}

/// Attaches "what and to what" to nix results.
pub trait SysContext<T> {
    fn ctx(self, op: &'static str, target: impl std::fmt::Display) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx(self, op: &'static str, target: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(op, target, e))
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, target: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(op, target, e))
    }
}
