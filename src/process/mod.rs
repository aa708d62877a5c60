//! Spawning the container init: the parent's half (spawn.rs) and the init's half (init.rs),
//! talking over the sync channel.

pub(crate) mod exec;
pub(crate) mod fds;
mod init;
mod init_config;
mod launch;
pub(crate) mod mempolicy;
pub(crate) mod namespaces;
pub(crate) mod personality;
pub(crate) mod sched;
pub(crate) mod sealed_exe;
pub(crate) mod spawn;
pub(crate) mod start_gate;
pub(crate) mod supervise;
mod sync;
mod sysctl;
pub(crate) mod userns;

pub use init_config::InitConfig;
pub use spawn::{spawn, ParentSide};

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

/// Forks the process that is to live in the pid (and time) namespace this process set for its
/// children, and makes this process's parent its parent (CLONE_PARENT), so the runtime can
/// wait for it. Here (the intermediate) the new pid goes to the runtime as `report(pid)` and
/// the intermediate exits; the child is held on a pipe until that report is sent, so the
/// runtime hears of it before anything the child says. Returns only in the child, which dies
/// with berth (die_with_runtime) as the process it was forked from did.
pub fn fork_into_pid_namespace(ch: &sync::Channel, report: impl Fn(i32) -> sync::Message) -> crate::Result<()> {
    use crate::error::SysContext;
    let (hold_r, hold_w) = nix::unistd::pipe().ctx("pipe", "handover to the container's pid namespace")?;
    match crate::sys::clone_fork(nix::sched::CloneFlags::CLONE_PARENT)
        .ctx("fork", "into the container's pid namespace")?
    {
        Some(child) => {
            drop(hold_r);
            let code = i32::from(ch.send(&report(child.as_raw())).is_err());
            drop(hold_w);
            crate::sys::exit_now(code)
        }
        None => {
            drop(hold_w);
            let _ = nix::unistd::read(&hold_r, &mut [0u8; 1]);
            // The fork did not inherit PR_SET_PDEATHSIG; berth is its parent too (CLONE_PARENT).
            die_with_runtime(ch);
            Ok(())
        }
    }
}

/// A berth that is killed must not leave a half-made process behind (the init, or an exec'd
/// process): until it is whole, it dies with berth (the thread that forked it). Set first,
/// then checked, so a berth that died before the setting took is seen too: the channel's
/// other end is berth's, closed with it. A change of credentials (into a user namespace, to
/// the process's user) clears the setting; the steps after it run without.
pub(crate) fn die_with_runtime(ch: &sync::Channel) {
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err() || ch.peer_gone() {
        crate::sys::exit_now(1);
    }
}
