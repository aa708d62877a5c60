//! What the container's process may do: capabilities, identity, resource limits and
//! no_new_privileges, seccomp.

pub mod capabilities;
pub mod credentials;
pub mod lsm;
pub mod rlimits;
pub mod seccomp;

use crate::error::{Result, SysContext};

/// Once set, execve can never grant privileges again (setuid bits and file caps are ignored).
pub fn set_no_new_privileges() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().ctx("set", "no_new_privileges")
}
