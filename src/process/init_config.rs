//! What the parent tells the init: the config it works from (it reaches the child as a copy
//! of the parent's memory), and which of them makes the overlay. Both halves read this; it
//! names neither.

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::Spec;

use super::namespaces::Plan;
use crate::cgroups::CgroupDir;
use crate::security::seccomp::Compiled;

/// What the init needs; it reaches the child as a copy of the parent's memory.
pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// The listening socket `start` connects to (start_gate); the init waits on it.
    pub start: &'a OwnedFd,
    pub cgroups: &'a [CgroupDir],
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3 .. 3+preserve_fds pass into the container (--preserve-fds, LISTEN_FDS).
    pub preserve_fds: u32,
    pub extra_env: Vec<String>,
    /// With process.terminal: the connected socket the pty master is sent on.
    pub console: Option<&'a std::os::fd::OwnedFd>,
    pub seccomp: Option<&'a Compiled>,
    /// Per config mount: the user namespace of an idmapped mount.
    pub idmaps: &'a [Option<std::fs::File>],
    pub overlay: Option<&'a crate::rootfs::overlay::Layers>,
    /// linux.intelRdt: the resctrl groups the init joins with its cgroups.
    pub resctrl: Option<&'a crate::resctrl::Group>,
}

/// The parent makes the container's overlay while the init sets itself up (their work
/// overlaps), unless the container has a user namespace: there the init mounts it from inside,
/// so the overlay belongs to that namespace as an unprivileged engine's would.
pub(super) fn parent_makes_overlay(cfg: &InitConfig, plan: &Plan) -> bool {
    cfg.overlay.is_some() && !plan.in_userns()
}
