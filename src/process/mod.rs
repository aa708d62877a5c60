//! Spawning the container init: the parent's half (spawn.rs) and the init's half (init.rs),
//! talking over the sync channel.

pub mod exec;
pub mod exec_path;
pub mod init;
pub mod launch;
pub mod namespaces;
pub mod spawn;
pub mod supervise;
pub mod sync;
mod sysctl;
pub mod userns;

pub use spawn::{spawn, InitConfig, ParentSide};

/// Where a forked container process was born.
pub struct Forked {
    /// None in the child, the child's pid in the parent.
    pub child: Option<nix::unistd::Pid>,
    /// The child was cloned into the container's cgroup2 directory and must not join it again.
    pub born_in_unified: bool,
}

/// Forks a container process, born into its cgroup2 directory (clone3 CLONE_INTO_CGROUP)
/// when there is one. Kernels before 5.7 and tracers such as valgrind lack clone3 and say
/// ENOSYS; the child then joins cgroup.procs itself, paying the RCU wait that clone3 avoids.
pub fn fork_into_cgroup(flags: nix::sched::CloneFlags, cgroups: &[crate::cgroups::CgroupDir]) -> nix::Result<Forked> {
    if let Some(dir) = crate::cgroups::unified_dir(cgroups) {
        match crate::sys::clone_fork_into(flags, &dir) {
            Err(nix::errno::Errno::ENOSYS) => {}
            cloned => return cloned.map(|child| Forked { child, born_in_unified: true }),
        }
    }
    crate::sys::clone_fork(flags).map(|child| Forked { child, born_in_unified: false })
}
